"""``search eval``: a timm model name with kwargs, a saved checkpoint, and user errors (exit 2)."""

from __future__ import annotations

import json

import timm
import torch

from search.cli import main
from tests.evaluation.conftest import tiny_vit_kwargs

COMMON = ["--subset", "12", "--corruptions", "contrast,gaussian_noise", "--severities", "2",
          "--no-progress", "--batch-size", "64"]


def test_eval_model_name(tmp_path, capsys):
    kwargs = {k: v for k, v in tiny_vit_kwargs().items() if k != "num_classes"}
    rc = main(["eval", "vit_tiny_patch16_224", "--model-kwargs", json.dumps(kwargs),
               "--cache-dir", str(tmp_path), "--json", str(tmp_path / "m.json"), *COMMON])
    out = capsys.readouterr().out
    assert rc == 0
    assert "contrast" in out and "clean accuracy" in out and "normalised by: none" in out
    flat = json.loads((tmp_path / "m.json").read_text())
    assert {"clean_accuracy", "mce", "error/contrast/2"} <= set(flat)


def test_eval_checkpoint(tmp_path, capsys):
    kwargs = tiny_vit_kwargs()
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", **kwargs)
    ckpt = tmp_path / "model.pt"
    torch.save({"model_name": "vit_tiny_patch16_224", "model_kwargs": kwargs, "state_dict": model.state_dict()},
               ckpt)
    rc = main(["eval", str(ckpt), "--cache-dir", str(tmp_path), "--normalization", "alexnet", *COMMON])
    out = capsys.readouterr().out
    assert rc == 0 and "normalised by: alexnet" in out


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["eval", "no_such_model", *COMMON, "--cache-dir", str(tmp_path)]) == 2
    assert "no_such_model" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    torch.save({"weights": {}}, bad)
    assert main(["eval", str(bad), *COMMON, "--cache-dir", str(tmp_path)]) == 2
    assert "model_name" in capsys.readouterr().err
    assert main(["eval", "vit_tiny_patch16_224", "--corruptions", "rain", "--cache-dir", str(tmp_path)]) == 2
    assert "valid corruptions" in capsys.readouterr().err
    assert main(["eval", "vit_tiny_patch16_224", "--dataset", "cifar10", "--cache-dir", str(tmp_path)]) == 2
    assert "data_batch_1" in capsys.readouterr().err


def _cifar_and_c(tmp_path, corruptions=("fog",), c_classes=6):
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    test = rng.integers(0, 256, size=(6, 3, 32, 32), dtype=np.uint8)
    labels = [0, 1, 2, 3, 4, 5]
    root = tmp_path / "cifar"
    root.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as fh:
            pickle.dump({b"data": test.reshape(6, -1), b"labels": labels}, fh)
    cc = tmp_path / "cifar-c"
    cc.mkdir()
    hwc = test.transpose(0, 2, 3, 1)
    for name in corruptions:
        np.save(cc / f"{name}.npy", np.concatenate([hwc // (s + 1) for s in range(5)]).astype(np.uint8))
    np.save(cc / "labels.npy", np.tile(np.array(labels, dtype=np.uint8) % c_classes, 5))
    return root, cc


def test_eval_on_premade_cifar_c(tmp_path, capsys):
    root, cc = _cifar_and_c(tmp_path)
    kwargs = {k: v for k, v in tiny_vit_kwargs().items() if k != "num_classes"}
    rc = main(["eval", "vit_tiny_patch16_224", "--model-kwargs", json.dumps(kwargs), "--dataset", "cifar10",
               "--data-path", str(root), "--corrupted-data", str(cc), "--severities", "1,5", "--corruptions", "fog",
               "--json", str(tmp_path / "m.json")])
    assert rc == 0
    assert "fog" in capsys.readouterr().out
    flat = json.loads((tmp_path / "m.json").read_text())
    assert set(k for k in flat if k.startswith("error/")) == {"error/fog/1", "error/fog/5"}


def test_eval_of_the_authors_released_weights(tmp_path, capsys):
    """A checkpoint with the FAN authors' key names is converted and judged (no download: the
    checkpoint is made here from a model's own weights, renamed as the authors' code names them)."""
    from tests.components.test_convert import to_authors

    kwargs = {"img_size": 32, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": 10}
    model = timm.create_model("fan_tiny_12_p16_224", **kwargs)
    torch.save({"model": to_authors(model.state_dict())}, tmp_path / "fan.pth")
    rc = main(["eval", "fan_tiny_12_p16_224", "--authors-weights", str(tmp_path / "fan.pth"),
               "--model-kwargs", json.dumps(kwargs), "--cache-dir", str(tmp_path), *COMMON])
    assert rc == 0 and "clean accuracy" in capsys.readouterr().out
    rc = main(["eval", "fan_tiny_12_p16_224", "--authors-weights", str(tmp_path / "missing.pth"),
               "--cache-dir", str(tmp_path), *COMMON])
    assert rc == 2 and "--authors-weights" in capsys.readouterr().err


def test_premade_folder_default_is_the_15_and_checked(tmp_path, capsys):
    """Issue 15: the default --corruptions benchmark averaged every corruption a folder holds (19 on
    the real CIFAR-10-C); a pre-made folder that does not fit the clean set was used unchecked."""
    from evaluation.corruptions import BENCHMARK_CORRUPTIONS

    root, cc = _cifar_and_c(tmp_path, corruptions=(*BENCHMARK_CORRUPTIONS, "speckle_noise"))
    kwargs = {k: v for k, v in tiny_vit_kwargs().items() if k != "num_classes"}
    base = ["eval", "vit_tiny_patch16_224", "--model-kwargs", json.dumps(kwargs), "--dataset", "cifar10",
            "--data-path", str(root), "--severities", "1", "--normalization", "alexnet"]
    assert main([*base, "--corrupted-data", str(cc), "--json", str(tmp_path / "m.json")]) == 0
    captured = capsys.readouterr()
    assert "not comparable to published figures" in captured.err  # AlexNet errors on a 32 px set
    blob = json.loads((tmp_path / "m.json").read_text())
    assert {k.split("/")[1] for k in blob if k.startswith("error/")} == set(BENCHMARK_CORRUPTIONS)
    assert blob["setup"]["table"].startswith("pre-made") and "relative_ce/fog" in blob
    _, other = _cifar_and_c(tmp_path / "three", c_classes=3)  # labels of 3 classes next to 10
    assert main([*base, "--corrupted-data", str(other), "--corruptions", "fog"]) == 2
    assert "labels.npy does not match the clean test set" in capsys.readouterr().err


def test_imagenet_c_folder_at_another_size_is_refused(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    for split_root in (tmp_path / "clean" / "val", tmp_path / "inc" / "fog" / "1"):
        for cls in ("n01", "n02"):
            (split_root / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(split_root / cls / "a.png")
    base = ["eval", "resnet18", "--model-kwargs", '{"num_classes": 2}', "--dataset", "imagefolder", "--data-path",
            str(tmp_path / "clean"), "--split", "val", "--corrupted-data", str(tmp_path / "inc"),
            "--corruptions", "fog", "--severities", "1"]
    assert main(base) == 2  # read at the default 32 px without --image-size
    assert "holds 64 x 64 px images, but the run reads them at 32 px; give --image-size 64" in capsys.readouterr().err
    assert main([*base, "--image-size", "64"]) == 0
