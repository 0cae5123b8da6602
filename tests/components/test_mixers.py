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


def test_fan_se_has_the_authors_structure_and_parameter_count() -> None:
    """FAN's SE variant (the authors' SEMlp): 1,291,104 parameters at C = 384; ``se`` has 1,255,776."""
    count = {name: sum(p.numel() for p in get_mixer(name)(384).parameters()) for name in ("fan_se", "se")}
    assert count == {"fan_se": 1_291_104, "se": 1_255_776}
    # The authors' parameters by name (theirs -> ours) and shape, read from their SEMlp.
    theirs = {"fc1.weight": (1536, 384), "fc1.bias": (1536,), "dwconv.conv1.weight": (1536, 1, 3, 3),
              "dwconv.conv1.bias": (1536,), "dwconv.bn.weight": (1536,), "dwconv.bn.bias": (1536,),
              "dwconv.conv2.weight": (1536, 1, 3, 3), "dwconv.conv2.bias": (1536,), "gamma": (1536,),
              "fc2.weight": (384, 1536), "fc2.bias": (384,), "se.conv_reduce.weight": (96, 384, 1, 1),
              "se.conv_reduce.bias": (96,), "se.conv_expand.weight": (384, 96, 1, 1), "se.conv_expand.bias": (384,)}
    ours = {n: tuple(p.shape) for n, p in get_mixer("fan_se")(384).named_parameters()}
    renamed = {("mlp." + k).replace("mlp.se.", "se.").replace("conv_reduce", "fc1").replace("conv_expand", "fc2"): v
               for k, v in theirs.items()}
    assert ours == renamed


def test_fan_se_follows_the_published_formula() -> None:
    """y = fc2(h + gamma * DWConv(h)) with h = fc1(x) (no activation outside DWConv); out = y * SE gate."""
    m = get_mixer("fan_se")(16, mlp_ratio=2.0).eval()
    x = torch.randn(2, 12, 16)
    h = m.mlp.fc1(x)
    grid = h.reshape(2, *HW, 32).permute(0, 3, 1, 2)
    dw = m.mlp.dwconv
    conv = dw.conv2(dw.bn(torch.nn.functional.gelu(dw.conv1(grid)))).permute(0, 2, 3, 1).reshape(2, 12, 32)
    y = m.mlp.fc2(h + m.mlp.gamma * conv)
    s = y.mean(1)[..., None, None]
    gate = torch.sigmoid(m.se.fc2(torch.relu(m.se.fc1(s)))).flatten(1)
    torch.testing.assert_close(m(x, HW), y * gate[:, None, :], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["fan", "fan_se"])
def test_depthwise_convs_start_as_the_authors(name: str) -> None:
    """normal(0, sqrt(2 / fan_out)), fan_out = 3 * 3 * out / groups = 9: std 0.47 (PyTorch's default: 0.19)."""
    mixer = get_mixer(name)(384)
    dw = mixer.mlp_v.dwconv if name == "fan" else mixer.mlp.dwconv
    for conv in (dw.conv1, dw.conv2):
        assert conv.weight.std().item() == pytest.approx((2 / 9) ** 0.5, rel=0.03)
        assert conv.weight.mean().abs().item() < 0.02
        assert torch.all(conv.bias == 0)
