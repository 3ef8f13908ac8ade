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
