"""The strategy contract over every strategy x every adapter (tiny configs), and the parameter-
efficient and modern strategies' own guarantees: refusals before data loads, recorded fields,
the per-epoch hook, merging after training."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.plan.resolve import resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.strategies import peft_layers as peft_tuning
from transferbench.benchmarks.strategies.base import STRATEGIES, applicable_adapters
from transferbench.benchmarks.strategies.contract import check_strategy, example_batch, tiny_adapter
from transferbench.benchmarks.training.loop import Budget, FitRun, train
from transferbench.errors import UserError


def _ours(module: str) -> bool:
    return module.startswith("transferbench.")


# The package's own strategies and adapters (a test that imports toy ones must not change this list).
OWN_STRATEGIES = [n for n in STRATEGIES.names() if _ours(type(STRATEGIES.get(n)).__module__)]
OWN_ADAPTERS = [
    n for n in ADAPTERS.names() if _ours(getattr(ADAPTERS.get(n).build, "func", ADAPTERS.get(n).build).__module__)
]
PAIRS = [(s, a) for s in OWN_STRATEGIES for a in OWN_ADAPTERS]
NEW = ("lora", "ia3", "bitfit", "llrd", "gradual-unfreeze")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("strategy-contract")


_PRISTINE: dict[str, torch.nn.Module] = {}


@pytest.fixture(scope="module", autouse=True)
def _tiny_models_on_one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared CPU torch's threads wait on
    each other: a tiny ResNet-50 forward took 2 s on 2 threads and 0.03 s on 1 (measured here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    _PRISTINE.clear()  # the tiny models are ~1 GB together: not for the rest of the session


def _builder(adapter: str, workdir: Path):
    """Tiny instances by deep copy of one built per adapter: building resnet50 or vgg16 each time
    would cost most of this file's time budget."""
    if adapter not in _PRISTINE:
        _PRISTINE[adapter] = tiny_adapter(ADAPTERS.get(adapter), workdir)
    return lambda: copy.deepcopy(_PRISTINE[adapter])


@pytest.mark.parametrize(("strategy", "adapter"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_strategy_contract(strategy, adapter, workdir):
    applies = STRATEGIES.get(strategy).applies_to(ADAPTERS.get(adapter))
    build = None if ADAPTERS.get(adapter).classical or not applies else _builder(adapter, workdir)
    checks = check_strategy(strategy, adapter, workdir, build=build)
    assert checks[0] == ("accepted" if applies else "refused")
    if strategy in ("lora", "ia3") and applies:
        assert "peft" in checks


def test_every_new_strategy_is_registered_and_covers_every_domain():
    assert set(NEW) <= set(OWN_STRATEGIES)
    for name in NEW:
        domains = {ADAPTERS.get(a).domain for a in applicable_adapters(STRATEGIES.get(name), ADAPTERS)}
        assert domains == {"vision", "text", "audio"}, name


# --- refusals, before any data loads -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("strategy", "adapter", "says"),
    [
        ("lora", "speaker-encoder", "no layers lora wraps by default"),
        ("ia3", "speaker-encoder", "no layers ia3 wraps by default"),
        ("lora", "logmel-cnn", "no published pretrained weights"),
        ("bitfit", "tfidf-logreg", "classical model"),
        ("gradual-unfreeze", "logmel-cnn", "no published pretrained weights"),
    ],
)
def test_refusal_is_one_line_naming_adapter_strategy_and_need(strategy, adapter, says):
    with pytest.raises(UserError) as info:
        STRATEGIES.get(strategy).check(ADAPTERS.get(adapter), "linear")
    message = str(info.value)
    assert "\n" not in message and says in message
    assert f"strategy {strategy!r}" in message and f"adapter {adapter!r}" in message


def test_the_run_refuses_before_any_data_loads(monkeypatch):
    from transferbench.benchmarks.execution import matrix

    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before the strategy was checked")

    monkeypatch.setattr(matrix, "load_task", no_data)  # where a run loads its data
    spec = RunSpec(task="speech-commands", adapter="speaker-encoder", strategy="lora")
    with pytest.raises(UserError, match="strategy 'lora' does not apply to adapter 'speaker-encoder'"):
        resolve(spec)


def test_explicit_target_modules_make_lora_apply_where_no_default_exists(workdir):
    spec = ADAPTERS.get("speaker-encoder")
    lora = STRATEGIES.get("lora").with_overrides(target_modules="linear")
    lora.check(spec, "linear")
    model = _builder("speaker-encoder", workdir)()
    lora.prepare(model)
    assert model.peft_record["wrapped_modules"] == ["backbone.linear"]
    with pytest.raises(UserError, match="matched no layer lora can wrap"):
        STRATEGIES.get("lora").with_overrides(target_modules="lstm0").prepare(_builder("speaker-encoder", workdir)())


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"lora_rank": 0}, "--lora-rank: expected an integer of at least 1, got 0"),
        ({"lora_alpha": -1.0}, "--lora-alpha: expected a finite number above 0"),
        ({"lora_dropout": 1.0}, r"--lora-dropout: expected a finite number in \[0, 0.99\]"),
        ({"target_modules": "conv[("}, "not a valid regular expression"),
        ({"freeze": "none"}, "--freeze none does not apply"),
    ],
)
def test_bad_lora_fields_are_refused_in_one_line(overrides, says):
    with pytest.raises(UserError, match=says):
        STRATEGIES.get("lora").with_overrides(**overrides).check(ADAPTERS.get("minilm-l6"), "linear")


