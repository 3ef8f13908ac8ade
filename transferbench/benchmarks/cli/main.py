"""``transferbench``'s entry point.

Every user mistake ends as one line on stderr and exit status 2 (see errors.py); results already
written are never touched by a failing run. Plugins load before the parser is built, so the options
they declare are flags like the package's own.
"""

from __future__ import annotations

import os
import sys

from transferbench.benchmarks.cli.commands import cmd_bench, cmd_export, cmd_list, cmd_report
from transferbench.benchmarks.cli.parser import build_parser
from transferbench.benchmarks.cli.run import cmd_run
from transferbench.benchmarks.plan.validate import validate
from transferbench.benchmarks.runtime import distributed
from transferbench.errors import UserError
from transferbench.plugins import load_plugins


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not distributed.is_main():  # one copy of the output: rank 0's (errors still reach stderr)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the process's lifetime)
    try:
        load_plugins()
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:  # bare `transferbench`: the quick suite, like `transferbench run`
            args = parser.parse_args(["run", *(argv or [])])
        return _dispatch(args)
    except UserError as exc:
        distributed.before_error_line(exc, user_error=True)
        print(f"transferbench: error{_where()}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transferbench: interrupted; finished runs are in results.jsonl", file=sys.stderr)
        return 130
    except Exception as exc:  # one rank of a run across processes: one line, not N interleaved tracebacks
        if not distributed.is_distributed():
            raise
        distributed.before_error_line(exc, user_error=False)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"transferbench: error{_where()}: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1


def _dispatch(args) -> int:
    if args.command == "list":
        cmd_list(args.what)
    elif args.command == "bench":
        cmd_bench(args)
    elif args.command == "report":
        cmd_report(args)
    elif args.command == "export":
        cmd_export(args)
    elif args.command == "validate":
        for target in args.targets:
            print(validate(target))
    else:
        return cmd_run(args)
    return 0


def _where() -> str:
    """`` (rank 1/2)`` in a run across processes, so the line says which process failed."""
    return f" ({distributed.label()})" if distributed.is_distributed() else ""


if __name__ == "__main__":
    sys.exit(main())
