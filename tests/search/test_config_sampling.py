"""The trial spec from sampled values, and Optuna's sampling of a space (conditional parameters)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
import torch

from search.space import schema
from search.space.loader import FLAT_NAMES, load_space
from search.space.sampling import SpaceSampler, make_sampler
from search.trial.spec import FLAT_KEYS, TrialSpec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quickstart():
    return load_space(REPO / "spaces" / "quickstart.yaml")


# The training values every flat spec carries (the schema's defaults, as the sampler passes them).
TRAIN = {k: f.default for k, f in schema.TRAIN.items() if k != "adl_threshold"} | {"seed": 0}


def _spec(**values):
    return TrialSpec.from_flat_dict({"model_name": "robust_vit", **TRAIN, **values})


def test_spec_keys_are_exactly_the_flat_space_keys():
    flat = {FLAT_NAMES.get((s, k), k) for s in schema.SEARCHABLE_SECTIONS for k in schema.SECTIONS[s]}
    flat |= {"img_size", "seed", "num_classes", "in_chans"}
    assert set(FLAT_KEYS) == flat


def test_unknown_keys_are_rejected_with_a_hint():
    with pytest.raises(ValueError, match=r"unknown trial spec keys \['mixr'\].*did you mean 'mixer'"):
        _spec(mixr="fan")


def test_flat_dict_round_trip_and_lists_become_tuples():
    spec = _spec(tap=True, tap_dilations=[1, 2], tap_blocks=[0, 1], mixer="fan")
    assert spec.model.get("tap_dilations") == (1, 2) and spec.model.get("tap_blocks") == (0, 1)
    assert TrialSpec.from_flat_dict(spec.to_flat_dict()) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.model.name = "resnet18"  # type: ignore[misc]


def test_only_what_the_space_sets_reaches_the_model():
    """No defaults of the spec's own: a field the space does not set is not passed at all."""
    assert _spec(num_classes=10, img_size=32).model.kwargs() == {"in_chans": 3, "num_classes": 10, "img_size": 32}
    assert _spec(mixer="fan").model.kwargs()["mixer"] == "fan"


@pytest.mark.parametrize("blocks, depth, expected", [
    ("all", 4, None), ("first_half", 4, (0, 1)), ("last_half", 4, (2, 3)), ("last_half", 1, (0,)), ((1,), 3, (1,)),
])
def test_tap_blocks_resolve_against_depth(blocks, depth, expected):
    spec = _spec(tap=True, tap_dilations=(1, 2), tap_blocks=blocks, depth=depth)
    assert spec.model.kwargs()["tap_blocks"] == expected
    off = _spec(tap=False, depth=depth)
    assert off.model.kwargs()["tap_dilations"] == () and off.model.kwargs()["tap_blocks"] is None


def test_tap_blocks_keyword_uses_the_models_own_depth_when_unset():
    # fan_tiny_12_p16_224 has 12 blocks: its last half is 6..11.
    spec = TrialSpec.from_flat_dict({"model_name": "fan_tiny_12_p16_224", **TRAIN, "tap": True,
                                     "tap_dilations": (1, 2), "tap_blocks": "last_half"})
    assert spec.model.kwargs()["tap_blocks"] == tuple(range(6, 12))


def _sample(space, sampler_name="random", n=12, seed=0):
    sampler = make_sampler(dataclasses.replace(space.search, sampler=sampler_name, seed=seed))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    space_fn = SpaceSampler.for_space(space, num_classes=10)
    configs = []
    for i in range(n):
        trial = study.ask()
        values = space_fn(trial)
        configs.append((trial.params, values))
        study.tell(trial, [float(i % 5), float(i % 3)])
    return configs


def test_conditional_tap_settings_are_sampled_only_when_tap_is_on(quickstart):
    configs = _sample(quickstart, n=16)
    assert {v["tap"] for _, v in configs} == {False, True}
    for params, values in configs:
        spec = TrialSpec.from_flat_dict(values)  # complete and known keys
        if values["tap"]:
            assert "tap_dilations" in params and spec.model.get("tap_dilations") in ((1, 2), (1, 2, 3))
        else:
            assert "tap_dilations" not in params and "tap_blocks" not in params
            assert "tap_dilations" not in values and spec.model.kwargs()["tap_dilations"] == ()
        assert spec.model.num_classes == 10 and spec.train.epochs == quickstart.train.epochs
        assert ("adl_threshold" in values) == (values["adl_weight"] > 0)  # logged only when ADL is on


@pytest.mark.parametrize("name", schema.SAMPLERS)
def test_every_sampler_samples_the_space_reproducibly(quickstart, name):
    a = [v for _, v in _sample(quickstart, name, n=6, seed=3)]
    b = [v for _, v in _sample(quickstart, name, n=6, seed=3)]
    assert a == b


def test_sampled_config_builds_a_real_model(quickstart):
    from search.trial.build import build_model

    _, values = _sample(quickstart, n=1)[0]
    spec = TrialSpec.from_flat_dict({**values, "mixer": "fan", "tap": True, "tap_dilations": (1, 2)})
    model = build_model(spec)
    logits, maps = model.forward_with_attention(torch.rand(2, 3, spec.model.img_size, spec.model.img_size))
    assert logits.shape == (2, 10) and len(maps) == spec.model.get("depth")


def test_layer_scale_none_disables_layer_scale_through_timm():
    from timm.layers import LayerScale

    from search.trial.build import build_model

    base = {"embed_dim": 32, "depth": 1, "num_heads": 2, "img_size": 32, "patch_size": 8}
    with_ls = build_model(_spec(**base, layer_scale_init=0.5))
    without = build_model(_spec(**base, layer_scale_init=None))
    assert any(isinstance(m, LayerScale) for m in with_ls.modules())
    assert not any(isinstance(m, LayerScale) for m in without.modules())
