"""A trial's training recipe: bf16/fp16 autocast (with a gradient scaler), timm's Mixup/CutMix and EMA
weights (judged with them), channels-last and torch.compile, through the real training loop."""

from __future__ import annotations

import math
import textwrap

import pytest
import torch

from search.space import load_space
from search.trial.checkpoint import read_tensors
from search.trial.context import TrialContext, prepare
from search.trial.recipe import resolve_precision
from search.trial.spec import TrialSpec
from search.trial.train import _Run

SPACE = """\
name: recipe
data: {{dataset: digits, image_size: 16, train_subset: 64, test_subset: 32}}
model: {{patch_size: 4, embed_dim: 16, depth: 1, num_heads: 2, stem: {stem}}}
train: {{epochs: 1, batch_size: 32, lr: 0.003, scheduler: none, {train}}}
eval: {{corruptions: [contrast], severities: [2], subset: 16, cache_dir: {cache}}}
"""


def _run(tmp_path, train: str = "", stem: str = "linear") -> _Run:
    if "augmentation" not in train:
        train = ", ".join(filter(None, [train, "augmentation: none"]))
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(SPACE.format(train=train, stem=stem, cache=tmp_path / "cache")))
    space = load_space(path)
    context, num_classes = prepare(TrialContext.for_space(space))
    fixed = {**space.fixed_values(), "num_classes": num_classes}
    return _Run(TrialSpec.from_flat_dict({k: v for k, v in fixed.items() if space.applies(k, fixed)}), context)


def test_auto_precision_is_fp32_on_a_cpu():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_close_to_fp32(tmp_path, precision):
    torch.manual_seed(0)
    fp32 = _run(tmp_path / "a")
    reduced = _run(tmp_path / "b", f"precision: {precision}")
    reduced.model.load_state_dict(fp32.model.state_dict())  # the same starting weights
    with reduced.recipe.autocast():
        logits = reduced.model(torch.rand(2, 3, 16, 16))
    assert logits.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert (reduced.recipe.scaler is not None) == (precision == "fp16")  # fp16 scales the loss
    a, b = fp32.train_epoch(1), reduced.train_epoch(1)
    assert math.isfinite(b["train_loss"])
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)
    for p in reduced.model.parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p).all()  # the weights stay fp32


def test_mixup_and_cutmix_give_soft_targets(tmp_path):
    run = _run(tmp_path, "mixup: 0.8, cutmix: 1.0, label_smoothing: 0.1")
    images, targets = run.recipe.inputs(torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]))
    assert targets.shape == (4, 10) and torch.allclose(targets.sum(-1), torch.ones(4))
    assert (targets > 0).sum(-1).min() >= 2  # mixed: at least two classes per image
    # An odd batch cannot be paired: it stays unmixed, with class indices.
    _, odd = run.recipe.inputs(torch.rand(3, 3, 16, 16), torch.tensor([0, 1, 2]))
    assert odd.dtype == torch.int64
    assert math.isfinite(run.train_epoch(1)["train_loss"])


def test_ema_weights_are_the_ones_judged_and_checkpointed(tmp_path):
    run = _run(tmp_path, "ema_decay: 0.5")
    run.train_epoch(1)
    ema = run.recipe.ema.module
    assert run.judged is ema
    own, averaged = run.model.state_dict(), ema.state_dict()
    assert any(not torch.equal(own[k], averaged[k]) for k in own)
    run.save(str(tmp_path))
    saved = read_tensors(tmp_path)["ema"]
    assert all(torch.equal(saved[k], v) for k, v in run.recipe.ema.state_dict().items())  # ModelEmaV3's own keys
    again = _run(tmp_path / "again", "ema_decay: 0.5")
    from ray.tune import Checkpoint

    again.restore(Checkpoint.from_directory(str(tmp_path)))
    assert all(torch.equal(again.recipe.ema.module.state_dict()[k], v) for k, v in averaged.items())


def test_channels_last_and_compile(tmp_path):
    run = _run(tmp_path, "channels_last: true, compile: true", stem="conv")
    conv = next(m for m in run.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert run.forward_model is not run.model and run.forward_model._orig_mod is run.model  # torch.compile's wrapper
    run.save(str(tmp_path))  # the plain module's weights: no "_orig_mod." in the keys
    assert not any(k.startswith("_orig_mod") for k in read_tensors(tmp_path)["model"])


def test_timm_rand_augment_and_random_erasing(tmp_path, capsys):
    from search import cli
    from search.trial.augment import augment

    images = torch.rand(4, 3, 16, 16)
    a = augment(images, "rand-m9-mstd0.5-inc1", torch.Generator().manual_seed(3))
    b = augment(images, "rand-m9-mstd0.5-inc1", torch.Generator().manual_seed(3))
    assert a.shape == images.shape and torch.equal(a, b)  # seeded: a resumed trial draws the same
    assert not torch.allclose(a, images, atol=1 / 255)  # something was done to the images
    run = _run(tmp_path, "augmentation: rand-m9-mstd0.5-inc1, random_erasing: 0.3")
    assert run.recipe.erasing is not None
    torch.manual_seed(0)  # timm's RandomErasing draws from torch's global generator
    erased = run.recipe.erase(torch.zeros(64, 3, 16, 16))  # p = 0.3 each: some of 64 are erased
    assert (erased != 0).any()  # pixels of some images were replaced
    assert math.isfinite(run.train_epoch(1)["train_loss"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {augmentation: rand-mx9}\n")
    assert cli.main(["validate", str(bad)]) == 2
    assert "train.augmentation" in capsys.readouterr().err
