"""Benchmark of the component zoo: forward+backward time per training step, side by side, as ratios.

1. The zoo's plain configuration (linear stem, ``mlp`` mixer, no TAP) against timm's
   ``VisionTransformer`` of the same depth, width and heads, set up the same way: no class token,
   mean-pooled tokens after the final LayerNorm (``global_pool="avg", fc_norm=False``), learned
   position embedding, qkv bias, LayerScale 1.0, no dropout / drop path. Same parameter count.
2. The overhead of TAP (K = 4: identity + dilations 1, 2, 3 in every block) and of each channel
   mixer against the plain configuration.
3. TAP's pooling (fixed-weight depthwise dilated convs) against the published unfold formulation,
   at the model's token grid: time and peak memory of forward+backward.
4. Mixed precision: the plain, TAP and ``fan`` configurations under ``torch.autocast(dtype=bfloat16)``
   against the same model in fp32 (``--amp-device`` cpu by default).
5. The whole FAN-B-Hybrid training step (full size, 224 px) with TAP (K = 4) in every block against
   the same model without TAP, in fp32 and under bf16 autocast (``--fan-rounds 0`` skips it).

The models are timed round-robin (one step of each per round, in a shuffled order) and every ratio
is the median over rounds of the ratio within a round, so that load from other processes hits all
of them alike. Peak memory: on CUDA ``max_memory_allocated``; on CPU
the glibc heap in use (``mallinfo2``) sampled after every aten op, relative to the start.

    python benchmarks/bench_components.py --threads 1         # CPU, small size
    python benchmarks/bench_components.py --device cuda --img-size 224 --batch-size 64 --depth 12
"""

from __future__ import annotations

import argparse
import ctypes
import platform
import random
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import components  # noqa: E402
from components.tap import TokenAwarePooling, box_pool  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--patch-size", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--embed-dim", type=int, default=192)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--num-heads", type=int, default=3)
    p.add_argument("--num-classes", type=int, default=100)
    p.add_argument("--steps", type=int, default=20, help="timed rounds (each model one step per round)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="precision of the side-by-side steps of part 1 (bf16: autocast; default fp32)")
    p.add_argument("--fan-batch-size", type=int, default=2, help="batch of the FAN-B-Hybrid steps")
    p.add_argument("--fan-rounds", type=int, default=5, help="timed rounds of the FAN-B-Hybrid steps (0: skip)")
    p.add_argument("--fan-only", action="store_true", help="only the FAN-B-Hybrid steps (section 5)")
    p.add_argument("--fan-warmup", type=int, default=2, help="untimed rounds before the FAN-B-Hybrid steps (default 2)")
    p.add_argument("--fan-precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"],
                   help="precisions of the FAN-B-Hybrid steps (default both; bf16 is autocast, "
                        "emulated and far slower on a CPU without AVX-512 BF16 or AMX)")
    p.add_argument("--fan-parts", action="store_true",
                   help="section 5 also times TAP's parts: TAP as the identity, TAP's branch-weight predictor alone")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Models


def build_models(args: argparse.Namespace) -> dict[str, nn.Module]:
    """timm's ViT, our plain config, TAP K=4, and one model per non-plain mixer."""
    from timm.models.vision_transformer import VisionTransformer

    common = dict(img_size=args.img_size, patch_size=args.patch_size, embed_dim=args.embed_dim,
                  depth=args.depth, num_heads=args.num_heads, num_classes=args.num_classes, mlp_ratio=4.0)
    models: dict[str, nn.Module] = {
        "timm ViT": VisionTransformer(**common, class_token=False, global_pool="avg", fc_norm=False,
                                      init_values=1.0, qkv_bias=True),
        "plain": components.RobustViT(**common, stem="linear", mixer="mlp"),
        "TAP K=4": components.RobustViT(**common, tap_dilations=(1, 2, 3)),
    }
    for mixer in sorted(components.MIXERS):
        if mixer != "mlp":
            models[f"mixer {mixer}"] = components.RobustViT(**common, mixer=mixer)
    return models


# ----------------------------------------------------------------------------------------------
# TAP pooling vs the published unfold formulation