def test_a_field_the_strategy_lacks_is_refused_and_unset_ones_are_ignored():
    with pytest.raises(UserError, match=r"^--lora-rank does not apply to strategy 'finetune'$"):
        STRATEGIES.get("finetune").with_overrides(lora_rank=4)
    assert STRATEGIES.get("finetune").with_overrides(lora_rank=None) == STRATEGIES.get("finetune")


# --- what each strategy records ---------------------------------------------------------------------------
def test_existing_strategies_identity_is_unchanged():
    """to_dict() is part of every run's identity hash: the keys of the existing strategies stay put."""
    keys = {
        "name",
        "description",
        "pretrained",
        "freeze",
        "bn_policy",
        "lr",
        "backbone_lr_scale",
        "weight_decay",
        "precise_bn",
        "bn_momentum",
        "probe",
        "head_init",
    }
    for name in ("finetune", "partial", "scratch"):
        assert set(STRATEGIES.get(name).to_dict()) == keys, name
    for name in ("linear-probe", "lp-ft"):  # their C search widened, deliberately a new recipe (probe.py)
        assert set(STRATEGIES.get(name).to_dict()) == keys | {"c_search"}, name


def test_new_strategies_record_their_fields_and_defaults():
    lora = STRATEGIES.get("lora").to_dict()
    assert {k: lora[k] for k in ("target_modules", "lora_rank", "lora_alpha", "lora_dropout")} == {
        "target_modules": "auto",
        "lora_rank": 8,
        "lora_alpha": 16.0,
        "lora_dropout": 0.0,
    }
    assert STRATEGIES.get("ia3").to_dict()["feedforward_modules"] == "auto"
    assert STRATEGIES.get("bitfit").to_dict()["train_norm"] is False
    assert STRATEGIES.get("llrd").to_dict()["layer_decay"] == 0.8
    assert STRATEGIES.get("gradual-unfreeze").to_dict()["blocks_per_epoch"] == 1
    json.dumps([STRATEGIES.get(n).to_dict() for n in NEW])  # recordable as is
    # overridable through a recipe, as the runner applies them
    assert STRATEGIES.get("lora").with_overrides(**{"lora_rank": 4, "lr": 4e-4}).to_dict()["lora_rank"] == 4


@pytest.mark.parametrize("adapter", ["resnet18", "efficientnet-lite0", "minilm-l6", "wav2vec2-base"])
def test_default_targets_per_family(adapter, workdir):
    model = _builder(adapter, workdir)()
    STRATEGIES.get("lora").prepare(model)
    wrapped = model.peft_record["wrapped_modules"]
    if adapter == "resnet18":  # the convolutions of layer3 and layer4, downsampling included
        assert wrapped and all(n.startswith(("backbone.layer3.", "backbone.layer4.")) for n in wrapped)
        assert "backbone.layer4.0.downsample.0" in wrapped
    elif adapter == "efficientnet-lite0":  # pointwise only: no depthwise, no 3x3 stem
        modules = dict(model.named_modules())
        assert all(modules[n].get_base_layer().kernel_size == (1, 1) for n in wrapped)
        assert not any("_depthwise_conv" in n for n in wrapped)
    else:
        assert {n.rsplit(".", 1)[-1] for n in wrapped} in ({"query", "value"}, {"q_proj", "v_proj"})


