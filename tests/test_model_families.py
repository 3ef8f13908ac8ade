"""Bring your own model: ``timm:<name>``, ``torchvision:<name>`` and ``hf:<hub id or dir>`` resolve
through the adapter registry's families, honour the adapter contract, load local weight files
safely, and name the revision of what they loaded. Offline, CPU, small inputs (32 px)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from transferbench import testing
from transferbench.adapters import ADAPTERS
from transferbench.adapters.contract import check_adapter
from transferbench.adapters.families import CURATED, family_of, hub_commit, weights_revision
from transferbench.adapters.weights import sha256_file
from transferbench.errors import UserError, WeightsError
from transferbench.registry import Registry

timm = pytest.importorskip("timm")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny at 32 px: intra-op threads gain nothing, and on a shared, loaded CPU their
    spin-waits make each forward pass ~100x slower (measured: 0.02 s on one thread, 2.8 s on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pixels(n: int = 4, size: int = 32) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return {"pixel_values": torch.randn(n, 3, size, size)}


def _hub_cache(cache: Path, repo: str, files: dict[str, Path], commit: str = "c0ffee" * 6 + "beef") -> str:
    """Files laid out as huggingface_hub caches ``repo`` at ``commit`` (refs/main -> snapshot), so
    offline loads of the hub id go through the real hub code path and find them."""
    snapshot = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(commit)
    return commit


def _covers_backbone(model) -> bool:
    held = {id(p) for block in model.blocks() for p in block.parameters()}
    return all(id(p) in held for p in model.backbone.parameters())


# --- the registry hook -------------------------------------------------------------------------
def test_a_family_resolves_once_and_stays_out_of_names():
    calls = []

    def resolver(rest: str) -> tuple[str, str]:
        calls.append(rest)
        if rest.lower() != "b":
            raise UserError(f"no {rest!r}")
        return "b", f"entry {rest}"

    reg: Registry[str] = Registry("thing")
    reg.add("a", "plain")
    reg.add_family("fam", resolver, description="a letter")
    assert reg.get("fam:b") == "entry b" and reg.get("FAM:B") == "entry b"  # one entry per model
    assert reg.canonical("Fam: B") == "fam:b" and "fam:b" in reg
    reg.get("fam:b")
    assert calls == ["b", "B", "B"]  # resolved once per spelling, then cached
    assert reg.names() == ["a"] and reg.families() == {"fam": "a letter"}
    with pytest.raises(UserError, match="no 'z'"):
        reg.get("fam:z")
    with pytest.raises(UserError, match=r"Did you mean: fam:b\?.*or fam:<a letter>"):
        reg.get("fan:b")


def test_family_names_are_canonical_and_cached():
    spec = ADAPTERS.get("timm:ResNet18")
    assert spec is ADAPTERS.get("timm:resnet18")
    assert ADAPTERS.canonical("TIMM:resnet18") == spec.name == "timm:resnet18"
    assert ADAPTERS.canonical("torchvision:MobileNet-V3-Small") == "torchvision:mobilenet_v3_small"
    assert ADAPTERS.canonical("torchvision:resnet50.imagenet1k_v1") == "torchvision:resnet50.IMAGENET1K_V1"
    assert (spec.domain, spec.input_size, spec.family, spec.model) == ("vision", 224, "timm", "resnet18")
    assert not any(":" in name for name in ADAPTERS.names())  # resolved families never join the listing
    assert {"timm", "torchvision", "hf"} <= set(ADAPTERS.families())  # a test may add a toy one (toy_family.py)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("timm:resnt18", "timm:resnet18"),
        ("timm:not-a-model", "timm.list_models()"),
        ("torchvision:mobilenet_v3_smal", "torchvision:mobilenet_v3_small"),
        ("timm:resnet18.nope", "a1_in1k"),
        ("torchvision:resnet18.V9", "IMAGENET1K_V1"),
        ("timn:resnet18", "timm:resnet18"),
        ("hf:/no/such/dir", "not a local save_pretrained() directory"),
    ],
)
def test_unknown_family_names_are_one_line_with_suggestions(name, expected):
    with pytest.raises(UserError) as info:
        ADAPTERS.get(name)
    message = str(info.value)
    assert expected in message and "\n" not in message


# --- curated names -----------------------------------------------------------------------------
def test_curated_names_keep_their_identity_and_each_has_a_family():
    assert ADAPTERS.canonical("ResNet-18") == "resnet18"
    assert ADAPTERS.get("resnet18").revision == 1 and type(ADAPTERS.get("resnet18")).__name__ == "AdapterSpec"

    # the package's own adapters (a test may have registered a toy one, e.g. tests/toy_domain.py)
    def module(build):
        return getattr(build, "func", build).__module__

    ours = [n for n in ADAPTERS.names() if module(ADAPTERS.get(n).build).startswith("transferbench.")]
    assert {name: family_of(ADAPTERS.get(name)) for name in ours if not family_of(ADAPTERS.get(name))} == {}
    assert set(CURATED) == set(ours)
    assert family_of(ADAPTERS.get("resnet18")) == "torchvision" and family_of(ADAPTERS.get("timm:resnet18")) == "timm"


def test_torchvision_family_resnet18_computes_what_curated_resnet18_does():
    """The claim in CURATED["resnet18"].same_as: same init, features, logits and blocks."""
    assert CURATED["resnet18"].same_as == "torchvision:resnet18"
    models = []
    for name in ("resnet18", "torchvision:resnet18"):
        torch.manual_seed(0)
        models.append(ADAPTERS.get(name).create(num_classes=3, pretrained=False).eval())
    curated, family = models
    with torch.no_grad():
        assert torch.equal(curated(_pixels()), family(_pixels()))
    twins = dict(zip(map(id, family.backbone.parameters()), map(id, curated.backbone.parameters()), strict=True))
    pairs = list(zip(family.blocks(), curated.blocks(), strict=True))
    assert len(pairs) == 5
    for ours, theirs in pairs:
        assert {twins[id(p)] for p in ours.parameters()} == {id(p) for p in theirs.parameters()}
    assert curated.preprocessing == family.preprocessing


# --- timm ----------------------------------------------------------------------------------------
def test_timm_resnet18_from_scratch_builds_and_trains_one_step():
    model = ADAPTERS.get("timm:resnet18").create(num_classes=3, pretrained=False)
    assert model.preprocessing.input_size == 224 and model.preprocessing.mean == (0.485, 0.456, 0.406)
    assert len(model.blocks()) == 5 and _covers_backbone(model)  # timm's groups: stem + 4 stages
    assert model.weights_revision is None
    model.train()
    optimizer = torch.optim.SGD(model.param_groups(0.1), lr=0.1)
    before = [p.detach().clone() for p in model.backbone.parameters()]
    loss = F.cross_entropy(model(_pixels()), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters(), strict=True))


def test_timm_weights_file_loads_as_pretrained(tmp_path):
    """A full timm checkpoint (classifier included) written from a scratch model loads through
    --weights; the adapter's features are timm's own pre-logits for those weights."""
    from safetensors.torch import save_file

    torch.manual_seed(1)
    reference = timm.create_model("resnet10t", pretrained=False).eval()
    path = tmp_path / "resnet10t.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = ADAPTERS.get("timm:resnet10t").create(num_classes=3, pretrained=True, weights=str(path)).eval()
    batch = _pixels()
    with torch.no_grad():
        expected = reference.forward_head(reference.forward_features(batch["pixel_values"]), pre_logits=True)
        assert torch.allclose(model.forward_features(batch), expected, atol=1e-6)
    assert model.weights_revision == f"sha256:{sha256_file(path)}"
    assert weights_revision("timm:resnet10t", model, pretrained=True, weights=str(path)) == model.weights_revision


def test_timm_pretrained_loads_through_timms_own_hub_loading(tmp_path, monkeypatch):
    """pretrained=True goes through timm's loading (here from a hub cache copy, offline) and the
    model names the hub commit it came from."""
    from huggingface_hub import constants
    from safetensors.torch import save_file

    torch.manual_seed(1)
    reference = timm.create_model("resnet10t", pretrained=False).eval()
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "model.safetensors"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    commit = _hub_cache(
        tmp_path / "hub", "timm/resnet10t.c3_in1k", {"model.safetensors": tmp_path / "model.safetensors"}
    )
    model = ADAPTERS.get("timm:resnet10t").create(num_classes=3, pretrained=True).eval()
    batch = _pixels()
    with torch.no_grad():
        expected = reference.forward_head(reference.forward_features(batch["pixel_values"]), pre_logits=True)
        assert torch.allclose(model.forward_features(batch), expected, atol=1e-6)
    assert model.weights_revision == f"hf:timm/resnet10t.c3_in1k@{commit}"


def test_timm_pretrained_without_the_hub_is_one_line():
    with pytest.raises(WeightsError) as info:
        ADAPTERS.get("timm:resnet10t").create(num_classes=3, pretrained=True)
    assert "--weights" in str(info.value) and "\n" not in str(info.value)


def test_timm_vit_runs_below_its_native_size():
    model = ADAPTERS.get("timm:vit_tiny_patch16_224").create(num_classes=3, pretrained=False).eval()
    assert model.preprocessing.input_size == 224 and model.preprocessing.mean == (0.5, 0.5, 0.5)
    with torch.no_grad():
        assert tuple(model(_pixels(2, 32)).shape) == (2, 3)
    assert len(model.blocks()) == 13 and _covers_backbone(model)  # embeddings + 12 transformer blocks


# --- torchvision ---------------------------------------------------------------------------------
def test_torchvision_mobilenet_v3_small_from_scratch_builds():
    model = ADAPTERS.get("torchvision:mobilenet_v3_small").create(num_classes=3, pretrained=False).eval()
    assert model.num_features == 1024 and model.preprocessing.input_size == 224
    with torch.no_grad():
        assert tuple(model(_pixels(2)).shape) == (2, 3)
    assert _covers_backbone(model) and model.weights_revision is None


def test_torchvision_pretrained_loads_the_weights_enums_file(tmp_path, monkeypatch):
    """pretrained=True loads the weights enum's file through torch.hub (here a copy already in its
    cache, so nothing downloads); the model names that file's sha256, as curated resnet18 does."""
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    published = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT
    torch.manual_seed(1)
    reference = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    cached = tmp_path / "checkpoints" / Path(published.url).name
    torch.save(reference.state_dict(), cached)
    model = ADAPTERS.get("torchvision:mobilenet_v3_small").create(num_classes=3, pretrained=True)
    ours = model.backbone.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in reference.state_dict().items() if not k.startswith("classifier.3."))
    assert model.weights_revision == f"sha256:{sha256_file(cached)}"
    resnet18 = tmp_path / "checkpoints" / Path(torchvision.models.get_model_weights("resnet18").DEFAULT.url).name
    resnet18.write_bytes(b"stands in for the downloaded file")
    assert weights_revision("resnet18", object(), pretrained=True, weights=None) == f"sha256:{sha256_file(resnet18)}"