class UnfoldTAP(nn.Module):
    """The published TAP pooling: one (B, 9C, N) unfold per branch, mean over the 9 taps."""

    def __init__(self, tap: TokenAwarePooling) -> None:
        super().__init__()
        self.tap = tap  # shares the branch-weight predictor, so both compute the same function

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        H, W = hw
        grid = x.transpose(1, 2).reshape(B, C, H, W)
        w = self.tap.predictor(grid).softmax(dim=1)  # (B, K, H, W)
        out = grid * w[:, :1]
        for i, d in enumerate(self.tap.dilations, start=1):
            cols = F.unfold(grid, kernel_size=3, dilation=d, padding=d)  # (B, 9C, N)
            out = out + cols.view(B, C, 9, H, W).mean(dim=2) * w[:, i : i + 1]
        return out.flatten(2).transpose(1, 2)


class NchwTAP(nn.Module):
    """Our TAP as it was before 2026-12-02: the tokens copied to a contiguous (B, C, H, W) grid, the
    per-branch weights made contiguous, the result copied back (the same arithmetic, bitwise)."""

    def __init__(self, tap: TokenAwarePooling) -> None:
        super().__init__()
        self.tap = tap

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        H, W = hw
        grid = x.transpose(1, 2).reshape(B, C, H, W)
        w = self.tap.branch_weights(grid).transpose(0, 1).contiguous().unsqueeze(2)  # (K, B, 1, H, W)
        out = grid * w[0]
        for i, d in enumerate(self.tap.dilations, start=1):
            out = out.add_(box_pool(grid, d) * w[i])
        return out.flatten(2).transpose(1, 2)


# ----------------------------------------------------------------------------------------------
# Measurement


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_round_robin(steps: dict[str, Callable[[], None]], rounds: int, warmup: int,
                     device: torch.device) -> dict[str, list[float]]:
    """Seconds per call of each step function, each called once per round in a shuffled order."""
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)  # no model always runs right after the same neighbour
        for name in order:
            fn = steps[name]
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of ``time[num] / time[den]`` within the same round (robust to load drift)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


class _HeapPeak(TorchDispatchMode):
    """Peak glibc heap in use (bytes above the start), sampled after every aten op."""

    def __init__(self) -> None:
        super().__init__()
        libc = ctypes.CDLL("libc.so.6")

        class MallInfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in
                        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

        libc.mallinfo2.restype = MallInfo2
        self._mallinfo = libc.mallinfo2
        self.base = self._in_use()
        self.peak = 0

    def _in_use(self) -> int:
        info = self._mallinfo()
        return info.uordblks + info.hblkhd

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, self._in_use() - self.base)
        return out


