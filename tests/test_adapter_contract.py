"""The adapter contract, checked over every registered adapter (HEAR-style)."""

import pytest

from transferbench.adapters import ADAPTERS
from transferbench.adapters.contract import applicable_checks, check_adapter

CASES = [(name, check) for name in ADAPTERS.names() for check in applicable_checks(name)]


@pytest.mark.parametrize(("adapter", "check"), CASES, ids=[f"{a}-{c}" for a, c in CASES])
def test_contract(adapter, check, tmp_path):
    check_adapter(adapter, tmp_path, checks=(check,))


def test_every_adapter_is_covered_in_every_domain():
    domains = {ADAPTERS.get(name).domain for name in ADAPTERS.names()}
    assert {"vision", "text"} <= domains <= {"vision", "text", "audio"}
    assert {name for name, _ in CASES} == set(ADAPTERS.names())


# --- the contract is enforced at instantiation --------------------------------------------------
def test_adapter_missing_an_abstract_method_does_not_instantiate():
    import torch
    from torch import nn

    from transferbench.adapters import Adapter, Preprocessing

    class NoFeatures(Adapter):  # forward_features is missing
        def blocks(self):
            return [self.backbone]

        def example_batch(self, batch_size=2):
            return {"pixel_values": torch.zeros(batch_size, 4)}

    with pytest.raises(TypeError, match="forward_features"):
        NoFeatures(nn.Linear(4, 4), 4, Preprocessing("vision", "pixel_values"), num_classes=2)

    class Complete(NoFeatures):
        def forward_features(self, batch):
            return self.backbone(batch["pixel_values"])

    model = Complete(nn.Linear(4, 4), 4, Preprocessing("vision", "pixel_values"), num_classes=2)
    assert model(model.example_batch()).shape == (2, 2)


def test_classical_adapter_missing_an_abstract_member_does_not_instantiate():
    from transferbench.adapters.classical import ClassicalAdapter

    class NoPredict(ClassicalAdapter):
        preprocessing = None

        def fit(self, x_train, y_train, x_val, y_val, seed):
            return {}

        def num_params(self, trainable_only=False):
            return 0

    with pytest.raises(TypeError, match="predict"):
        NoPredict()


# --- run options ---------------------------------------------------------------------------------
def test_check_options_refuses_an_option_the_adapter_does_not_take():
    from transferbench.errors import UserError

    with pytest.raises(
        UserError, match=r"^--model-path does not apply to adapter 'logmel-cnn' \(it takes no model options\)$"
    ):
        ADAPTERS.get("logmel-cnn").check_options({"model_path": "/some/dir"})
    with pytest.raises(
        UserError,
        match=r"^--pooling does not apply to adapter 'wav2vec2-base' \(it takes: --model-path, --trust-remote-code\)$",
    ):
        ADAPTERS.get("wav2vec2-base").check_options({"model_path": "/d", "pooling": "cls"})
    with pytest.raises(UserError, match="--trust-remote-code does not apply to adapter 'speaker-encoder'"):
        ADAPTERS.get("speaker-encoder").check_options({"trust_remote_code": True})


def test_check_options_accepts_taken_and_not_given_options():
    every = {"model_path": "/d", "trust_remote_code": True, "pooling": "cls", "max_length": 32}
    ADAPTERS.get("minilm-l6").check_options(every)
    not_given = {"model_path": None, "trust_remote_code": False, "pooling": None, "max_length": None}
    for name in ADAPTERS.names():
        ADAPTERS.get(name).check_options(not_given)


def test_declared_options_per_family():
    hf = {"model_path", "trust_remote_code"}
    for name in ADAPTERS.names():
        spec = ADAPTERS.get(name)
        expected = {
            "text": hf | {"pooling", "max_length"},
            "audio": hf,
        }.get(spec.domain, set())
        if spec.classical or name in ("logmel-cnn", "speaker-encoder"):
            expected = set()
        assert spec.option_names == expected, name


def test_create_refuses_untaken_options_and_drops_unset_ones():
    from transferbench.errors import UserError

    spec = ADAPTERS.get("logmel-cnn")
    with pytest.raises(UserError, match="--model-path does not apply"):
        spec.create(num_classes=2, pretrained=False, model_path="/some/dir")
    model = spec.create(num_classes=2, pretrained=False, model_path=None, trust_remote_code=False)
    assert model.num_classes == 2


def test_spec_that_disagrees_with_its_model_fails_the_contract(tmp_path):
    import dataclasses

    from transferbench.adapters.contract import ContractError, check_spec_agrees

    spec = ADAPTERS.get("logmel-cnn")
    with pytest.raises(ContractError, match=r"sample_rate 8000 != preprocessing\.sample_rate 16000"):
        check_spec_agrees(dataclasses.replace(spec, sample_rate=8000), tmp_path)
    with pytest.raises(ContractError, match="domain of spec"):
        check_spec_agrees(dataclasses.replace(spec, domain="text"), tmp_path)


def test_tiny_speech_models_are_written_at_the_audio_adapters_rate():
    from transferbench import testing
    from transferbench.adapters import audio

    assert testing.SPEECH_RATE == audio.RATE
