"""The CLI on the way from a space to a conclusion (issue 16): ``1e-4`` is a number, validate checks
the paths the space reads, ``search eval`` says when weights are untrained and shows its progress."""

from __future__ import annotations

import pytest

from search.cli import main

SPACE = "name: usable_cli\n{data}model: {{mixer: {{choice: [mlp, se]}}}}\ntrain: {{lr: 1e-4}}\nsearch: {{num_trials: 2}}\n"


def test_an_exponent_without_a_dot_is_a_number(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SPACE.format(data=""))
    assert main(["show", str(path)]) == 0
    assert "  lr: 0.0001\n" in capsys.readouterr().out


@pytest.mark.parametrize("data, field", [
    ("data: {dataset: cifar10, path: /nonexistent/cifar}\n", "data.path"),
    ("eval: {benchmark_path: /nonexistent/cifar-c}\n", "eval.benchmark_path"),
    ("eval: {normalization: /nonexistent/baseline.json}\n", "eval.normalization"),
])
def test_validate_refuses_paths_that_do_not_exist(tmp_path, capsys, data, field):
    path = tmp_path / "s.yaml"
    path.write_text(SPACE.format(data=data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: {field}: given '/nonexistent/" in err and "does not exist" in err


def test_eval_of_a_model_name_says_its_weights_are_untrained_and_shows_progress(tmp_path, capsys):
    kwargs = '{"img_size": 16, "patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2}'
    assert main(["eval", "robust_vit", "--model-kwargs", kwargs, "--image-size", "16", "--corruptions",
                 "gaussian_noise,fog", "--severities", "1,3", "--subset", "12", "--cache-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "robust_vit is a model name: its weights are untrained" in err
    assert "judging [" + "#" * 30 + "] 100% 48/48 (fog s3" in err  # 12 items x 2 corruptions x 2 severities