def test_torchvision_squeezenet_has_no_final_linear_classifier():
    with pytest.raises(UserError, match="no final linear layer"):
        ADAPTERS.get("torchvision:squeezenet1_1").create(num_classes=3, pretrained=False)


# --- the contract over a sample of architectures -------------------------------------------------
FAMILY_SAMPLE = [
    "timm:resnet10t",
    "timm:convnext_atto",
    "timm:mobilenetv3_small_050",
    "timm:vit_tiny_patch16_224",
    "timm:efficientnet_b0",
    "torchvision:resnet18",
    "torchvision:mobilenet_v3_small",
    "torchvision:efficientnet_b0",
    "torchvision:shufflenet_v2_x0_5",
    "torchvision:convnext_tiny",
    "torchvision:densenet121",
]


@pytest.mark.parametrize("name", FAMILY_SAMPLE)
def test_family_adapters_honour_the_contract(name, tmp_path):
    check_adapter(name, tmp_path)


# --- hf ------------------------------------------------------------------------------------------
def test_hf_family_takes_a_local_text_encoder(tmp_path):
    folder = testing.tiny_bert(tmp_path)["model_path"]
    spec = ADAPTERS.get(f"hf:{folder}")
    assert (spec.name, spec.domain, spec.family) == (f"hf:{folder}", "text", "hf")
    assert "model_path" not in spec.option_names and "pooling" in spec.option_names
    check_adapter(spec.name, tmp_path, checks=("spec-agrees", "domain-pipeline", "shapes", "freeze", "head-reset"))
    torch.manual_seed(0)
    model = spec.create(num_classes=2, pretrained=True)
    torch.manual_seed(0)
    same = ADAPTERS.get("hf-encoder").create(num_classes=2, pretrained=True, model_path=folder)
    batch = model.example_batch(2)
    with torch.no_grad():
        assert torch.equal(model(batch), same(batch))  # hf:DIR is hf-encoder --model-path DIR
    revision = f"sha256:{sha256_file(f'{folder}/model.safetensors')}"
    assert model.weights_revision == revision
    assert weights_revision("hf-encoder", same, pretrained=True, weights=None) == revision