def test_user_regex_records_what_lora_skipped(workdir):
    model = _builder("efficientnet-lite0", workdir)()
    STRATEGIES.get("lora").with_overrides(target_modules=r"_blocks\.1\..*").prepare(model)
    record = model.peft_record
    assert record["wrapped_modules"] == ["backbone._blocks.1._expand_conv", "backbone._blocks.1._project_conv"]
    skipped = record["skipped_modules"]
    assert "grouped convolution" in skipped["backbone._blocks.1._depthwise_conv"]
    assert "BatchNorm2d" in skipped["backbone._blocks.1._bn0"]


def test_param_groups_file_inserted_weights_as_adapter(workdir):
    model = _builder("minilm-l6", workdir)()
    lora = STRATEGIES.get("lora")
    lora.prepare(model)
    groups = {g["name"]: g for g in lora.param_groups(model)}
    assert set(groups) == {"head", "head-no-decay", "adapter"}
    assert groups["adapter"]["lr"] == lora.lr * lora.backbone_lr_scale
    assert sum(p.numel() for p in groups["adapter"]["params"]) == model.peft_record["adapter_params"] > 0


def test_llrd_rates_decay_from_the_top_block_down(workdir):
    model = _builder("resnet18", workdir)()
    llrd = STRATEGIES.get("llrd")
    llrd.prepare(model)
    groups = [g for g in llrd.param_groups(model) if g["name"].startswith("backbone-") and "no-decay" not in g["name"]]
    rates = [g["lr"] for g in groups]
    top = llrd.lr * llrd.backbone_lr_scale
    assert rates == pytest.approx([top * 0.8**k for k in range(len(rates) - 1, -1, -1)])


def test_bitfit_with_norm_trains_normalisation_weights_too(workdir):
    model = _builder("resnet18", workdir)()
    bitfit = STRATEGIES.get("bitfit").with_overrides(train_norm=True)
    bitfit.prepare(model)
    assert model.backbone.bn1.weight.requires_grad and model.backbone.bn1.bias.requires_grad
    assert not model.backbone.conv1.weight.requires_grad


# --- training through the loop: the hook, merging, bit-exact reproduction ---------------------------------
@pytest.fixture(scope="module")
def sst2(workdir):
    """A real (tiny) text run's inputs: a small SST-2-layout fixture (80 train, 40 test rows; the
    full-size one would spend this file's time budget on evaluation), and a tiny BERT as --model-path."""
    from fixtures.data import make_sst2_like

    from transferbench.tasks import TASKS, load_task
    from transferbench.testing import tiny_bert

    root = make_sst2_like(workdir / "sst2-small", train=(40, 40), validation=(20, 20), duplicates=0)
    return load_task(TASKS.get("sst2"), str(root)), tiny_bert(workdir)["model_path"]


def _execute(strategy: str, sst2, out_dir: Path | None = None, epochs: int = 2):
    from transferbench.benchmarks.execution.matrix import run_one as execute
    from transferbench.benchmarks.plan.spec import RunSpec

    data, model_path = sst2
    spec = RunSpec.create(
        "sst2",
        "minilm-l6",
        strategy,
        model_path=model_path,
        max_train_examples=32,
        budget=Budget(epochs=epochs, batch_size=8, min_steps=0),
        device="cpu",
    )
    return execute(spec, data, out_dir=out_dir, progress=False)


