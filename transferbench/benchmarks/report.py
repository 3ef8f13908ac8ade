"""``transferbench report``: tables (Markdown, CSV), plots and an index of published result sets.

Every line of every ``results.jsonl`` is validated against the record schema (docs/results-schema.md);
a malformed line is an error naming the file and line, unless ``--skip-invalid`` (then it is
skipped and counted). A torn *last* line — what a killed writer leaves — is always skipped with a
warning.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from transferbench.benchmarks.results import RESULTS_FILE, provenance_lines, write_atomic
from transferbench.errors import UserError

STATUSES = ("ok", "near-chance", "diverged", "oom")
NUMBER = (int, float)
# field -> (type(s), required for every status?) ; nested dicts are checked by their own rows
SCHEMA: dict[str, tuple[Any, bool]] = {
    "run_id": (str, True),
    "status": (str, True),
    "task": (str, True),
    "domain": (str, True),
    "adapter": (str, True),
    "strategy": (str, True),
    "pretrained": (bool, True),
    "seed": (int, True),
    "epochs": (int, True),
    "train_examples": (int, True),
    "test_examples": (int, True),
    "metrics": (dict, True),
    "val_accuracy_per_epoch": (list, True),
    "time": (dict, True),
    "throughput": (dict, True),
    "params": (dict, True),
    "config": (dict, True),
    "versions": (dict, True),
    "git_commit": (str, True),
    "hardware": (dict, True),
    "finished_at": (str, True),
}
NESTED: dict[str, dict[str, Any]] = {
    "time": {"train_s": NUMBER, "eval_s": NUMBER},
    "params": {"total": int, "trainable": int},
}


def validate_record(record: Any) -> str | None:
    """None if ``record`` fits the schema, else what is wrong (one short phrase)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, (kind, _) in SCHEMA.items():
        if key not in record:
            return f"missing field {key!r}"
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            return f"field {key!r} should be {getattr(kind, '__name__', 'number')}, got {type(record[key]).__name__}"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} is not one of {', '.join(STATUSES)}"
    for key, fields in NESTED.items():
        for sub, kind in fields.items():
            if not isinstance(record[key].get(sub), kind):
                return f"field {key}.{sub} should be a number"
    if record["status"] in ("ok", "near-chance"):
        for metric in ("accuracy", "macro_f1"):
            value = record["metrics"].get(metric)
            if not isinstance(value, NUMBER) or not 0 <= value <= 1:
                return f"metrics.{metric} should be a number in [0, 1], got {value!r}"
    return None


def load_results(paths: list[str | Path], *, skip_invalid: bool = False) -> tuple[list[dict], list[str]]:
    """Records from results.jsonl files (or directories holding one); returns (records, skipped notes)."""
    records, skipped = [], []
    for given in paths:
        path = Path(given)
        path = path / RESULTS_FILE if path.is_dir() else path
        if not path.is_file():
            raise UserError(f"report: {path} not found (expected a results.jsonl or a directory holding one)")
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        torn_last = lines[-1] != ""  # a complete file ends with a newline
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                problem = validate_record(record)
            except json.JSONDecodeError as exc:
                problem = f"not valid JSON ({exc.msg})"
            if problem is None:
                records.append({**record, "_source": str(path)})
                continue
            where = f"{path}:{number}"
            if torn_last and number == len(lines):
                warnings.warn(f"{where}: skipped a torn last line (a write was interrupted)", stacklevel=2)
                skipped.append(f"{where}: torn last line")
            elif skip_invalid:
                skipped.append(f"{where}: {problem}")
            else:
                raise UserError(f"{where}: invalid record: {problem} (use --skip-invalid to report the rest)")
    return records, skipped


