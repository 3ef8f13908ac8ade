"""Run timm's ``benchmark.py`` as the reference for ``transferbench bench`` and record its figure.

timm's script is not part of this repository (nor of the timm wheel): pass its path. Its ``--amp``
flag autocasts to float16 through ``torch.cuda.amp.autocast``; ``--amp-dtype bfloat16`` points that
name at ``torch.autocast("cuda", dtype=torch.bfloat16)`` before the script runs, so both tools
measure the same bf16 mixed-precision step. The script's own timing code is untouched.

    python benchmarks/peers/timm_reference.py --script PATH/benchmark.py --amp-dtype bfloat16 \
        --out results/throughput -- --model resnet50 --bench train -b 256 --channels-last --amp
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import runpy
import sys
from pathlib import Path

import torch

from transferbench.benchmarks.results import append_record, provenance


def run_timm_benchmark(script: Path, amp_dtype: str, argv: list[str]) -> dict:
    """Run ``script`` with ``argv`` in this process; return the JSON it prints after ``--result``."""
    if amp_dtype != "float16":
        torch.cuda.amp.autocast = functools.partial(torch.autocast, "cuda", dtype=getattr(torch, amp_dtype))
    out = io.StringIO()
    saved = sys.argv
    sys.argv = [str(script), *argv]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved
    text = out.getvalue()
    if "--result" not in text:
        raise SystemExit(f"{script}: printed no '--result' block; its output was:\n{text[-2000:]}")
    return json.loads(text.split("--result", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", required=True, type=Path, help="timm's benchmark.py")
    parser.add_argument("--amp-dtype", default="bfloat16", choices=("bfloat16", "float16"))
    parser.add_argument("--out", type=Path, help="append the record to OUT/timm-reference.jsonl")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="-- then benchmark.py's own arguments")
    args = parser.parse_args()
    if not args.script.is_file():
        parser.error(f"--script {args.script}: file not found (timm's benchmark.py is not in the timm wheel)")
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    import timm

    result = run_timm_benchmark(args.script, args.amp_dtype, argv)
    record = {
        "tool": "timm benchmark.py",
        "argv": argv,
        "amp_dtype": args.amp_dtype if "--amp" in argv else None,
        "results": result,
        "timm": timm.__version__,
        "versions": provenance.versions(),
        "hardware": provenance.device_info("cuda" if torch.cuda.is_available() else "cpu"),
        "finished_at": provenance.now_utc(),
    }
    print(json.dumps(record["results"]))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        append_record(args.out / "timm-reference.jsonl", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
