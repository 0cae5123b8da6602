"""Every registered channel mixer through the same checks, plus FAN's gate against its formula."""

from __future__ import annotations

import pytest
import torch

from components import MIXERS, get_mixer
from components.mixers.fan import FANMixer
from tests.components._helpers import assert_deterministic_in_eval, assert_grads_reach_all

HW = (3, 4)


@pytest.mark.parametrize("name", sorted(MIXERS))
def test_shape_backward_determinism(name: str) -> None:
    mixer = get_mixer(name)(16, num_heads=4, mlp_ratio=2.0)
    x = torch.randn(2, HW[0] * HW[1], 16, requires_grad=True)
    y = mixer(x, HW)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert_grads_reach_all(mixer)
    assert x.grad is not None and x.grad.abs().sum() > 0
    mixer.eval()
    assert_deterministic_in_eval(mixer, x.detach(), HW)


def test_unknown_mixer_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown mixer 'gmlp'; valid mixers: fan, fan_se, mlp, se, xca"):
        get_mixer("gmlp")


@pytest.mark.parametrize("name", ["xca", "fan"])
def test_heads_must_divide_dim(name: str) -> None:
    with pytest.raises(ValueError, match="dim=18 is not divisible by num_heads=4"):
        get_mixer(name)(18, num_heads=4)


def test_fan_gate_follows_the_published_formula() -> None:
    """gate = sigmoid(softmax_N(q)^T mean_d(softmax_N(x))) * temperature; out = gate * LN(Mlp_v(x))."""
    torch.manual_seed(1)
    B, N, C, h = 2, 12, 8, 2
    d = C // h
    fan = FANMixer(C, num_heads=h).eval()
    with torch.no_grad():
        fan.temperature.copy_(torch.tensor([0.5, 2.0]).view(h, 1, 1))
    x = torch.randn(B, N, C)
    out = fan(x, HW)
    q = fan.q(x).view(B, N, h, d)
    k = x.view(B, N, h, d)
    q_hat = q.softmax(dim=1)  # over tokens
    proto = k.softmax(dim=1).mean(dim=3)  # (B, N, h): one prototype per token and head
    gate = torch.sigmoid(torch.einsum("bnhd,bnh->bhd", q_hat, proto)) * torch.tensor([0.5, 2.0]).view(1, h, 1)
    v = fan.norm_v(fan.mlp_v(x, HW)).view(B, N, h, d)
    expected = (v * gate.unsqueeze(1)).reshape(B, N, C)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    # No output projection: the value path is LN(Mlp_v(x)) with Mlp_v = fc1 -> +gamma*DWConv -> fc2.
    assert not hasattr(fan, "proj")
    assert fan.mlp_v.fc1.out_features == 4 * C


def test_se_gates_channels_of_the_mlp_output() -> None:
    se = get_mixer("se")(16, mlp_ratio=2.0).eval()
    x = torch.randn(2, 12, 16)
    y = se.mlp(x)
    gate = torch.sigmoid(se.se.fc2(torch.relu(se.se.fc1(y.mean(1)[..., None, None])))).flatten(1)  # (B, C)
    torch.testing.assert_close(se(x, HW), y * gate[:, None, :], atol=1e-6, rtol=1e-5)
    assert se.se.fc1.out_channels == 4  # ratio 0.25