def test_hub_ids_load_from_the_hub_and_name_its_commit(tmp_path, monkeypatch):
    """``hf:<hub id>`` and a curated hub encoder (bert-tiny) load through from_pretrained (here from
    a hub cache copy, offline); both records would name the hub commit."""
    from huggingface_hub import constants

    folder = Path(testing.tiny_bert(tmp_path)["model_path"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    files = {path.name: path for path in folder.iterdir()}
    commit = _hub_cache(tmp_path / "hub", "someone/tiny-bert", files)
    _hub_cache(tmp_path / "hub", "prajjwal1/bert-tiny", files, commit)
    spec = ADAPTERS.get("hf:someone/tiny-bert")
    assert (spec.name, spec.domain) == ("hf:someone/tiny-bert", "text")
    model = spec.create(num_classes=2, pretrained=True)
    assert model.weights_revision == f"hf:someone/tiny-bert@{commit}"
    curated = ADAPTERS.get("bert-tiny").create(num_classes=2, pretrained=True)
    assert weights_revision("bert-tiny", curated, pretrained=True, weights=None) == f"hf:prajjwal1/bert-tiny@{commit}"


def test_hf_family_takes_a_local_speech_encoder(tmp_path):
    folder = testing.tiny_wav2vec2(tmp_path)["model_path"]
    spec = ADAPTERS.get(f"hf:{folder}")
    assert (spec.domain, spec.sample_rate, spec.option_names) == ("audio", testing.SPEECH_RATE, {"trust_remote_code"})
    check_adapter(spec.name, tmp_path, checks=("spec-agrees", "shapes", "freeze"))


# --- revisions -----------------------------------------------------------------------------------
def test_hub_commit_reads_the_local_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert hub_commit("timm/resnet18.a1_in1k") is None
    refs = tmp_path / "models--timm--resnet18.a1_in1k" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40 + "\n")
    assert hub_commit("timm/resnet18.a1_in1k") == f"hf:timm/resnet18.a1_in1k@{'a' * 40}"
    assert hub_commit("some/repo", "b" * 40) == f"hf:some/repo@{'b' * 40}"


def test_weights_revision_of_curated_adapters(tmp_path):
    from transferbench.adapters.vision import EFFNET_LITE0_SHA256

    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(1)}, path)
    assert weights_revision("resnet18", object(), pretrained=False, weights=None) is None
    assert weights_revision("resnet18", object(), pretrained=True, weights=str(path)) == f"sha256:{sha256_file(path)}"
    assert weights_revision("efficientnet-lite0", object(), pretrained=True, weights=None) == (
        f"sha256:{EFFNET_LITE0_SHA256}"
    )


