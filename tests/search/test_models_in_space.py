"""Any timm model as an arm of a search: presets keep their architecture, baselines sit beside the zoo.

Model fields reach ``timm.create_model`` only when the space sets them and only for a model that
takes them; a field (or ADL) set for a model that cannot take it is a validation error naming both.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap

import optuna
import pytest
import timm
import torch
import yaml

import components  # noqa: F401  (registers the zoo with timm)
from search import cli
from search.space import parse_space
from search.space.sampling import SpaceSampler
from search.trial.build import build_model
from search.trial.spec import TrialSpec


def _space(text: str):
    return parse_space(yaml.safe_load(textwrap.dedent(text)), source="test.yaml")


def _specs(space, n: int) -> list[TrialSpec]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    fn = SpaceSampler.for_space(space, num_classes=10)
    specs = []
    for _ in range(n):
        trial = study.ask()
        specs.append(TrialSpec.from_flat_dict(fn(trial)))
        study.tell(trial, 0.0)
    return specs


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_a_preset_keeps_its_architecture():
    """Before: every RobustViT keyword was passed with the schema's defaults and made a plain ViT."""
    space = _space("""
        data: {dataset: digits, image_size: 32}
        model: {name: fan_tiny_12_p16_224}
    """)
    (spec,) = _specs(space, 1)
    assert spec.model.kwargs() == {"in_chans": 3, "num_classes": 10, "img_size": 32}
    model = build_model(spec)
    reference = timm.create_model("fan_tiny_12_p16_224", img_size=32, num_classes=10)
    assert _params(model) == _params(reference)
    assert type(model.blocks[0].mixer) is type(reference.blocks[0].mixer)
    assert model.patch_embed.__class__ is reference.patch_embed.__class__


def test_a_field_the_space_sets_overrides_the_preset_and_nothing_else():
    space = _space("""
        data: {dataset: digits, image_size: 32}
        model: {name: fan_tiny_12_p16_224, depth: 2, tap: true}
    """)
    (spec,) = _specs(space, 1)
    kwargs = spec.model.kwargs()
    assert kwargs["depth"] == 2 and kwargs["tap_dilations"] == (1, 2) and "mixer" not in kwargs
    model = build_model(spec)
    assert len(model.blocks) == 2
    assert _params(model) > _params(timm.create_model("fan_tiny_12_p16_224", img_size=32, num_classes=10, depth=2))


def test_timm_baselines_and_the_zoo_in_one_study():
    space = _space("""
        data: {dataset: digits, image_size: 32}
        model:
          name: {choice: [robust_vit, resnet18, convnext_atto, vit_tiny_patch16_224]}
          patch_size: 4
          embed_dim: 32
          depth: 2
          num_heads: 2
          mixer: {choice: [mlp, fan]}
          tap: {choice: [false, true]}
        train: {adl_weight: {choice: [0.0, 0.5]}}
    """)
    assert space.model_fields["resnet18"] == frozenset()
    assert space.model_fields["convnext_atto"] == {"patch_size"}
    assert space.model_fields["vit_tiny_patch16_224"] == {"img_size", "patch_size", "embed_dim", "depth", "num_heads"}
    assert "mixer" in space.model_fields["robust_vit"] and "adl_weight" in space.model_fields["robust_vit"]
    # robust_vit: 2 mixers x (no TAP + TAP) x 2 ADL weights; the three others: one configuration each.
    assert space.size() == 8 + 3
    specs = _specs(space, 24)
    assert {s.model.name for s in specs} == {"robust_vit", "resnet18", "convnext_atto", "vit_tiny_patch16_224"}
    built: set[str] = set()
    for spec in specs:
        flat = spec.to_flat_dict()
        if spec.model.name != "robust_vit":
            assert not {"mixer", "tap", "adl_weight"} & set(flat), flat
            assert not spec.uses_adl
        if spec.model.name in ("resnet18", "convnext_atto"):
            assert "img_size" not in spec.model.kwargs()
        if spec.model.name not in built:  # every arm builds and classifies a 32 px batch
            logits = build_model(spec).eval()(torch.rand(2, 3, 32, 32))
            assert logits.shape == (2, 10)
            built.add(spec.model.name)
    assert len(built) == 4


BAD = [
    ("component_field_on_resnet", "model: {name: resnet18, mixer: fan}", ["model.mixer", "'resnet18'", "mixer"]),
    ("tap_on_vit", "model: {name: vit_tiny_patch16_224, patch_size: 4, tap: true}", ["model.tap", "vit_tiny_patch16_224"]),
    ("field_no_model_of_the_choice_takes", "model: {name: {choice: [resnet18, convnext_atto]}, stem: conv}",
     ["model.stem", "any model of model.name", "resnet18", "convnext_atto"]),
    ("adl_on_resnet", "model: {name: resnet18}\ntrain: {adl_weight: 0.5}", ["train.adl_weight", "resnet18", "attention maps"]),
    ("tap_dilations_without_tap", "model: {tap_dilations: [1, 2]}", ["model.tap_dilations", "model.tap is not set"]),
]


@pytest.mark.parametrize("case, text, expected", BAD, ids=[c[0] for c in BAD])
def test_a_field_a_model_cannot_take_is_refused_naming_both(case, text, expected, tmp_path, capsys):
    path = tmp_path / f"{case}.yaml"
    path.write_text("data: {dataset: digits, image_size: 32}\n" + text + "\n")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for part in expected:
        assert part in err, (part, err)


def test_model_defaults_are_the_models_own_and_nowhere_else():
    """Before: patch_size defaulted to 16 in the schema, 4 in the trial config and 16 in the model."""
    from search.space import schema
    from search.trial import spec as trial_spec

    unset = {k for k, f in schema.MODEL.items() if f.default is schema.MODEL_DEFAULT}
    assert unset == set(schema.MODEL) - {"name", "tap_dilations", "tap_blocks"}  # TAP's apply only when set on
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(trial_spec.TrainSpec)
               if f.name not in ("adl_weight", "adl_threshold"))  # training values always come from the schema
    space = _space("data: {dataset: digits, image_size: 32}")
    (spec,) = _specs(space, 1)
    model = build_model(spec)
    assert model.patch_embed.patch_size == inspect.signature(components.RobustViT).parameters["patch_size"].default
