"""One trial's training outside Ray: the loss with ADL, divergence, checkpoints, augmentations."""

from __future__ import annotations

import dataclasses
import math
import textwrap

import pytest
import torch

from search.space import load_space
from search.space.schema import AUGMENTATIONS
from search.trial.augment import augment
from search.trial.checkpoint import META_FILE, TENSORS_FILE, load_trial_checkpoint, read_meta
from search.trial.context import TrialContext, prepare
from search.trial.spec import TrialSpec
from search.trial.train import TrialDiverged, _Run

SPACE = """\
name: unit
data: {{dataset: digits, image_size: 16, train_subset: 96, test_subset: 32}}
model: {{patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2, mixer: fan, tap: true, tap_dilations: [1, 2]}}
train: {{epochs: 2, batch_size: 32, adl_weight: 1.0}}
eval: {{corruptions: [gaussian_noise, contrast], severities: [2], subset: 16, cache_dir: {cache}}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("trial")
    path = root / "unit.yaml"
    path.write_text(textwrap.dedent(SPACE.format(cache=root / "cache")))
    space = load_space(path)
    context, num_classes = prepare(TrialContext.for_space(space))
    spec = TrialSpec.from_flat_dict({**space.fixed_values(), "num_classes": num_classes})
    return context, spec


def test_prepare_builds_the_cache_that_trials_read(setup):
    context, spec = setup
    assert context.runtime.corrupted_path and context.runtime.corrupted_path.endswith(".pt")
    assert spec.model.num_classes == 10


def test_epochs_with_adl_train_and_judging_reports_every_metric(setup, tmp_path):
    context, spec = setup
    run = _Run(spec, context)
    first = run.train_epoch(1)
    assert first["epoch"] == 1 and math.isfinite(first["train_loss"]) and 0 <= first["clean_accuracy"] <= 100
    final = run.judge(trial_time_s=0.0)
    for key in ("clean_accuracy", "mce", "ce/contrast", "error/gaussian_noise/2", "attention_stability", "params_m"):
        assert math.isfinite(final[key]), key
    assert final["full_budget"] == 0  # judged after 1 of 2 epochs

    # A checkpoint carries the spec and the judging settings, and rebuilds the same model.
    run.save(str(tmp_path))
    spec2, model, meta = load_trial_checkpoint(tmp_path)
    assert spec2 == spec and meta["epoch"] == 1 and meta["judging"] == context.judging()
    assert TrialContext.from_judging(meta["judging"]).judging() == context.judging()
    older = {**meta["judging"], "eval": {k: v for k, v in meta["judging"]["eval"].items() if k != "rung_subset"}}
    assert TrialContext.from_judging(older).eval.rung_subset == 10  # a field added since: its default
    x = torch.rand(3, 3, spec.model.img_size, spec.model.img_size)
    run.model.eval()
    torch.testing.assert_close(model.eval()(x), run.model(x))


def test_a_diverging_loss_raises_with_where_it_happened(setup):
    context, spec = setup
    wild = dataclasses.replace(spec, train=dataclasses.replace(spec.train, optimizer="sgd", lr=1e30, adl_weight=None,
                                                                 scheduler="none"))
    with pytest.raises(TrialDiverged, match=r"the loss is (nan|inf|-inf) at epoch 1, step \d+"):
        _Run(wild, context).train_epoch(1)


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmentations_keep_shape_and_range(name):
    x = torch.rand(5, 3, 16, 16)
    y = augment(x, name, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    if name == "none":
        assert y is x


def test_unknown_augmentation_is_a_value_error():
    with pytest.raises(ValueError, match="augmentation must be one of"):
        augment(torch.rand(1, 3, 8, 8), "mixup")


def test_a_checkpoint_holds_no_code_only_tensors_and_json(setup, tmp_path):
    """Checkpoints may sit in a shared bucket: tensors load with weights_only=True, the rest is JSON."""
    import json
    import pickle

    context, spec = setup
    run = _Run(spec, context)
    run.save(str(tmp_path))
    tensors = torch.load(tmp_path / TENSORS_FILE, weights_only=True)  # raises on any pickled object
    assert set(tensors) == {"model", "optimizer", "scheduler", "ema", "scaler"}
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["model_name"] == "robust_vit" and meta["spec"] == spec.to_flat_dict()
    assert read_meta(tmp_path)["model_kwargs"]["mixer"] == "fan"

    # A file that would run code when unpickled is refused, not executed.
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / TENSORS_FILE).write_bytes(pickle.dumps({"model": Exploit()}))
    with pytest.raises(pickle.UnpicklingError):
        load_trial_checkpoint(tmp_path)