def _run(argv: list[str], out: Path) -> dict:
    from transferbench.benchmarks.cli import main

    common = ["--epochs", "1", "--batch-size", "8", "--min-steps", "0", "--no-progress", "--out", str(out)]
    assert main(["run", *argv, *common]) == 0
    return json.loads((out / "results.jsonl").read_text().splitlines()[-1])


def test_families_run_through_transferbench_run(tmp_path, small_imagefolder, sst2_like):
    """Any model by name, end to end: timm and torchvision from scratch, timm from a local weights
    file as a probe, and hf:<local MiniLM dir> on the SST-2 layout; each record names its weights."""
    from safetensors.torch import save_file

    from transferbench.adapters.text import minilm_path

    images = ["--task", "imagefolder", "--data-dir", str(small_imagefolder), "--image-size", "32"]
    for name in ("timm:resnet18", "torchvision:mobilenet_v3_small"):
        record = _run([*images, "--adapter", name, "--strategy", "scratch"], tmp_path / name.replace(":", "-"))
        assert record["adapter"] == name and record["status"] in ("ok", "near-chance")
        assert record["weights_revision"] is None  # from scratch: no weights to name
    weights = tmp_path / "resnet10t.safetensors"
    save_file(ADAPTERS.get("timm:resnet10t").create(num_classes=3, pretrained=False).backbone.state_dict(), weights)
    argv = [*images, "--adapter", "timm:resnet10t", "--strategy", "linear-probe", "--weights", str(weights)]
    record = _run(argv, tmp_path / "probe")
    assert record["weights_revision"] == f"sha256:{sha256_file(weights)}"
    text = ["--task", "sst2", "--data-dir", str(sst2_like), "--max-train-examples", "200", "--max-length", "32"]
    record = _run([*text, "--adapter", f"hf:{minilm_path()}", "--strategy", "linear-probe"], tmp_path / "hf")
    assert record["status"] == "ok" and record["weights_revision"].startswith("sha256:")
    assert record["adapter"] == f"hf:./{Path(minilm_path()).name}"
    assert record["config"]["local_revisions"] == {"adapter": record["weights_revision"]}


def test_records_name_no_absolute_path_and_keep_same_named_folders_apart(tmp_path, small_imagefolder):
    """Records get published: a --weights file (or hf: folder) given by absolute path appears by its
    name, and its content hash, not its path, tells two files of one name apart in the run id."""
    from safetensors.torch import save_file

    images = ["--task", "imagefolder", "--data-dir", str(small_imagefolder), "--image-size", "32"]
    records = []
    for copy in ("a", "b"):
        weights = tmp_path / copy / "w.safetensors"
        weights.parent.mkdir()
        torch.manual_seed(ord(copy))
        save_file(ADAPTERS.get("timm:resnet10t").create(num_classes=3, pretrained=False).backbone.state_dict(), weights)
        argv = [*images, "--adapter", "timm:resnet10t", "--strategy", "linear-probe", "--weights", str(weights)]
        records.append(_run(argv, tmp_path / f"out-{copy}"))
    assert [r["config"]["weights"] for r in records] == ["w.safetensors"] * 2
    assert records[0]["run_id"] != records[1]["run_id"]
    for record in records:
        assert str(tmp_path) not in json.dumps(record) and str(small_imagefolder) not in json.dumps(record)
