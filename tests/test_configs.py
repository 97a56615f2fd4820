"""One dict policy for the configs stored as JSON (``reidviewer.configs.config_from_dict``)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from reidviewer.configs import config_from_dict
from reidviewer.data.preprocess import PreprocessConfig
from reidviewer.data.synthwalk import SynthConfig
from reidviewer.model.config import ModelConfig
from reidviewer.model.losses import LossConfig

#: Each config, one valid non-default instance, a value its constructor cannot take (TypeError),
#: and what its messages call it.
CONFIGS = [
    (ModelConfig, ModelConfig(head="softmax", iterations=2, conv_channels=(8, 16, 16)), {"conv_channels": None},
     "model config"),
    (LossConfig, LossConfig(margin=3.0, hinge="rcn_code"), {"margin": "2"}, "loss config"),
    (PreprocessConfig, PreprocessConfig(height=64, flow="farneback"), {"height": "64"}, "preprocessing config"),
    (SynthConfig, SynthConfig(ids=4, seed=7), {"ids": "4"}, "SynthWalk config"),
]
IDS = [c[0].__name__ for c in CONFIGS]


@pytest.mark.parametrize(("cls", "config", "bad", "what"), CONFIGS, ids=IDS)
def test_to_dict_round_trips_through_json(cls, config, bad, what):
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(("cls", "config", "bad", "what"), CONFIGS, ids=IDS)
def test_missing_keys_take_their_defaults(cls, config, bad, what):
    assert cls.from_dict({}) == (cls() if cls is not SynthConfig else SynthConfig())


@pytest.mark.parametrize(("cls", "config", "bad", "what"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("data", [[1, 2], "height", None, 3])
def test_not_a_dict_is_a_value_error_naming_what_it_is(cls, config, bad, what, data):
    with pytest.raises(ValueError, match=f"a {what} must be a JSON object, got {type(data).__name__}"):
        cls.from_dict(data)


@pytest.mark.parametrize(("cls", "config", "bad", "what"), CONFIGS, ids=IDS)
def test_a_value_the_constructor_refuses_is_a_value_error(cls, config, bad, what):
    with pytest.raises(ValueError):
        cls.from_dict({**config.to_dict(), **bad})


@pytest.mark.parametrize(("cls", "config", "bad", "what"), [c for c in CONFIGS if c[0] is not SynthConfig],
                         ids=[i for i in IDS if i != "SynthConfig"])
def test_unknown_keys_are_named_with_the_known_ones(cls, config, bad, what):
    with pytest.raises(ValueError, match=rf"unknown {what} key\(s\): bogus, zzz \(known: .*\b\w+\b") as info:
        cls.from_dict({**config.to_dict(), "zzz": 1, "bogus": 2})
    for name in config.to_dict():
        assert name in str(info.value)


def test_synthwalk_ignores_unknown_keys_a_sidecar_of_another_version_may_hold():
    config = SynthConfig(ids=4, seed=7)
    assert SynthConfig.from_dict({**config.to_dict(), "field_of_a_newer_version": 1}) == config


def test_the_helper_maps_a_constructor_type_error_to_the_callers_error_type():
    class SettingsProblem(ValueError):
        pass

    @dataclass
    class Small:
        n: int = 1

        def __post_init__(self) -> None:
            if self.n < 0:  # TypeError for a string
                raise ValueError("n must be >= 0")

    assert config_from_dict(Small, {"n": 2}, "small config") == Small(2)
    with pytest.raises(SettingsProblem, match="invalid small config: .*not supported"):
        config_from_dict(Small, {"n": "2"}, "small config", error=SettingsProblem)
    with pytest.raises(SettingsProblem, match=r"unknown small config key\(s\): m \(known: n\)"):
        config_from_dict(Small, {"m": 2}, "small config", error=SettingsProblem)
    assert config_from_dict(Small, {"n": 3, "m": 2}, "small config", ignore_unknown=True) == Small(3)
    with pytest.raises(ValueError, match="n must be >= 0"):  # the class's own errors pass unchanged
        config_from_dict(Small, {"n": -1}, "small config")
