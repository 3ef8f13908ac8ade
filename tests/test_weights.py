"""Safe loading: weights_only everywhere, clear errors for files that are not state dicts."""

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from transferbench.adapters import ADAPTERS
from transferbench.adapters.vision import EFFNET_LITE0_SHA256, efficientnet_lite0_weights_path
from transferbench.adapters.weights import load_state_dict_file, sha256_file
from transferbench.errors import WeightsError


class RunsCode:
    """Unpickling this would call os.system: a malicious checkpoint."""

    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"weight": RunsCode()}, fh)
    with pytest.raises(WeightsError, match=r"evil\.pth.*weights_only=True"):
        load_state_dict_file(path)
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="expected a state dict"):
        load_state_dict_file(path)


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match=r"junk\.pth"):
        load_state_dict_file(tmp_path / "junk.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(WeightsError, match="safetensors"):
        load_state_dict_file(tmp_path / "junk.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        load_state_dict_file(tmp_path / "absent.pth")


def test_nested_checkpoint_and_module_prefix(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module.layer.weight": torch.ones(2)}, "epoch": 3}, path)
    assert list(load_state_dict_file(path)) == ["layer.weight"]


def test_wrong_architecture_names_the_file(tmp_path):
    path = tmp_path / "small.safetensors"
    save_file({"conv1.weight": torch.zeros(1, 1, 1, 1)}, str(path))
    with pytest.raises(WeightsError, match=r"small\.safetensors: not a state dict for ResNet.*wrong shapes"):
        ADAPTERS.get("resnet18").create(num_classes=2, pretrained=True, weights=str(path))


def test_shipped_weights_are_verified(tmp_path):
    assert sha256_file(efficientnet_lite0_weights_path()) == EFFNET_LITE0_SHA256
    tampered = tmp_path / "tampered.pth"
    torch.save({"x": torch.zeros(1)}, tampered)
    with pytest.raises(WeightsError, match="does not match"):
        load_state_dict_file(tampered, expected_sha256=EFFNET_LITE0_SHA256)


# --- transformers folders (--model-path) ----------------------------------------------------------
def test_corrupt_safetensors_in_model_path_is_one_line(tmp_path):
    from transferbench.testing import corrupt_file, tiny_bert

    folder = tiny_bert(tmp_path)["model_path"]
    corrupt_file(tmp_path / "tiny-bert" / "model.safetensors")
    with pytest.raises(WeightsError) as info:
        ADAPTERS.get("hf-encoder").create(num_classes=2, pretrained=True, model_path=folder)
    message = str(info.value)
    assert "\n" not in message
    assert f"{folder}/model.safetensors: not a readable safetensors file" in message


def test_torn_pytorch_bin_in_model_path_is_one_line(tmp_path):
    from transferbench.testing import tiny_wav2vec2

    folder = tmp_path / "tiny-wav2vec2"
    tiny_wav2vec2(tmp_path)
    state = load_state_dict_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    data = (folder / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as info:
        ADAPTERS.get("wav2vec2-base").create(num_classes=2, pretrained=True, model_path=str(folder))
    message = str(info.value)
    assert "\n" not in message
    assert f"{folder}/pytorch_model.bin: not a readable torch file" in message


def test_corrupt_weights_do_not_matter_for_scratch(tmp_path):
    """Scratch builds from the config alone: the folder's weights are never read."""
    from transferbench.testing import corrupt_file, tiny_bert

    folder = tiny_bert(tmp_path)["model_path"]
    corrupt_file(tmp_path / "tiny-bert" / "model.safetensors")
    assert ADAPTERS.get("hf-encoder").create(num_classes=2, pretrained=False, model_path=folder).num_classes == 2


@pytest.mark.parametrize("pretrained", [True, False])
@pytest.mark.parametrize("remote", [True, False])
@pytest.mark.parametrize(("adapter", "factory"), [("hf-encoder", "tiny_bert"), ("wav2vec2-base", "tiny_wav2vec2")])
def test_trust_remote_code_reaches_every_transformers_call(tmp_path, monkeypatch, adapter, factory, remote, pretrained):
    import transformers

    from transferbench import testing

    options = getattr(testing, factory)(tmp_path)
    seen: dict[str, object] = {}

    def spy(cls, method):
        original = getattr(cls, method)

        def wrapper(*args, **kwargs):
            seen[f"{cls.__name__}.{method}"] = kwargs.get("trust_remote_code", "absent")
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, method, wrapper)

    preprocessor = transformers.AutoTokenizer if adapter == "hf-encoder" else transformers.AutoFeatureExtractor
    for cls, method in (
        (transformers.AutoConfig, "from_pretrained"),
        (preprocessor, "from_pretrained"),
        (transformers.AutoModel, "from_pretrained" if pretrained else "from_config"),
    ):
        spy(cls, method)
    ADAPTERS.get(adapter).create(num_classes=2, pretrained=pretrained, trust_remote_code=remote, **options)
    assert len(seen) == 3 and set(seen.values()) == {remote}, seen
