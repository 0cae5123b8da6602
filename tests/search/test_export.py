"""From a finished search to weights: ``search eval CHECKPOINT`` reproduces the trial, ``search export``
writes folders that plain timm loads (weights, architecture and preprocessing)."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from search_support import run_tiny_search

import components  # noqa: F401  (registers the zoo's architectures with timm)
from search import cli
from search.results import run_folder
from search.results.records import load_records
from search.space import parse_space
from search.trial.checkpoint import load_trial_checkpoint

pytestmark = pytest.mark.slow

SPACE = """\
name: export
data: {{dataset: digits, image_size: 16, train_subset: 120, test_subset: 48}}
model: {{name: robust_vit, patch_size: 4, embed_dim: 16, depth: 1, num_heads: 2, mixer: {{choice: [mlp, fan]}}}}
train: {{epochs: 1, batch_size: 60, lr: 0.003}}
eval: {{corruptions: [gaussian_noise, contrast], severities: [2, 4], subset: 20, cache_dir: {cache},
       normalization: alexnet, table: imagenet}}
search: {{sampler: random, num_trials: 2, concurrency: 2, seed: 3}}
storage: {storage}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    space, result = run_tiny_search(root, "export", SPACE)
    return space, result, root


def test_eval_of_a_trial_checkpoint_reproduces_its_logged_objectives(finished, tmp_path, capsys):
    """Before: `search eval CHECKPOINT` judged with other settings (mCE 18.61 against the trial's 22.74)."""
    space, result, root = finished
    record = next(r for r in load_records(result.run_folder) if r.status == "finished")
    checkpoint = run_folder.trial_checkpoint(result.run_folder, record.trial_id)
    out = tmp_path / "eval.json"
    assert cli.main(["eval", str(checkpoint), "--no-progress", "--cache-dir", str(root / "cache"),
                     "--json", str(out)]) == 0
    assert "judged as the trial was" in capsys.readouterr().out
    judged = json.loads(out.read_text())
    for metric in ("clean_accuracy", "mce", "corrupted_accuracy", "error/contrast/4"):
        assert judged[metric] == pytest.approx(record.final[metric], abs=1e-9), metric
    # An option still overrides the trial's own setting.
    assert cli.main(["eval", str(checkpoint / "trial.pt"), "--no-progress", "--cache-dir", str(root / "cache"),
                     "--normalization", "none", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mce"] != pytest.approx(record.final["mce"])


def test_export_of_the_front_loads_in_plain_timm_with_equal_logits(finished, tmp_path, capsys):
    space, result, _ = finished
    assert cli.main(["export", str(result.run_folder), "--front", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    front = [r for r in result.front]
    assert front and all(r.trial_id in printed for r in front)
    for record in front:
        folder = tmp_path / record.trial_id
        assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
        config = json.loads((folder / "config.json").read_text())
        assert config["architecture"] == "robust_vit" and config["search"]["trial_id"] == record.trial_id
        assert config["search"]["objectives"] == {m: record.final[m] for m, _ in space.objectives}
        exported = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        _, trained, _ = load_trial_checkpoint(run_folder.trial_checkpoint(result.run_folder, record.trial_id))
        x = torch.rand(4, 3, 16, 16)
        torch.testing.assert_close(exported(x), trained.eval()(x), rtol=0, atol=0)
        data = timm.data.resolve_data_config({}, model=exported)
        assert data["input_size"] == (3, 16, 16)
        assert tuple(data["mean"]) == pytest.approx(timm.data.IMAGENET_DEFAULT_MEAN)
        transform = timm.data.create_transform(**data)
        from PIL import Image

        assert transform(Image.new("RGB", (16, 16))).shape == (3, 16, 16)


def test_export_refuses_unknown_trials_and_nothing_named(finished, tmp_path, capsys):
    _, result, _ = finished
    assert cli.main(["export", str(result.run_folder), "nope", "--out", str(tmp_path)]) == 2
    assert "no trial 'nope'" in capsys.readouterr().err
    assert cli.main(["export", str(result.run_folder), "--out", str(tmp_path)]) == 2
    assert "--front" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "missing"), "--front", "--out", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_a_timm_baseline_trial_exports_too(tmp_path):
    """A trial of any timm model (here a ResNet-18) trains, checkpoints and exports the same way."""
    from search.trial.context import TrialContext
    from search.trial.export import export_trial
    from search.trial.spec import TrialSpec
    from search.trial.train import _Run

    space = parse_space({"data": {"dataset": "digits", "image_size": 16, "train_subset": 64, "test_subset": 16},
                         "model": {"name": "resnet18"},
                         "train": {"epochs": 1, "batch_size": 32, "scheduler": "none", "augmentation": "none"},
                         "eval": {"corruptions": ["contrast"], "severities": [1], "subset": 8,
                                  "cache_dir": str(tmp_path / "cache")}}, source="test")
    ctx = TrialContext.for_space(space)
    fixed = {**space.fixed_values(), "num_classes": 10}
    spec = TrialSpec.from_flat_dict({k: v for k, v in fixed.items() if space.applies(k, fixed)})
    assert "img_size" not in spec.model.kwargs()  # a ResNet takes no image size
    run = _Run(spec, ctx)
    run.train_epoch(1)
    run.save(str(tmp_path))
    out = export_trial(tmp_path, tmp_path / "out", trial_id="t1")
    exported = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(exported(x), run.model.eval()(x), rtol=0, atol=0)
