"""The cards of ``transferbench export`` (``export.py``): the dataset card of the records, and per adapter
the model-card metadata (``model-index``) and ``.eval_results`` entries, made with huggingface_hub's
own classes so the hub (and ``huggingface_hub``'s parser) reads them as written.

How a transferbench row maps onto the hub's formats, and why:

* ``model-index`` (``EvalResult``): one per adapter; a result per task and data identity
  (``dataset_revision`` is the record's ``data_revision``: a hub commit, or a local copy's content
  hash, so two different test sets of one task are never merged), metrics named by strategy, data
  budget and seeds: "test accuracy: lora, 3600 train examples (mean of 3 seeds, std 0.005)".
* ``.eval_results/<task>.yaml`` (``EvalResultEntry``): only rows whose records all read the same hub
  dataset at a known commit (``data_revision`` ``hf:<id>@<commit>``); the strategy, budget and seeds
  are the entry's ``notes``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import transferbench
from transferbench.benchmarks.results import (
    aggregate,
    data_budget,
    provenance_lines,
    public_source,
    runs_by_row,
    task_sections,
)
from transferbench.errors import UserError

TASK_TYPES = {"vision": "image-classification", "text": "text-classification", "audio": "audio-classification"}
_HUB_REVISION = re.compile(r"hf:(?P<id>[^@]+)@(?P<commit>\S+)")


def _hub() -> Any:
    try:
        import huggingface_hub  # lazy: only the export needs it
    except ImportError:
        raise UserError("export needs huggingface_hub: pip install huggingface_hub") from None
    return huggingface_hub


def slug(name: str) -> str:
    """A file name for an adapter or task name (no separators, nothing a hub path would reject)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "unnamed"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def card_data(name: str, records: list[dict], *, license: str, data_file: str) -> Any:
    """The dataset card's YAML metadata: what the hub's dataset viewer and search read."""
    domains = sorted({r["domain"] for r in records})
    return _hub().DatasetCardData(
        license=license,
        pretty_name=f"transferbench results: {name}",
        tags=["transferbench", "transfer-learning", "benchmark", "evaluation-results", *domains],
        size_categories=[_size_category(len(records))],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": data_file}]}],
    )


def _card_text(name: str, records: list[dict], repo_id: str | None, data_file: str) -> str:
    rows = aggregate(records)
    where = f'"{repo_id}"' if repo_id else '"parquet", data_files="' + data_file + '"'
    versions = sorted({r["versions"].get("transferbench", "?") for r in records})
    lines = [
        f"# transferbench results: {name}",
        "",
        f"What transfer learning buys on {', '.join(sorted({r['task'] for r in records}))}: {len(records)} run records "
        f"of transferbench {', '.join(versions)}, pretrained backbones against the same architectures trained from "
        "scratch under the same budget. One row per record of `results.jsonl`; `counted` marks the records the "
        "tables count (the latest of each task × adapter × strategy × data budget × seed), and `record` holds "
        "each whole record as JSON (its data source named without the machine's folders).",
        "",
        "```python",
        "from datasets import load_dataset",
        f'records = load_dataset({where}, split="train")',
        "```",
        "",
        "`models/<adapter>/README.md` holds each adapter's rows as model-card metadata (`model-index`) to copy into "
        "a model repo; `models/<adapter>/.eval_results/` the hub's eval-results entries, for rows whose records "
        "read a hub dataset at a known commit.",
        "",
        *task_sections(rows, records),
        "## Provenance",
        "",
        provenance_lines(records),
        f"Exported by transferbench {transferbench.__version__}.",
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def dataset_card(name: str, records: list[dict], *, repo_id: str | None, license: str, data_file: str) -> Any:
    """The dataset card (README.md of the repo): YAML metadata, then the tables of report.md."""
    data = card_data(name, records, license=license, data_file=data_file)
    return _hub().DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_card_text(name, records, repo_id, data_file)}")


def _data_identity(runs: list[dict]) -> tuple[str | None, str | None]:
    """(hub dataset id, commit) when every run read one hub dataset at one commit, else (None, the
    shared data revision or None)."""
    revisions = {r.get("data_revision") for r in runs}
    revision = revisions.pop() if len(revisions) == 1 else None
    match = _HUB_REVISION.fullmatch(revision or "")
    return (match["id"], match["commit"]) if match else (None, revision)


def _what(row: dict[str, Any], runs: list[dict]) -> str:
    spread = f", std {row['accuracy_std']:.3f}" if row["n_seeds"] > 1 else ""
    seeds = f"mean of {row['n_seeds']} seeds{spread}" if row["n_seeds"] > 1 else f"seed {runs[0]['seed']}"
    return f"{row['strategy']}, {data_budget(row)} train examples, {row['input_size']} ({seeds})"