def peak_memory(fn: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated while ``fn`` runs (after one warm call)."""
    fn()
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    with _HeapPeak() as mode:
        fn()
    return mode.peak


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               amp: torch.dtype | None = None) -> Callable[[], None]:
    """Forward, cross-entropy and backward; under ``torch.autocast(amp)`` when ``amp`` is a dtype."""
    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()

    return step


def tap_step(module: nn.Module, x: torch.Tensor, hw: tuple[int, int], g: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        x.grad = None
        module.zero_grad(set_to_none=True)
        module(x, hw).backward(g)

    return step


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cmd = "python benchmarks/bench_components.py " + " ".join(argv if argv is not None else sys.argv[1:])
    dev = (torch.cuda.get_device_name(device) if device.type == "cuda" else
           f"CPU ({torch.backends.cpu.get_cpu_capability()} kernels), {args.threads} threads")
    if args.fan_only:
        print(f"command: `{cmd}`")
        print(f"device: {dev}; torch {torch.__version__}; python {platform.python_version()}")
        fan_hybrid_step(args, device)
        return 0

    models = {name: m.to(device).train() for name, m in build_models(args).items()}
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
    y = torch.randint(0, args.num_classes, (args.batch_size,), device=device)
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    amp = torch.bfloat16 if args.precision == "bf16" else None
    step_times = time_round_robin({n: train_step(m, x, y, amp) for n, m in models.items()},
                                  args.steps, args.warmup, device)

    # TAP pooling alone, at the model's token grid and width.
    grid = args.img_size // args.patch_size
    hw = (grid, grid)
    tap = TokenAwarePooling(args.embed_dim, (1, 2, 3)).to(device).train()
    ref = UnfoldTAP(tap)
    tx = torch.randn(args.batch_size, grid * grid, args.embed_dim, device=device, requires_grad=True)
    g = torch.randn_like(tx)
    with torch.no_grad():
        max_diff = (tap(tx, hw) - ref(tx, hw)).abs().max().item()
    tap_fns = {"TAP (depthwise conv)": tap_step(tap, tx, hw, g), "TAP (unfold)": tap_step(ref, tx, hw, g),
               "TAP (NCHW copy)": tap_step(NchwTAP(tap), tx, hw, g)}
    tap_times = time_round_robin(tap_fns, args.steps * 3, args.warmup, device)
    tap_mem = {name: peak_memory(fn, device) for name, fn in tap_fns.items()}

    # ---- report (markdown) ----
    print(f"command: `{cmd}`")
    print(f"device: {dev}; torch {torch.__version__}; python {platform.python_version()}")
    print(f"model: img {args.img_size}, patch {args.patch_size} ({grid}x{grid} tokens), dim {args.embed_dim}, "
          f"depth {args.depth}, heads {args.num_heads}, batch {args.batch_size}, {args.precision}; "
          f"median of {args.steps} round-robin rounds after {args.warmup} warm-up\n")
    med = {name: statistics.median(ts) for name, ts in step_times.items()}
    print("| model | params | fwd+bwd ms/step (median) | training images/s | vs plain | vs timm ViT |")
    print("|---|---|---|---|---|---|")
    for name in step_times:
        print(f"| {name} | {params[name] / 1e6:.2f}M | {med[name] * 1e3:.1f} | {args.batch_size / med[name]:.0f} | "
              f"{paired_ratio(step_times, name, 'plain'):.3f}x | {paired_ratio(step_times, name, 'timm ViT'):.3f}x |")
    ratio = paired_ratio(step_times, "plain", "timm ViT")
    print(f"\nplain / timm ViT = {ratio:.3f} (target <= 1.10): {'OK' if ratio <= 1.10 else 'ABOVE TARGET'}")
    print("(ratios: median over rounds of the ratio within a round)\n")
    conv_t = statistics.median(tap_times["TAP (depthwise conv)"])
    unf_t = statistics.median(tap_times["TAP (unfold)"])
    tap_ratio = paired_ratio(tap_times, "TAP (unfold)", "TAP (depthwise conv)")
    conv_m, unf_m = tap_mem["TAP (depthwise conv)"], tap_mem["TAP (unfold)"]
    print(f"TAP pooling alone, K=4, input ({args.batch_size}, {grid * grid}, {args.embed_dim}), "
          f"max |difference| {max_diff:.1e}:\n")
    print("| implementation | fwd+bwd ms | peak memory MB |")
    print("|---|---|---|")
    print(f"| depthwise conv (ours) | {conv_t * 1e3:.2f} | {conv_m / 2**20:.1f} |")
    print(f"| unfold (published) | {unf_t * 1e3:.2f} | {unf_m / 2**20:.1f} |")
    nchw_t, nchw_m = statistics.median(tap_times["TAP (NCHW copy)"]), tap_mem["TAP (NCHW copy)"]
    print(f"| ours on an NCHW copy (before) | {nchw_t * 1e3:.2f} | {nchw_m / 2**20:.1f} |")
    print(f"\nunfold / ours: time {tap_ratio:.2f}x, peak memory {unf_m / max(conv_m, 1):.2f}x; "
          f"ours / NCHW copy: time {paired_ratio(tap_times, 'TAP (depthwise conv)', 'TAP (NCHW copy)'):.2f}x")

    # ---- bf16 autocast against fp32, same models, same batch ----
    amp_steps = {}
    for name in ("plain", "TAP K=4", "mixer fan"):
        amp_steps[f"{name} fp32"] = train_step(models[name], x, y)
        amp_steps[f"{name} bf16"] = train_step(models[name], x, y, torch.bfloat16)
    amp_times = time_round_robin(amp_steps, args.steps, args.warmup, device)
    print("\nbf16 autocast against fp32 (same model and batch):\n")
    print("| model | fp32 ms | bf16 ms | bf16 / fp32 |")
    print("|---|---|---|---|")
    for name in ("plain", "TAP K=4", "mixer fan"):
        print(f"| {name} | {statistics.median(amp_times[name + ' fp32']) * 1e3:.1f} | "
              f"{statistics.median(amp_times[name + ' bf16']) * 1e3:.1f} | "
              f"{paired_ratio(amp_times, name + ' bf16', name + ' fp32'):.3f}x |")

    if args.fan_rounds:
        fan_hybrid_step(args, device)
    return 0


def fan_hybrid_step(args: argparse.Namespace, device: torch.device) -> None:
    """Section 5: FAN-B-Hybrid with and without TAP (K = 4, every block), fp32 and bf16, side by side."""
    import timm

    base = timm.create_model("fan_base_16_p4_hybrid", num_classes=args.num_classes)

    def same_weights(name: str) -> nn.Module:
        """A fresh instance of ``name`` holding ``base``'s weights (TAP's own are left as made), so
        that the arms differ by TAP alone and not by their draws of the initial weights."""
        model = timm.create_model(name, num_classes=args.num_classes)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        assert not unexpected and all(".tap." in key for key in missing), (missing, unexpected)
        return model

    # "without TAP, again" is a second instance of the same model with the same weights: its ratio
    # to "without TAP" is what two identical arms differ by on this machine (the noise floor).
    fan = {"FAN-B-Hybrid": base, "TAP-FAN-B-Hybrid": same_weights("tap_fan_base_16_p4_hybrid"),
           "FAN-B-Hybrid, again": same_weights("fan_base_16_p4_hybrid")}
    if args.fan_parts:  # where TAP's cost goes: the same model with each TAP cut down to a part
        for part, forward in TAP_PARTS.items():
            model = same_weights("tap_fan_base_16_p4_hybrid")
            for block in model.blocks:
                block.tap.forward = types.MethodType(forward, block.tap)
            fan[f"TAP-FAN-B-Hybrid, {part}"] = model
    fx = torch.randn(args.fan_batch_size, 3, 224, 224, device=device)
    fy = torch.randint(0, args.num_classes, (args.fan_batch_size,), device=device)
    steps = {}
    for name, model in fan.items():
        model.to(device).train()
        for prec in args.fan_precisions:
            steps[f"{name} {prec}"] = train_step(model, fx, fy, None if prec == "fp32" else torch.bfloat16)
    times = time_round_robin(steps, args.fan_rounds, args.fan_warmup, device)
    params = {name: sum(p.numel() for p in m.parameters()) / 1e6 for name, m in fan.items()}
    print(f"\nWhole training step, FAN-B-Hybrid at 224 px (14x14 tokens), batch {args.fan_batch_size}, "
          f"{params['FAN-B-Hybrid']:.1f}M vs {params['TAP-FAN-B-Hybrid']:.1f}M parameters; "
          f"median of {args.fan_rounds} round-robin rounds after {args.fan_warmup} warm-up:\n")
    print("| precision | without TAP s/step | with TAP s/step | with / without (target <= 1.05) "
          "| without again / without (noise floor) |")
    print("|---|---|---|---|---|")
    for prec in args.fan_precisions:
        ratio = paired_ratio(times, f"TAP-FAN-B-Hybrid {prec}", f"FAN-B-Hybrid {prec}")
        floor = paired_ratio(times, f"FAN-B-Hybrid, again {prec}", f"FAN-B-Hybrid {prec}")
        print(f"| {prec} | {statistics.median(times[f'FAN-B-Hybrid {prec}']):.2f} | "
              f"{statistics.median(times[f'TAP-FAN-B-Hybrid {prec}']):.2f} | {ratio:.3f}x | {floor:.3f}x |")
    if args.fan_parts:
        print("\n| precision | " + " | ".join(f"{part} / without" for part in TAP_PARTS) + " |")
        print("|---|" + "---|" * len(TAP_PARTS))
        for prec in args.fan_precisions:
            cells = [f"{paired_ratio(times, f'TAP-FAN-B-Hybrid, {part} {prec}', f'FAN-B-Hybrid {prec}'):.3f}x"
                     for part in TAP_PARTS]
            print(f"| {prec} | " + " | ".join(cells) + " |")


def _tap_identity(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return x * 1.0  # one element-wise pass, as cheap as a TAP can be


def _tap_predictor_only(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    B, N, C = x.shape
    tokens = x.reshape(B, hw[0], hw[1], C)
    w = self.branch_weights(tokens.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # the predictor, as TAP runs it
    return (tokens * w[..., 0:1]).reshape(B, N, C)  # the identity branch only: no pooling


TAP_PARTS = {"TAP as the identity": _tap_identity, "predictor only": _tap_predictor_only}


if __name__ == "__main__":
    sys.exit(main())