def welch_interval(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Confidence interval of mean(a) - mean(b) (Welch's t); None with fewer than 2 values per side,
    or when neither side varies (a zero-width interval from two identical seeds would claim certainty
    that two seeds cannot give)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import t

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return None
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t.ppf(0.5 + level / 2, df) * se
    return diff - half, diff + half


def latest_per_seed(records: list[dict]) -> list[dict]:
    """One record per task x adapter x strategy x data budget x seed: a rerun of the same seed
    (e.g. after a code change altered the run identity) supersedes the earlier one, so a seed is
    never counted twice in a mean."""
    latest: dict[tuple, dict] = {}
    for r in records:
        key = (
            r["task"],
            r["adapter"],
            r["strategy"],
            r["train_examples"],
            r["seed"],
            r.get("config", {}).get("test_fold"),
        )
        if key not in latest or r["finished_at"] >= latest[key]["finished_at"]:
            latest[key] = r
    return list(latest.values())


def aggregate(records: list[dict]) -> list[dict[str, Any]]:
    """One row per task x adapter x strategy x train_examples over seeds, with the gain over the
    scratch row of the same task, adapter and data budget (95% Welch interval across seeds)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in latest_per_seed(records):
        if r["status"] in ("ok", "near-chance"):
            groups[(r["domain"], r["task"], r["adapter"], r["strategy"], r["train_examples"])].append(r)
    rows = []
    for (domain, task, adapter, strategy, n_train), runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        acc = [r["metrics"]["accuracy"] for r in runs]
        tta = [r["time"].get("time_to_target_s") for r in runs]
        rates = [r["throughput"].get("train_samples_per_s") for r in runs]
        pipeline = [
            r["details"]["pipeline_efficiency"]["ratio"] for r in runs if "pipeline_efficiency" in r.get("details", {})
        ]
        rows.append(
            {
                "domain": domain,
                "task": task,
                "adapter": adapter,
                "strategy": strategy,
                "train_examples": n_train,
                "pretrained": runs[0]["pretrained"],
                "n_seeds": len(runs),
                "accuracies": acc,
                "accuracy_mean": statistics.fmean(acc),
                "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "macro_f1_mean": statistics.fmean(r["metrics"]["macro_f1"] for r in runs),
                "near_chance_runs": sum(r["status"] == "near-chance" for r in runs),
                "train_s_mean": statistics.fmean(r["time"]["train_s"] for r in runs),
                "train_samples_per_s": statistics.fmean(x for x in rates if x) if any(rates) else None,
                "pipeline_efficiency": statistics.fmean(pipeline) if pipeline else None,
                "time_to_target_s": statistics.fmean(x for x in tta if x is not None)
                if any(x is not None for x in tta)
                else None,
                "target_accuracy": runs[0]["time"].get("target_accuracy"),
                "trainable_params": runs[0]["params"]["trainable"],
                "total_params": runs[0]["params"]["total"],
                "val_curves": [r["val_accuracy_per_epoch"] for r in runs],
                "chance": max((r["metrics"].get("majority_class_accuracy") or 0) for r in runs),
            }
        )
    scratch = {(r["task"], r["adapter"], r["train_examples"]): r for r in rows if r["strategy"] == "scratch"}
    for row in rows:
        base = scratch.get((row["task"], row["adapter"], row["train_examples"]))
        row["gain_pts"] = row["gain_ci_pts"] = None
        if base is not None and row["strategy"] != "scratch":
            row["gain_pts"] = 100 * (row["accuracy_mean"] - base["accuracy_mean"])
            ci = welch_interval(row["accuracies"], base["accuracies"])
            row["gain_ci_pts"] = None if ci is None else (100 * ci[0], 100 * ci[1])
    return rows


def _fmt_gain(row: dict) -> str:
    if row["gain_pts"] is None:
        return "—"
    ci = row["gain_ci_pts"]
    if ci:
        return f"{row['gain_pts']:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"
    return f"{row['gain_pts']:+.1f} ({'1 seed' if row['n_seeds'] < 2 else 'no spread across seeds'}: no interval)"


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def markdown(rows: list[dict], records: list[dict], skipped: list[str]) -> str:
    out = ["# transferbench report", ""]
    for task in sorted({r["task"] for r in rows}):
        task_rows = [r for r in rows if r["task"] == task]
        sample = next(r for r in records if r["task"] == task)
        # real-data / synthetic-input training rate: shown where it was measured (on by default on CUDA)
        show_pipeline = any(r["pipeline_efficiency"] is not None for r in task_rows)
        out += [
            f"## {task} ({task_rows[0]['domain']})",
            "",
            f"Test split: {sample.get('test_split', '?')} ({sample['test_examples']} examples); data: "
            f"{sample.get('data_source', '?')}.",
            "",
            "| adapter | strategy | train ex. | accuracy (mean ± std, n) | macro-F1 | gain vs scratch, pts [95% CI] "
            "| train s | train samples/s |"
            + (" pipeline eff. |" if show_pipeline else "")
            + " time to target | trainable / total params |",
            "|---|---|---:|---|---:|---|---:|---:|" + ("---:|" if show_pipeline else "") + "---:|---:|",
        ]
        for r in task_rows:
            flag = f" ⚠ {r['near_chance_runs']} near chance" if r["near_chance_runs"] else ""
            rate = "—" if not r["train_samples_per_s"] else f"{r['train_samples_per_s']:.0f}"
            tta = ("—" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.0f}s") + (
                f" (≥{r['target_accuracy']:.2f})" if r["target_accuracy"] else ""
            )
            pipeline = ""
            if show_pipeline:
                pipeline = " — |" if r["pipeline_efficiency"] is None else f" {r['pipeline_efficiency']:.2f} |"
            out.append(
                f"| {r['adapter']} | {r['strategy']} | {r['train_examples']} | {r['accuracy_mean']:.3f} ± "
                f"{r['accuracy_std']:.3f} (n={r['n_seeds']}){flag} | {r['macro_f1_mean']:.3f} | {_fmt_gain(r)} "
                f"| {r['train_s_mean']:.0f} | {rate} |{pipeline} {tta} "
                f"| {_millions(r['trainable_params'])} / {_millions(r['total_params'])} |"
            )
        out.append("")
    out += [
        "## Cross-domain summary",
        "",
        "Best transfer (pretrained) row against the best scratch row of each domain, with the training time each took.",
        "",
        "| domain | best transfer | accuracy | train s | best scratch | accuracy | train s |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for domain in sorted({r["domain"] for r in rows}):
        cells = []
        for pretrained in (True, False):
            candidates = [r for r in rows if r["domain"] == domain and r["pretrained"] == pretrained]
            best = max(candidates, key=lambda r: r["accuracy_mean"]) if candidates else None
            cells += (
                ["—"] * 3
                if best is None
                else [
                    f"{best['task']}/{best['adapter']}/{best['strategy']}",
                    f"{best['accuracy_mean']:.3f}",
                    f"{best['train_s_mean']:.0f}",
                ]
            )
        out.append(f"| {domain} | " + " | ".join(cells) + " |")
    failed = [r for r in records if r["status"] in ("diverged", "oom")]
    if failed:
        out += ["", "## Runs that did not finish", ""]
        out += [
            f"- {r['task']}/{r['adapter']}/{r['strategy']}/seed {r['seed']}: **{r['status']}** "
            f"{r.get('status_detail', '')}"
            for r in failed
        ]
    if skipped:
        out += ["", f"## Skipped lines ({len(skipped)})", ""] + [f"- {s}" for s in skipped]
    out += ["", "## Provenance", "", provenance_lines(records)]
    return "\n".join(out) + "\n"


CSV_FIELDS = (
    "domain",
    "task",
    "adapter",
    "strategy",
    "train_examples",
    "n_seeds",
    "accuracy_mean",
    "accuracy_std",
    "macro_f1_mean",
    "gain_pts",
    "gain_ci_low_pts",
    "gain_ci_high_pts",
    "near_chance_runs",
    "train_s_mean",
    "train_samples_per_s",
    "pipeline_efficiency",
    "time_to_target_s",
    "trainable_params",
    "total_params",
)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        ci = r["gain_ci_pts"] or (None, None)
        writer.writerow({**r, "gain_ci_low_pts": ci[0], "gain_ci_high_pts": ci[1]})
    return buffer.getvalue()


def plot(rows: list[dict], out: Path) -> list[Path]:
    """PNG plots: accuracy by strategy per task; accuracy vs training seconds; validation curves;
    transfer gain against labelled examples where a task was swept over data budgets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    tasks = sorted({r["task"] for r in rows})
    full = [r for r in rows if r["train_examples"] == max(x["train_examples"] for x in rows if x["task"] == r["task"])]

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        rs = [r for r in full if r["task"] == task]
        labels = [f"{r['adapter']}\n{r['strategy']}" for r in rs]
        colors = ["tab:blue" if r["pretrained"] else "tab:gray" for r in rs]
        ax.bar(
            range(len(rs)),
            [r["accuracy_mean"] for r in rs],
            yerr=[r["accuracy_std"] for r in rs],
            color=colors,
            capsize=4,
        )
        ax.set_xticks(range(len(rs)), labels, rotation=45, ha="right", fontsize=8)
        for i, r in enumerate(rs):
            ax.text(
                i, r["accuracy_mean"] + r["accuracy_std"] + 0.01, f"{r['accuracy_mean']:.3f}", ha="center", fontsize=8
            )
        chance = max(r["chance"] for r in rs)
        if chance:
            ax.axhline(chance, color="tab:red", ls="--", lw=1, label=f"majority class {chance:.2f}")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{task} (blue: pretrained, grey: from scratch)", fontsize=9)
        ax.set_ylabel("test accuracy (mean ± std over seeds)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    written.append(_save(fig, out / "accuracy_by_strategy.png"))

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        rs = sorted((r for r in full if r["task"] == task), key=lambda r: r["train_s_mean"])
        for i, r in enumerate(rs):
            ax.scatter(r["train_s_mean"], r["accuracy_mean"], color="tab:blue" if r["pretrained"] else "tab:gray")
            ax.annotate(
                f"{r['adapter']}/{r['strategy']}",
                (r["train_s_mean"], r["accuracy_mean"]),
                fontsize=7,
                xytext=(5, 6 if i % 2 == 0 else -11),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_xlabel("training time, device-seconds (log)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{task}: accuracy vs cost", fontsize=9)
        ax.margins(x=0.35, y=0.15)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(_save(fig, out / "accuracy_vs_cost.png"))

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        fitted = 0
        for r in (r for r in full if r["task"] == task):
            curves = [c for c in r["val_curves"] if len(c) > 1]
            label = f"{r['adapter']}/{r['strategy']}"
            if curves:
                length = min(map(len, curves))
                mean = [statistics.fmean(c[i] for c in curves) for i in range(length)]
                ax.plot(range(1, length + 1), mean, marker="o", label=label)
            elif r["val_curves"] and r["val_curves"][0]:  # a fitted probe: one validation score
                ax.axhline(
                    statistics.fmean(c[0] for c in r["val_curves"]),
                    ls=("--", ":", "-.")[fitted % 3],
                    lw=1.2,
                    color=f"C{(fitted + 5) % 10}",
                    label=f"{label} (fitted once)",
                )
                fitted += 1
        ax.set_title(task)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (mean over seeds)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(_save(fig, out / "validation_curves.png"))

    swept = [t for t in tasks if len({r["train_examples"] for r in rows if r["task"] == t}) > 1]
    if swept:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for task in swept:
            for key in sorted(
                {(r["adapter"], r["strategy"]) for r in rows if r["task"] == task and r["gain_pts"] is not None}
            ):
                rs = sorted(
                    (
                        r
                        for r in rows
                        if r["task"] == task and (r["adapter"], r["strategy"]) == key and r["gain_pts"] is not None
                    ),
                    key=lambda r: r["train_examples"],
                )
                ax.plot(
                    [r["train_examples"] for r in rs],
                    [r["gain_pts"] for r in rs],
                    marker="o",
                    label=f"{task}/{key[0]}/{key[1]}",
                )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training examples (log)")
        ax.set_ylabel("gain over scratch, accuracy points")
        ax.set_title("what transfer buys, by data budget")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save(fig, out / "gain_vs_examples.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def report(paths: list[str | Path], out: str | Path, *, skip_invalid: bool = False, plots: bool = True) -> dict:
    from transferbench.benchmarks.results import prepare_out_dir

    records, skipped = load_results(paths, skip_invalid=skip_invalid)
    if not records:
        raise UserError(f"report: no valid records in {', '.join(map(str, paths))}")
    out = prepare_out_dir(out)
    rows = aggregate(records)
    write_atomic(out / "report.md", markdown(rows, records, skipped))
    write_atomic(out / "report.csv", to_csv(rows))
    images = plot(rows, out) if plots and rows else []
    return {
        "rows": rows,
        "records": len(records),
        "skipped": skipped,
        "files": [out / "report.md", out / "report.csv", *images],
    }


def not_run_here() -> list[str]:
    """Commands for every adapter whose pretrained weights need the network (no offline copy ships)."""
    from transferbench.adapters import ADAPTERS

    default_task = {"vision": "cifar10", "text": "sst2", "audio": "speech-commands"}
    return [
        f"transferbench run --task {default_task[spec.domain]} --adapter {name} --seeds 0,1,2"
        for name in ADAPTERS.names()
        for spec in [ADAPTERS.get(name)]
        if not spec.offline_pretrained and not spec.classical and not spec.pretrained_source.startswith("none")
    ]


def write_index(results_dir: str | Path) -> Path:
    """results/README.md: one entry per published result set (a folder with a results.jsonl)."""
    root = Path(results_dir)
    lines = [
        "# Published results",
        "",
        "Each folder holds one result set: `results.jsonl` (one record per run, with config, versions, git "
        "commit and hardware) and its tables. Regenerate this index with `tox -e report`. Accuracies compare "
        "across machines; seconds and samples/s only within one set (same machine, same load)"
        + (": see [NOTES.md](NOTES.md) for how these were measured." if (root / "NOTES.md").exists() else "."),
        "",
        "| result set | runs | tasks | adapters | strategies | device | git commit | finished |",
        "|---|---:|---|---|---|---|---|---|",
    ]
    for path in sorted(root.glob("*/results.jsonl")):
        records, _ = load_results([path], skip_invalid=True)
        if not records:
            continue

        tasks, adapters, strategies = (
            ", ".join(sorted({str(r[k]) for r in records})) for k in ("task", "adapter", "strategy")
        )

        devices = ", ".join(sorted({r["hardware"].get("gpu") or r["hardware"].get("cpu", "?") for r in records}))
        commits = ", ".join(sorted({r["git_commit"][:12] for r in records}))
        lines.append(
            f"| [{path.parent.name}]({path.parent.name}/) | {len(records)} | {tasks} | "
            f"{adapters} | {strategies} | {devices} | {commits} | "
            f"{max(r['finished_at'] for r in records)[:10]} |"
        )
    for path in sorted(root.glob("*/*.md")):
        if path.parent.name == "throughput" or path.name == "report.md":
            lines.append(f"\n- [{path.parent.name}/{path.name}]({path.parent.name}/{path.name})")
    lines += [
        "",
        "## Not run here",
        "",
        "These machines cannot reach the Hugging Face hub or download.pytorch.org, so rows whose pretrained "
        "weights come from there are not in any result set above. On a connected machine:",
        "",
    ]
    lines += [f"- `{command}`" for command in [*not_run_here(), "transferbench run --suite seed-vgg16-cifar10"]]
    index = root / "README.md"
    write_atomic(index, "\n".join(lines) + "\n")
    return index