def eval_results(rows: list[dict], runs: list[list[dict]], source_url: str | None) -> list[Any]:
    """``EvalResult`` per row and metric (test accuracy, macro-F1), sorted so that results of one task
    and data identity are adjacent: the order ``model-index`` groups them in, so parsing gives them back."""
    hub = _hub()
    out = []
    for row, row_runs in sorted(
        zip(rows, runs, strict=True), key=lambda rr: (rr[0]["task"], str(_data_identity(rr[1])))
    ):
        hub_id, revision = _data_identity(row_runs)
        first = row_runs[0]
        common = {
            "task_type": TASK_TYPES.get(row["domain"], "other"),
            "dataset_type": hub_id or row["task"],
            "dataset_name": row["task"] if hub_id else f"{row['task']} ({public_source(first)})",
            "dataset_split": first.get("test_split"),
            "dataset_revision": revision,
            **({"source_name": "transferbench", "source_url": source_url} if source_url else {}),
        }
        what = _what(row, row_runs)
        out.append(
            hub.EvalResult(
                metric_type="accuracy",
                metric_value=round(row["accuracy_mean"], 4),
                metric_name=f"test accuracy: {what}",
                **common,
            )
        )
        out.append(
            hub.EvalResult(
                metric_type="f1",
                metric_value=round(row["macro_f1_mean"], 4),
                metric_name=f"test macro-F1: {what}",
                metric_args={"average": "macro"},
                **common,
            )
        )
    return out


def eval_result_entries(rows: list[dict], runs: list[list[dict]], source_url: str | None) -> dict[str, list[Any]]:
    """Per task, the ``EvalResultEntry`` of each row whose records read one hub dataset at one commit."""
    hub = _hub()
    out: dict[str, list[Any]] = {}
    for row, row_runs in zip(rows, runs, strict=True):
        hub_id, commit = _data_identity(row_runs)
        if hub_id is None:
            continue
        source = {"source_url": source_url, "source_name": "transferbench"} if source_url else {}
        test = f"test split {row_runs[0].get('test_split')} ({row_runs[0]['test_examples']} examples)"
        entry = hub.EvalResultEntry(
            dataset_id=hub_id,
            task_id=row["task"],
            value=round(row["accuracy_mean"], 4),
            dataset_revision=commit,
            date=max(r["finished_at"] for r in row_runs),
            notes=f"transferbench test accuracy: {_what(row, row_runs)}, {test}",
            **source,
        )
        out.setdefault(row["task"], []).append(entry)
    return out


def _model_card(adapter: str, results: list[Any], datasets: list[str]) -> Any:
    hub = _hub()
    data = hub.ModelCardData(
        model_name=adapter, eval_results=results, tags=["transferbench"], datasets=datasets or None
    )
    text = (
        f"# {adapter}: transferbench evaluation results\n\n"
        "Test accuracy and macro-F1 of every strategy transferbench ran for this adapter (pretrained, and the "
        "same architecture from scratch), as `model-index` metadata: copy the YAML above into the model's card.\n"
    )
    return hub.ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}")


def model_cards(records: list[dict], folder: Path, *, repo_id: str | None) -> list[Path]:
    """``folder/<adapter>/README.md`` (model-index) and ``.eval_results/<task>.yaml`` per adapter."""
    import yaml  # lazy: a dependency already (task files), needed here only

    source_url = f"https://huggingface.co/datasets/{repo_id}" if repo_id else None
    rows = aggregate(records)
    runs = runs_by_row(rows, records)
    written = []
    for adapter in sorted({r["adapter"] for r in rows}):
        mine = [(row, rr) for row, rr in zip(rows, runs, strict=True) if row["adapter"] == adapter]
        mine_rows, mine_runs = [m[0] for m in mine], [m[1] for m in mine]
        entries = eval_result_entries(mine_rows, mine_runs, source_url)
        datasets = sorted({e.dataset_id for es in entries.values() for e in es})
        path = folder / slug(adapter) / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        _model_card(adapter, eval_results(mine_rows, mine_runs, source_url), datasets).save(path)
        written.append(path)
        for task, task_entries in sorted(entries.items()):
            target = folder / slug(adapter) / ".eval_results" / f"{slug(task)}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump(_hub().eval_result_entries_to_yaml(task_entries), sort_keys=False))
            written.append(target)
    return written


__all__ = ["card_data", "dataset_card", "eval_result_entries", "eval_results", "model_cards", "slug"]
