"""Sweeps selected on validation: the winner is chosen on validation alone and only it is tested, the
swept seed's final is its winning point (not trained again), a killed sweep resumes at its next
point, shards keep a sweep whole, and bad sweeps are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.execution import executors, matrix, runner, sweeping
from transferbench.benchmarks.execution.matrix import Shard, run_all
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.plan.sweeps import Grid, parse_flag, past_edge
from transferbench.benchmarks.results import aggregate
from transferbench.benchmarks.training.budget import Budget
from transferbench.errors import UserError


@pytest.fixture(autouse=True)
def _toys():
    import toy_domain  # noqa: F401  (the tabular domain and toy-iris)
    import toy_strategy  # noqa: F401  (frozen-stem and the `claims` stand-in)


TOY = ["run", "--task", "toy-iris", "--adapter", "toy-mlp", "--epochs", "3", "--batch-size", "16", "--min-steps", "0"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _spec(strategy: str = "scratch", seed: int = 0, **values) -> RunSpec:
    budget = Budget(epochs=3, batch_size=16, min_steps=0)
    return RunSpec.create("toy-iris", "toy-mlp", strategy, seed=seed, budget=budget, device="cpu", **values)


def test_the_winner_is_chosen_on_validation_alone_and_only_it_is_tested(tmp_path):
    out = tmp_path / "out"
    assert main([*TOY, "--strategy", "claims", "--sweep", "claim=0.2,0.9", "--no-progress", "--out", str(out)]) == 0
    points = _lines(out / "sweeps.jsonl")
    assert [(p["values"], p["val_accuracy"]) for p in points] == [({"claim": 0.2}, 0.2), ({"claim": 0.9}, 0.9)]
    assert all("metrics" not in p for p in points)  # a point is never tested
    (record,) = _lines(out / "results.jsonl")
    sweep = record["sweep"]
    assert sweep["winner"] == {"claim": 0.9} and record["config"]["strategy"]["claim"] == 0.9
    assert sweep["size"] == 2 and sweep["seeds"] == "first" and sweep["tested_the_point"]
    assert "best claim at the grid's edge" in (out / "results.md").read_text()  # 0.9: the highest tried
    assert [p["val_accuracy"] for p in sweep["points"]] == [0.2, 0.9]
    assert sweep["train_s"] == pytest.approx(sum(p["train_s"] for p in points))
    # the validation winner learned nothing: its test accuracy is what the other point would beat
    other = matrix.run_one(_spec("claims", claim=0.2))
    assert record["metrics"]["accuracy"] < other["metrics"]["accuracy"]
    assert record["config"]["sweep"] == {"grid": {"claim": [0.2, 0.9]}, "seeds": "first"}


def test_the_swept_seeds_final_is_its_winning_point_and_other_seeds_train_afresh(tmp_path, monkeypatch):
    fits = []
    original = runner._fit_neural
    monkeypatch.setattr(runner, "_fit_neural", lambda cell, *a: fits.append(cell.run.role) or original(cell, *a))
    specs = [_spec(seed=s, sweep={"lr": (1e-3, 3e-2)}, sweep_widen=0) for s in (0, 1)]
    records = run_all(specs, out_dir=tmp_path, progress=False, log=lambda _: None)
    assert [r.kind for r in fits] == ["point", "point", "final", "final"]  # seed 0's two points, then each final
    by_seed = {r["seed"]: r for r in records}
    assert by_seed[0]["sweep"]["tested_the_point"] and not by_seed[1]["sweep"]["tested_the_point"]
    assert by_seed[1]["sweep"]["swept_seed"] == 0
    winner = by_seed[0]["sweep"]["winner"]
    # the final of seed 0 continued from its point's last checkpoint: the same run, bit for bit
    plain = matrix.run_one(_spec(seed=0, **winner))
    assert by_seed[0]["metrics"] == plain["metrics"]
    assert by_seed[0]["val_accuracy_per_epoch"] == plain["val_accuracy_per_epoch"]
    assert by_seed[0]["steps"] == plain["steps"] and by_seed[0]["train_flops"] == plain["train_flops"]
    assert not list((tmp_path / "checkpoints").glob("*.pt"))  # kept only until the final was recorded


def test_sweep_seeds_all_sweeps_every_seed(tmp_path):
    specs = [_spec(seed=s, sweep={"lr": (1e-3, 3e-2)}, sweep_seeds="all", sweep_widen=0) for s in (0, 1)]
    records = run_all(specs, out_dir=tmp_path, progress=False, log=lambda _: None)
    assert len(_lines(tmp_path / "sweeps.jsonl")) == 4
    assert sorted(r["sweep"]["swept_seed"] for r in records) == [0, 1]


class Killed(BaseException):
    pass


def _killed_then_resumed(specs: list[RunSpec], out: Path, monkeypatch, after: int) -> tuple[dict, list[str]]:
    """Run ``specs``, killed once ``after`` sweep points are recorded, then resume: the resumed run's
    record and the kinds of the runs it trained or tested."""
    original, recorded = sweeping.record_point, []

    def die(job, result, target, log):
        original(job, result, target, log)
        recorded.append(job)
        if len(recorded) == after:
            raise Killed

    monkeypatch.setattr(sweeping, "record_point", die)
    with pytest.raises(Killed):
        run_all(specs, out_dir=out, progress=False, log=lambda _: None)
    monkeypatch.setattr(sweeping, "record_point", original)
    ran = []
    execute = runner.execute
    monkeypatch.setattr(executors, "execute", lambda run, *a, **k: ran.append(run.role.kind) or execute(run, *a, **k))
    (record,) = run_all(specs, out_dir=out, resume=True, progress=False, log=lambda _: None)
    return record, ran


def test_a_killed_sweep_resumes_at_its_next_point(tmp_path, monkeypatch):
    specs = [_spec(sweep={"lr": (1e-3, 1e-2, 3e-2)}, sweep_widen=0)]
    record, ran = _killed_then_resumed(specs, tmp_path, monkeypatch, after=1)
    assert ran == ["point", "point", "final"]  # the first point was recorded: not run again
    assert len(_lines(tmp_path / "sweeps.jsonl")) == 3 and record["sweep"]["size"] == 3


def test_a_lone_winning_edge_widens_the_grid_one_step_at_a_time_up_to_the_limit(tmp_path):
    out = tmp_path / "out"
    argv = [*TOY, "--strategy", "claims", "--sweep", "claim=0.1,0.2", "--no-progress", "--out", str(out)]
    assert main(argv) == 0  # claims: validation = claim, so the highest value always wins alone
    assert [p["values"]["claim"] for p in _lines(out / "sweeps.jsonl")] == [0.1, 0.2, 0.4, 0.8]  # x2, twice
    (record,) = _lines(out / "results.jsonl")
    sweep = record["sweep"]
    assert sweep["widened"] == {"claim": [0.4, 0.8]} and sweep["size"] == 4 and sweep["winner"] == {"claim": 0.8}
    assert record["config"]["sweep"]["grid"] == {"claim": [0.1, 0.2, 0.4, 0.8]}  # its own run id
    assert record["run_spec"]["sweep_widen"] == 2  # the default, recorded
    assert "best claim at the grid's edge" in (out / "results.md").read_text()  # the limit was reached
    # 0.6 x2 would pass claim's declared range (at most 1): the edge stays, as with sweep_widen 0
    for flags, tried in (([], [0.3, 0.6]), (["--sweep-widen", "0"], [0.1, 0.2])):
        again = tmp_path / f"again{len(flags)}"
        argv = [*TOY, "--strategy", "claims", "--sweep", f"claim={tried[0]},{tried[1]}", *flags, "--out", str(again)]
        assert main([*argv, "--no-progress"]) == 0
        assert [p["values"]["claim"] for p in _lines(again / "sweeps.jsonl")] == tried
        assert "widened" not in _lines(again / "results.jsonl")[0]["sweep"]


def _scored(grid: Grid, scores: list[float]) -> list[dict]:
    return [
        {"values": v, "val_accuracy": s, "status": "ok", "index": i}
        for i, (v, s) in enumerate(zip(grid.points(), scores, strict=True))
    ]


def test_past_edge_continues_the_grids_step_on_the_winning_side_only_for_a_lone_winner():
    lrs = Grid((("lr", (1e-4, 3e-4, 9e-4)),))
    assert past_edge(lrs, _scored(lrs, [0.8, 0.7, 0.6]), lrs, 2) == pytest.approx(3.33e-5)  # the low edge
    assert past_edge(lrs, _scored(lrs, [0.6, 0.7, 0.8]), lrs, 2) == pytest.approx(2.7e-3)
    assert past_edge(lrs, _scored(lrs, [0.6, 0.8, 0.7]), lrs, 2) is None  # bracketed
    assert past_edge(lrs, _scored(lrs, [0.8, 0.8, 0.7]), lrs, 2) is None  # the edge ties an inner value
    assert past_edge(lrs, _scored(lrs, [0.6, 0.7, 0.8]), lrs, 0) is None
    wider = lrs.extended(2.7e-3).extended(8.1e-3)
    assert past_edge(wider, _scored(wider, [0.1, 0.2, 0.3, 0.4, 0.5]), lrs, 2) is None  # two added on that side
    assert past_edge(wider, _scored(wider, [0.9, 0.2, 0.3, 0.4, 0.5]), lrs, 2) == pytest.approx(3.33e-5)
    ranks = Grid((("lora_rank", (4, 8)),))
    assert past_edge(ranks, _scored(ranks, [0.5, 0.6]), ranks, 2) == 16  # integers stay integers
    two = Grid((("lr", (1e-3, 1e-2)), ("weight_decay", (0.0, 0.1))))
    assert past_edge(two, _scored(two, [0.1, 0.2, 0.3, 0.9]), two, 2) is None  # several axes: no single edge


def test_a_killed_widening_resumes_without_training_its_recorded_points_again(tmp_path, monkeypatch):
    specs = [_spec("claims", sweep={"claim": (0.1, 0.2)})]
    record, ran = _killed_then_resumed(specs, tmp_path, monkeypatch, after=3)  # 0.1, 0.2 and 0.4, widened
    assert ran == ["point", "final"]  # only 0.8 was left
    assert record["sweep"]["widened"] == {"claim": [0.4, 0.8]} and len(_lines(tmp_path / "sweeps.jsonl")) == 4


def test_default_sweeps_are_three_learning_rates_around_each_recipe_and_none_for_the_probe(tmp_path):
    out = tmp_path / "out"
    argv = [*TOY, "--strategy", "scratch,linear-probe", "--sweep", "default", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    records = {r["strategy"]: r for r in _lines(out / "results.jsonl")}
    assert records["scratch"]["sweep"]["grid"] == {"lr": [0.000667, 0.002, 0.006]}  # scratch's 2e-3 x 1/3, 1, 3
    assert "sweep" not in records["linear-probe"]  # its C search is its sweep
    table = (out / "results.md").read_text()
    cost = records["scratch"]["sweep"]["train_s"]
    assert (
        f"| 3 (lr, on the first seed) | {cost:.1f} s, " in table
        or f"| 3 (lr, on the first seed) | {cost:.0f} s, " in table
    )
    assert "| 4 (C, in the fit) | in train s |" in table


def test_shards_take_a_sweep_whole():
    specs = [_spec(seed=s, sweep="default") for s in (0, 1, 2)] + [_spec("finetune", seed=s) for s in (0, 1, 2)]
    shards = [Shard(i, 2).select(specs) for i in (1, 2)]
    owners = {spec.seed: i for i, mine in enumerate(shards) for spec in mine if spec.sweep}
    assert len(set(owners.values())) == 1 and sum(len(s) for s in shards) == 6


@pytest.mark.parametrize(
    "flag, says",
    [
        (["lr=1e-3,abc"], "--lr: expected a finite number above 0"),
        (["lrr=1e-3"], "'lrr' is not a sweepable option; did you mean 'lr'?"),
        (["seed=0,1"], "'seed' is not a sweepable option"),
        (["lr"], "expected default or OPTION=V1,V2"),
        (["lr=1e-3,1e-3"], "a value is repeated"),
    ],
)
def test_a_bad_sweep_is_one_line(flag, says):
    with pytest.raises(UserError, match=None) as caught:
        parse_flag(flag)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_matrix_files_sweep_key_is_read_and_checked(tmp_path, capsys):
    good = tmp_path / "m.yaml"
    good.write_text(
        "runs:\n  - {task: toy-iris, adapter: toy-mlp, strategy: scratch, sweep: {lr: [0.001, 0.01]}}\n"
        "budget: {epochs: 1, batch_size: 16, min_steps: 0}\n"
    )
    assert main(["run", "--config", str(good), "--show-config"]) == 0
    assert "sweep:\n    lr:\n    - 0.001\n    - 0.01" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - {task: toy-iris, adapter: toy-mlp, strategy: scratch, sweep: {lr: [-1]}}\n")
    assert main(["run", "--config", str(bad), "--show-config"]) == 2
    assert "bad.yaml:2: sweep: lr: expected a finite number above 0" in capsys.readouterr().err


def test_scratch_budget_adds_scratch_rows_at_k_times_the_steps(tmp_path):
    out = tmp_path / "out"
    argv = [*TOY, "--strategy", "scratch,finetune", "--scratch-budget", "4x", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    records = _lines(out / "results.jsonl")
    scratch = {r["run_spec"].get("budget_multiple", 1): r for r in records if r["strategy"] == "scratch"}
    assert scratch[4.0]["steps"] == 4 * scratch[1]["steps"] and len(records) == 3
    rows = {r["strategy"]: r for r in aggregate(records)}
    assert set(rows) == {"scratch", "scratch 4x", "finetune"}
    best = max((rows["scratch"], rows["scratch 4x"]), key=lambda r: r["accuracy_mean"])
    assert rows["finetune"]["best_scratch"] == ("toy-mlp" if best is rows["scratch"] else "toy-mlp scratch 4x")
    assert rows["scratch 4x"]["gain_pts"] is not None  # against the same architecture at the own budget
    assert main([*TOY, "--scratch-budget", "1x"]) == 2


@pytest.mark.parametrize("by", ["flops", "seconds"])
def test_match_compute_gives_scratch_the_compute_of_each_strategy_it_is_compared_to(tmp_path, by):
    import toy_family  # noqa: F401  (toymlp:<width>, which LoRA applies to)

    out = tmp_path / "out"
    argv = ["run", "--task", "toy-iris", "--adapter", "toymlp:24", "--strategy", "lora,scratch", "--epochs", "2"]
    argv += ["--batch-size", "16", "--min-steps", "0", "--match-compute", by, "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    records = {r["run_spec"].get("matched_to") or r["strategy"]: r for r in _lines(out / "results.jsonl")}
    assert set(records) == {"lora", "scratch", f"lora {by}"}
    lora, scratch, matched = records["lora"], records["scratch"], records[f"lora {by}"]
    cost = (lambda r: r["train_flops"]) if by == "flops" else (lambda r: r["time"]["train_s"])
    per_step, per_epoch = cost(scratch) / scratch["steps"], scratch["steps"] // 2
    wanted = -(-cost(lora) // per_step)  # steps lora's compute buys scratch, rounded up to whole epochs
    assert matched["steps"] == max(1, -(-wanted // per_epoch)) * per_epoch
    rows = {r["strategy"]: r for r in aggregate(list(records.values()))}
    assert f"scratch =lora {by}" in rows and rows["lora"]["best_scratch"] is not None


@pytest.mark.slow  # eight small trainings, half of them in Ray worker processes: a minute or two on 2 cores
def test_ray_runs_a_sweeps_points_side_by_side_and_chooses_as_the_serial_executor(tmp_path):
    pytest.importorskip("ray")
    import matrix_cells

    from transferbench.benchmarks.execution.executors import ExecutorOptions
    from transferbench.benchmarks.execution.ray_executor import RayExecutor

    specs = [
        # the grid as given (sweep_widen 0): widening is the driver's, the same under any executor
        matrix_cells.spec("scratch", s, sweep={"lr": (1e-3, 1e-2)}, sweep_widen=0, budget=Budget(2, 16, min_steps=0))
        for s in (0, 1)
    ]
    with matrix_cells.one_thread():
        serial = run_all(specs, out_dir=tmp_path / "serial", progress=False, log=lambda _: None)
        executor = RayExecutor(ExecutorOptions(cpus_per_run=1, local_cpus=2))
        try:
            placed = run_all(specs, out_dir=tmp_path / "ray", executor=executor, progress=False, log=lambda _: None)
        finally:
            executor.close()
    scores = [{p["index"]: p["val_accuracy"] for p in _lines(tmp_path / d / "sweeps.jsonl")} for d in ("ray", "serial")]
    assert scores[0] == scores[1] and len(scores[0]) == 2  # in the order they finished: any, under Ray
    by_seed = {r["seed"]: r for r in placed}
    for record in serial:
        assert matrix_cells.comparable(by_seed[record["seed"]]) == matrix_cells.comparable(record)
        assert by_seed[record["seed"]]["sweep"]["winner"] == record["sweep"]["winner"]
