"""Mixed precision: every component and every preset trains under autocast (bf16 and fp16), on the
CPU and, marked ``cuda`` (``pytest -m cuda``, run by benchmarks/gpu_check.sh), on a GPU.

Forward and backward run once in fp32 and once under ``torch.autocast(device, dtype)`` on the same
weights and batch. What must hold: a finite loss, a finite gradient for every parameter, and
gradients close to fp32's. Closeness is measured on the whole gradient (all parameters
concatenated): relative L2 error below 3 % (measured 0.3 % to 0.7 % in bf16, 0.05 % in fp16).
Per tensor, the error must stay below 3 % of that tensor's own norm plus 1 % of the whole
gradient's norm: some gradients are zero in exact arithmetic (the bias of the ``fan`` mixer's q, whose
softmax over tokens ignores a per-channel shift; the class attention's k bias) and are rounding
noise in both precisions, so a purely per-tensor relative test would compare noise with noise.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from components import MIXERS, PRESETS, STEMS, Attention, TokenAwarePooling, get_mixer, get_stem
from tests.components._helpers import tiny_preset_kwargs

DTYPES = [torch.bfloat16, torch.float16]
HW = (4, 4)
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device")])]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


def probe_loss(out: torch.Tensor) -> torch.Tensor:
    """A loss that depends on every output value: a fixed random projection (a squared mean would be
    blind behind a BatchNorm, whose normalised output has a fixed mean square)."""
    r = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out.device)
    return (out.float() * r).mean()


def _grads(module: nn.Module, loss_fn, dtype: torch.dtype | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    module.zero_grad(set_to_none=True)
    device_type = next(module.parameters()).device.type
    with torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        loss = loss_fn()
    loss.float().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient under {dtype}: {missing}"
    return loss.detach().float(), {n: p.grad.detach().clone() for n, p in module.named_parameters()}


def assert_trains_like_fp32(module: nn.Module, loss_fn, dtype: torch.dtype) -> None:
    """Forward + backward under autocast ``dtype``: finite, and gradients close to fp32's (module docstring)."""
    module.train()
    loss32, g32 = _grads(module, loss_fn, None)
    loss_lp, g_lp = _grads(module, loss_fn, dtype)
    assert torch.isfinite(loss_lp), f"loss {loss_lp} under {dtype}"
    bad = [n for n, g in g_lp.items() if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients under {dtype}: {bad}"
    assert loss_lp == pytest.approx(loss32.item(), rel=2e-2, abs=2e-3)
    whole32 = torch.cat([g.flatten() for g in g32.values()])
    whole_lp = torch.cat([g.flatten() for g in g_lp.values()])
    rel = ((whole_lp - whole32).norm() / whole32.norm()).item()
    assert rel < 0.03, f"whole gradient off by {rel:.2%} under {dtype}"
    scale = whole32.norm()
    for name in g32:
        err = (g_lp[name] - g32[name]).norm()
        assert err <= 0.03 * g32[name].norm() + 0.01 * scale, f"{name}: error {err:.3g} under {dtype}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_trains_under_autocast(name: str, dtype: torch.dtype, device: torch.device) -> None:
    model = timm.create_model(name, **tiny_preset_kwargs(name)).to(device)
    x, y = torch.randn(4, 3, 16, 16, device=device), torch.randint(0, 3, (4,), device=device)
    assert_trains_like_fp32(model, lambda: F.cross_entropy(model(x).float(), y), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adl_training_step_under_autocast(dtype: torch.dtype, device: torch.device) -> None:
    """The TAP/ADL recipe's loss, CE + ADL over the maps of the same pass, on a TAP model."""
    from components import attention_diversification_loss

    model = timm.create_model("tap_fan_base_16_p4_hybrid", **tiny_preset_kwargs("tap_fan_base_16_p4_hybrid")).to(device)
    x, y = torch.randn(4, 3, 16, 16, device=device), torch.randint(0, 3, (4,), device=device)

    def loss() -> torch.Tensor:
        logits, maps = model.forward_with_attention(x)
        return F.cross_entropy(logits.float(), y) + attention_diversification_loss(maps)

    assert_trains_like_fp32(model, loss, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(MIXERS))
def test_every_mixer_trains_under_autocast(name: str, dtype: torch.dtype, device: torch.device) -> None:
    mixer = get_mixer(name)(16, num_heads=4, mlp_ratio=2.0).to(device)
    x = torch.randn(2, HW[0] * HW[1], 16, device=device)
    assert_trains_like_fp32(mixer, lambda: probe_loss(mixer(x, HW)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(STEMS))
def test_every_stem_trains_under_autocast(name: str, dtype: torch.dtype, device: torch.device) -> None:
    stem = get_stem(name)(16, 4, 3, 16, **({"convnext_dims": (8, 16)} if name == "convnext" else {})).to(device)
    x = torch.randn(2, 3, 16, 16, device=device)
    assert_trains_like_fp32(stem, lambda: probe_loss(stem(x)[0]), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tap_and_attention_train_under_autocast(dtype: torch.dtype, device: torch.device) -> None:
    """TAP's hand-written pooling backward used to fail here: a bf16 gradient met its fp32 filter."""
    tap = TokenAwarePooling(16, (1, 2, 3)).to(device)
    x = torch.randn(2, 25, 16, device=device, requires_grad=True)
    assert_trains_like_fp32(tap, lambda: probe_loss(tap(x, (5, 5))), dtype)
    with torch.autocast(device.type, dtype=dtype):
        (g,) = torch.autograd.grad(tap(x, (5, 5)).float().sum(), x)
    assert g.dtype == torch.float32 and torch.isfinite(g).all()
    attn = Attention(16, num_heads=4).to(device)
    assert_trains_like_fp32(attn, lambda: probe_loss(attn.forward_with_attn(x)[0]), dtype)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_runs_in_float64(name: str) -> None:
    """Every buffer and constant follows the module's dtype (no float32 left inside a float64 model)."""
    model = timm.create_model(name, **tiny_preset_kwargs(name)).double().eval()
    out = model(torch.randn(2, 3, 16, 16, dtype=torch.float64))
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