def test_lora_run_records_wrapped_modules_share_and_merge(sst2):
    record = _execute("lora", sst2)
    assert record["status"] in ("ok", "near-chance")
    peft = record["details"]["peft"]
    assert peft["method"] == "lora" and peft["merged"] is True
    assert peft["merge_max_abs_diff"] <= peft["merge_tolerance"]
    assert peft["wrapped_modules"] and all(n.endswith(("query", "value")) for n in peft["wrapped_modules"])
    assert 0 < peft["trainable_share"] < 1
    assert record["config"]["strategy"]["lora_rank"] == 8


@pytest.mark.parametrize("strategy", ["gradual-unfreeze", "lora"])
def test_resumed_run_with_hook_or_adapters_matches_uninterrupted_run(strategy, sst2, tmp_path, monkeypatch):
    """The hook sets its state from the epoch alone and LoRA weights are in the checkpoint: a run
    killed in its last epoch resumes to the same numbers, exactly (CPU)."""
    from transferbench.benchmarks.runtime import faults

    reference = _execute(strategy, sst2, tmp_path / "a", epochs=3)
    if strategy == "gradual-unfreeze":
        assert reference["details"]["unfrozen_blocks_by_epoch"] == [0, 1, 2]

    class Killed(Exception):
        pass

    def die(point: str) -> None:
        if faults.armed(point):
            raise Killed(point)

    monkeypatch.setenv("TRANSFERBENCH_FAULT", "eval:3")
    monkeypatch.setattr(faults, "_counts", {})
    monkeypatch.setattr(faults, "kill_if_armed", die)
    with pytest.raises(Killed):
        _execute(strategy, sst2, tmp_path / "b", epochs=3)
    monkeypatch.delenv("TRANSFERBENCH_FAULT")
    resumed = _execute(strategy, sst2, tmp_path / "b", epochs=3)
    assert resumed["details"]["resumed_from_epoch"] == 2
    assert resumed["val_accuracy_per_epoch"] == reference["val_accuracy_per_epoch"]
    assert resumed["metrics"]["accuracy"] == reference["metrics"]["accuracy"]


def test_on_epoch_hook_is_called_once_per_epoch_before_it_trains(workdir):
    calls = []
    model = tiny_adapter(ADAPTERS.get("logmel-cnn"), workdir)

    class Pipe:
        labels = torch.arange(4) % 3

        def __len__(self):
            return 4

        def groups(self, batch_size, *, shuffle, gen=None, drop_last=False):
            return [torch.arange(4)]

        def collate(self, idx, gen):
            batch = example_batch(model, ADAPTERS.get("logmel-cnn"), batch_size=4)
            return {**batch, "index": idx, "labels": self.labels}

        def batches(self, batch_size, *, shuffle, gen=None, drop_last=False):
            yield self.collate(torch.arange(4), gen)

        def unaugmented(self):
            return self

    run = FitRun(
        model,
        Budget(epochs=3, batch_size=4, min_steps=0),
        Pipe(),
        Pipe(),
        torch.device("cpu"),
        "off",
        0,
        on_epoch=lambda e: calls.append(("epoch", e)),
    )
    train(run, STRATEGIES.get("scratch").param_groups(model))
    assert [c for c in calls if c[0] == "epoch"] == [("epoch", 0), ("epoch", 1), ("epoch", 2)]


def _trained_lora(workdir: Path) -> torch.nn.Module:
    model = _builder("minilm-l6", workdir)()
    STRATEGIES.get("lora").prepare(model)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1)
    return model


def test_merge_checked_keeps_an_exact_merge_and_undoes_a_wrong_one(workdir, monkeypatch):
    model = _trained_lora(workdir)
    batch = model.example_batch(2, seq_len=12)
    assert peft_tuning.merge_checked(model, batch)["merged"] is True
    assert all(layer.merged for _, layer in peft_tuning.tuner_layers(model))

    real = peft_tuning.set_merged

    def inexact(m, merged):
        real(m, merged)
        m.head[-1].bias.data.add_(1.0 if merged else -1.0)  # a merge that moves the logits

    model = _trained_lora(workdir)
    monkeypatch.setattr(peft_tuning, "set_merged", inexact)
    result = peft_tuning.merge_checked(model, batch)
    assert result["merged"] is False and result["merge_max_abs_diff"] > result["merge_tolerance"]
    assert not any(layer.merged for _, layer in peft_tuning.tuner_layers(model))
