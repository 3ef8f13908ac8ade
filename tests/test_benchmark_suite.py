"""transferbench-1k: the versioned suite, its offline data root and map, --select, and the headline
table's rules (one version, one protocol, a mean only over every task)."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import pytest
from report_records import rec
from test_hub_copy import _hub_copy

from transferbench.benchmarks.cli.main import main
from transferbench.benchmarks.cli.parser import build_parser
from transferbench.benchmarks.cli.run import specs_from_args
from transferbench.benchmarks.plan.data_root import locate
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.reporting.benchmark import pareto, suite_strategies, suite_tasks, write_headline
from transferbench.benchmarks.results.headline import headline
from transferbench.errors import UserError
from transferbench.tasks import TASKS, load_task

SUITE = ["run", "--suite", "transferbench-1k"]


def _specs(*flags: str) -> list[RunSpec]:
    return specs_from_args(build_parser().parse_args([*SUITE, *flags]))[0]


def test_every_cell_carries_the_benchmark_version_and_its_protocol():
    specs = _specs()
    assert {s.suite for s in specs} == {"transferbench-1k@1"}
    assert {s.data_protocol for s in specs} == {"vtab-1k"} and {s.seed for s in specs} == {0, 1, 2}
    cells = {(s.task, s.adapter, s.strategy, s.budget_multiple) for s in specs}
    assert ("cifar100", "efficientnet-lite0", "lora", 1) in cells
    assert ("sst5", "minilm-l6", "scratch", 4.0) in cells
    assert not any(a == "speaker-encoder" and s == "lora" for _, a, s, _ in cells)  # an LSTM has no targets
    assert not any(a == "tfidf-logreg" and k != 1 for _, a, _, k in cells)  # a closed-form fit has no 4x
    assert {s.sweep for s in specs} == {"default"}
    assert {s.options.get("image_size") for s in specs if TASKS.get(s.task).domain == "vision"} == {96}


def test_the_suite_validates_and_its_record_identity_names_the_version(capsys):
    assert main(["validate", "transferbench-1k"]) == 0
    assert "suite 'transferbench-1k': OK" in capsys.readouterr().out


def test_a_grid_entry_is_checked_like_a_run(tmp_path, capsys):
    matrix = tmp_path / "m.yaml"
    matrix.write_text("name: m\nversion: 2\ngrids:\n  - tasks: [digits]\n    adapters: [resnet18]\n"
                      "    strategies: [scratch]\n    image_size: 4\n")  # fmt: skip
    assert main(["run", "--config", str(matrix), "--show-config"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{matrix}:7: image_size: expected an integer of at least 8, got 4")


def _root(tmp_path: Path, cifar10_like: Path, sst2_like: Path, fsdd_like: Path) -> Path:
    """A data root with one copy per layout: imagefolder, CSV, audio folders (under another name, for
    the map) and a hub copy."""
    root = tmp_path / "data"
    shutil.copytree(cifar10_like, root / "cifar10")
    shutil.copytree(sst2_like, root / "sst2")
    shutil.copytree(fsdd_like, root / "spoken")
    names = ["very negative", "negative", "neutral", "positive", "very positive"]
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    texts = [f"sentence number {i} is {names[i % 5]}" for i in range(30)]
    _hub_copy(root / "sst5", {"text": texts, "label": [i % 5 for i in range(30)]}, features, "test", 20)
    (tmp_path / "map.yaml").write_text("fsdd-digits: spoken\nfsdd-speakers: spoken\n")
    return root


def test_the_data_root_finds_each_layout_and_lists_what_it_lacks(tmp_path, capsys, cifar10_like, sst2_like, fsdd_like):
    root = _root(tmp_path, cifar10_like, sst2_like, fsdd_like)
    specs = _specs("--data-root", str(root), "--data-map", str(tmp_path / "map.yaml"), "--seeds", "0")
    skipped = capsys.readouterr().err
    assert {s.task for s in specs} == {"cifar10", "sst2", "sst5", "fsdd-digits", "fsdd-speakers", "digits"}
    for task in ("cifar100", "trec", "ag-news", "esc50", "speech-commands"):
        assert f"transferbench: skipped {task}: no local copy at {root / task}" in skipped
    layouts = {}
    for spec in {s.task: s for s in specs if s.data_dir}.values():
        layouts[spec.task] = load_task(TASKS.get(spec.task), spec.data_dir).layout
    assert layouts == {
        "cifar10": "imagefolder",
        "sst2": "csv",
        "sst5": "hub-copy",
        "fsdd-digits": "audiofolder",
        "fsdd-speakers": "audiofolder",
    }


def test_a_map_entry_sets_the_options_its_copy_needs(tmp_path):
    (tmp_path / "trec").mkdir()
    (tmp_path / "map.yaml").write_text("trec: {folder: trec, label_column: label}\n")
    spec = RunSpec("trec", "minilm-l6", "linear-probe", options={"max_length": 64})
    kept, skipped = locate([spec], str(tmp_path), str(tmp_path / "map.yaml"))
    assert skipped == [] and kept[0].options == {"label_column": "label", "max_length": 64}
    assert kept[0].data_dir == str(tmp_path / "trec")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("trek: trec\n", "map.yaml:1: trek: unknown task; did you mean 'trec'?"),
        ("trec: /abs/trec\n", "map.yaml:1: trec: expected a folder relative to the data root, got '/abs/trec'"),
        ("trec: {folder: t, lr: 0.1}\n", "map.yaml:1: trec: lr: not an option a local copy can set"),
        ("trec: {folder: t, max_length: 0}\n", "map.yaml:1: max_length: expected an integer of at least 1"),
    ],
)
def test_a_bad_data_map_is_one_line(tmp_path, capsys, text, error):
    (tmp_path / "map.yaml").write_text(text)
    assert main([*SUITE, "--data-root", str(tmp_path), "--data-map", str(tmp_path / "map.yaml"), "--show-config"]) == 2
    assert error in capsys.readouterr().err


def test_select_keeps_the_cells_asked_for_and_names_a_typo():
    assert {TASKS.get(s.task).domain for s in _specs("--select", "domain=audio")} == {"audio"}
    both = _specs("--select", "task=sst2,trec", "--select", "strategy=linear-probe")
    assert {(s.task, s.strategy) for s in both} == {("sst2", "linear-probe"), ("trec", "linear-probe")}
    with pytest.raises(UserError, match="--select task=sst3: no run of suite 'transferbench-1k' has it; did you mean"):
        _specs("--select", "task=sst3")


def _bench(strategy, seed, acc, task, domain="text", adapter="m", version=1, suite="b@1", protocol="vtab-1k"):
    record = rec(strategy, seed, acc, task=task, domain=domain, adapter=adapter)
    record["train_flops"] = {"finetune": 3e12, "linear-probe": 1e12, "scratch": 3e12}[strategy]
    record["config"] = {
        "suite": suite,
        "data_protocol": protocol,
        **({"task_version": version} if version != 1 else {}),
    }
    return record


_ACCS = (("finetune", 0.8), ("linear-probe", 0.7), ("scratch", 0.5))


def _set(tasks=("t1", "t2"), drop=()):
    records = []
    for task in tasks:
        for seed in (0, 1, 2):
            for strategy, acc in (("finetune", 0.8), ("linear-probe", 0.7), ("scratch", 0.5)):
                if (task, strategy) not in drop:
                    records.append(_bench(strategy, seed, acc + 0.01 * seed, task))
    return records


def test_a_complete_row_has_means_and_an_incomplete_one_only_its_count():
    bench, rows = headline(_set(drop={("t2", "linear-probe")}))
    by = {(r.domain, r.strategy): r for r in rows}
    full = by[("text", "finetune")]
    assert bench.label == "b@1" and full.complete and full.tasks_have == 2
    assert full.accuracy == pytest.approx(0.81) and full.gain_pts == pytest.approx(30.0)
    assert full.gain_ci_pts is not None and full.gain_ci_pts[0] < 30 < full.gain_ci_pts[1]
    probe = by[("text", "linear-probe")]
    assert (probe.tasks_have, probe.tasks_need, probe.missing) == (1, 2, ["t2"])
    assert probe.accuracy is None and probe.gain_pts is None


def test_the_suite_defines_which_tasks_a_row_needs():
    # the records have t1 only, but the benchmark has two tasks: no row is complete
    _, rows = headline(_set(tasks=("t1",)), {"text": ("t1", "t2")})
    assert all(not r.complete and r.accuracy is None for r in rows)
    assert suite_tasks("transferbench-1k@1")["audio"] == ("speech-commands", "esc50", "fsdd-digits", "fsdd-speakers")
    assert suite_tasks("transferbench-1k@7") is None  # not the registered version: the records' own tasks


def test_an_overall_row_pools_the_domains_that_run_its_strategy():
    # audio's backbone runs no LoRA in the suite: LoRA's overall row is over text alone and says so;
    # the probe runs in both domains, so its overall row needs audio's task too (here missing)
    records = [_bench(s, seed, a + 0.01 * seed, "t1") for seed in (0, 1, 2) for s, a in _ACCS]
    records += [{**r, "strategy": "lora"} for r in records if r["strategy"] == "finetune"]
    audio = [_bench(s, seed, 0.6, "a1", domain="audio", adapter="enc") for seed in (0, 1, 2) for s in ("scratch",)]
    tasks = {"text": ("t1",), "audio": ("a1",)}
    runs = {
        "text": frozenset({"linear-probe", "lora", "finetune", "scratch"}),
        "audio": frozenset({"linear-probe", "finetune", "scratch"}),
    }
    _, rows = headline(records + audio, tasks, None, runs)
    overall = {r.strategy: r for r in rows if r.domain == "all"}
    assert overall["lora"].domains == ("text",) and overall["lora"].complete
    assert overall["lora"].accuracy == pytest.approx(0.81)
    assert overall["linear-probe"].domains == () and overall["linear-probe"].missing == ["a1"]
    _, strict = headline(records + audio, tasks)  # no suite strategies: every domain, as before
    assert {r.strategy: r for r in strict if r.domain == "all"}["lora"].missing == ["a1"]
    # scratch at 4x is scratch's row at another budget: its overall row needs the domains that run
    # scratch (it needed none, and crashed the report on an empty mean, when the suite's "scratch"
    # was compared with the row's "scratch 4x")
    longer = [{**r, "run_spec": {"budget_multiple": 4}} for r in records + audio if r["strategy"] == "scratch"]
    _, rows = headline(records + audio + longer, tasks, None, runs)
    four = {r.strategy: r for r in rows if r.domain == "all"}["scratch 4x"]
    assert (four.tasks_have, four.tasks_need, four.missing, four.accuracy) == (1, 2, ["a1"], None)
    text = [r for r in records + longer if r["domain"] == "text"]
    _, rows = headline(text, {"text": ("t1",)}, None, {"text": runs["text"]})
    assert {r.strategy: r for r in rows if r.domain == "all"}["scratch 4x"].accuracy == pytest.approx(0.51)
    assert suite_strategies("transferbench-1k@1")["audio"] == {"linear-probe", "finetune", "scratch"}
    assert "lora" in suite_strategies("transferbench-1k@1")["vision"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"suite": "b@2"}, "headline: records of b@1, b@2: a headline averages one benchmark version's records"),
        ({"version": 2}, "headline: task 't1' has records of versions [1, 2]"),
        ({"protocol": None}, "headline: records of the protocols all, vtab-1k: one protocol per headline"),
        ({"suite": None}, "headline: records of (none), b@1"),
    ],
)
def test_the_headline_refuses_to_average_across_versions_and_protocols(tmp_path, change, error):
    records = _set()
    records.append(_bench("finetune", 3, 0.9, "t1", **change))
    with pytest.raises(
        UserError, match=error.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")
    ):
        write_headline(records, tmp_path)


def test_headline_files_and_the_pareto_front(tmp_path):
    files = write_headline(_set(), tmp_path)
    names = ["headline.md", "headline.csv", "headline_gain_vs_cost.png", "headline_per_task.png"]
    assert [f.name for f in files] == names
    # no complete row with a gain (t2 lacks its probe and fine-tuning): no mean to plot, but each
    # task's points are
    (tmp_path / "partial").mkdir()
    partial = write_headline(_set(drop={("t2", "linear-probe"), ("t2", "finetune")}), tmp_path / "partial")
    assert [f.name for f in partial] == ["headline.md", "headline.csv", "headline_per_task.png"]
    text = (tmp_path / "headline.md").read_text()
    assert "| text | m | finetune | 2/2 | 0.810 | +30.0 [" in text
    assert "| all | m | finetune | 2/2 |" in text
    assert "| m | finetune | 0.810 (n=3), +30.0 | 0.810 (n=3), +30.0 |" in text.split("## Per task")[1]
    assert "| m | scratch | 0.510 (n=3) | 0.510 (n=3) |" in text
    assert pareto([(1, 5), (2, 4), (3, 9), (0.5, 1)]) == [(0.5, 1), (1, 5), (3, 9)]
    assert write_headline([rec("finetune", 0, 0.8)], tmp_path / "none") == []  # no benchmark: no headline


def test_report_writes_the_headline_and_the_index_leads_with_it(tmp_path):
    from report_records import write_results

    folder = write_results(tmp_path / "published" / "bench-1", _set())
    write_results(tmp_path / "published" / "other", [rec("finetune", 0, 0.8)])
    assert main(["report", str(folder)]) == 0 and (folder / "headline.md").is_file()
    assert main(["report", "--index", str(tmp_path / "published")]) == 0
    index = (tmp_path / "published" / "README.md").read_text()
    assert index.index("## [b@1: headline](bench-1/headline.md)") < index.index("| result set | runs |")
    assert "| all | m | finetune | 2/2 | 0.810 |" in index


def test_the_html_index_leads_with_the_headline(tmp_path):
    pytest.importorskip("plotly")
    from report_records import write_results

    write_results(tmp_path / "published" / "bench-1", _set())
    assert main(["report", "--index", str(tmp_path / "published"), "--html"]) == 0
    page = (tmp_path / "published" / "index.html").read_text()
    assert page.index('<section id="headline-bench-1">') < page.index('<section id="sets">')
    assert '<a href="bench-1/headline.md">b@1: headline</a>' in page and ">+30.0 [" in page


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--data-root", "/no/such/root"], "--data-root /no/such/root: does not exist"),
        (["--data-root", ".", "--data-dir", "."], "--data-dir gives every run one folder, --data-root/--data-map"),
        (["--data-map", "no-such-map"], "--data-map no-such-map: no such file, nor a built-in map (shared-data)"),
        (["--select", "colour=red"], "--select colour=red: expected KEY=V1,V2 with KEY one of task, adapter"),
    ],
)
def test_bad_data_root_flags_are_one_line(capsys, flags, error):
    assert main([*SUITE, *flags, "--show-config"]) == 2
    assert error in capsys.readouterr().err


def test_a_model_runs_the_benchmark_in_its_own_domain(tmp_path):
    specs = _specs("--adapter", "bert-tiny")
    assert {TASKS.get(s.task).domain for s in specs} == {"text"} and {s.adapter for s in specs} == {"bert-tiny"}
    assert {s.suite for s in specs} == {"transferbench-1k@1"}
    assert {s.strategy for s in specs} == {"linear-probe", "lora", "finetune", "scratch"}  # not tfidf's scratch twice
    assert len(specs) == 8 * (4 + 1) * 3  # 8 tasks x (4 strategies + scratch 4x) x 3 seeds
    records = _set() + [_bench("finetune", s, 0.9, t, adapter="other") for t in ("t1", "t2") for s in (0, 1, 2)]
    _, rows = headline(records)
    assert {(r.domain, r.adapter) for r in rows} == {("text", "m"), ("text", "other")}  # no pooled row: two models


def test_scratch_budget_none_drops_the_suites_4x_rows():
    specs = _specs("--select", "task=sst2", "--scratch-budget", "none")
    assert {s.budget_multiple for s in specs} == {1} and any(s.strategy == "scratch" for s in specs)
    with pytest.raises(UserError, match=r"expected multiples above 1, e\.g\. 4x or 2x,4x, or none"):
        _specs("--scratch-budget", "1x")
