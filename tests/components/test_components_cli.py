"""``search components``: lists every mixer, stem and preset with a parameter count."""

from __future__ import annotations

import argparse
import json

import pytest

from components import MIXERS, PRESETS, STEMS
from search.cli import components as command
from search.errors import UserError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_lists_everything_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.NAME == "components"
    assert command.run(_args("--json")) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listing["mixers"]] == sorted(MIXERS)
    assert [r["name"] for r in listing["stems"]] == sorted(STEMS)
    assert [r["name"] for r in listing["presets"]] == list(PRESETS)
    counts = {r["name"]: r["params"] for r in listing["presets"]}
    assert counts["fan_tiny_12_p16_224"] == pytest.approx(7.3e6, rel=0.02)
    assert all(r["params"] > 0 for rows in listing.values() for r in rows)


def test_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run(_args("--embed-dim", "64", "--num-heads", "2", "--img-size", "32")) == 0
    out = capsys.readouterr().out
    assert "Channel mixers (dim 64, 2 heads" in out
    assert "tap_fan_base_16_p4_hybrid" in out and "(published 50.7M)" in out


def test_bad_value_is_a_user_error() -> None:
    with pytest.raises(UserError, match="embed_dim=30 is not divisible by num_heads=4|dim=30 is not divisible"):
        command.collect(_args("--embed-dim", "30"))
