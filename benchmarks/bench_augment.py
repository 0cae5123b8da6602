"""Training augmentation throughput: the hand-written ops it replaced, torchvision's v2 transforms image by
image, and ours (v2 kernels, per-image parameters drawn for the batch), side by side on the CPU.

Sizes: the digits (16 px, batch 64) and CIFAR (32 px, batch 128), images from scikit-learn's digits.
Every round times every variant once, in a shuffled order; the table gives medians over rounds of the
images per second and of the per-round ratios. For scale, the last column is the augmentation's time
as a share of one training step (forward, cross-entropy, backward, AdamW) of the quickstart's model
(patch 4, width 48, depth 3) at the same size and batch.

    flock /tmp/cpu.lock python benchmarks/bench_augment.py [--rounds 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.model import RobustViT  # noqa: E402
from evaluation.data import load_digits_dataset  # noqa: E402
from search.trial.augment import augment  # noqa: E402

SIZES = ((16, 64), (32, 128))  # (side, batch): digits, CIFAR


# ---- the reference: the hand-written ops that search/trial/augment.py had before torchvision's ----
def handwritten(images: torch.Tensor, name: str, generator: torch.Generator) -> torch.Tensor:
    b, _, h, w = images.shape
    flip = torch.rand(b, generator=generator) < 0.5  # (B,)
    images = torch.where(flip.view(b, 1, 1, 1), images.flip(-1), images)
    if name == "flip":
        return images
    pad = max(1, min(h, w) // 8)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    images = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    bright = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=generator)
    contrast = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=generator)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return ((images - mean) * contrast + mean * bright).clamp(0.0, 1.0)


# ---- what a user of torchvision would write: the v2 transforms, one call per image (a call on the
# batch would draw one set of parameters for all its images), seeded from the generator ----
def v2_per_image(side: int) -> Callable[[torch.Tensor, str, torch.Generator], torch.Tensor]:
    transforms = {
        "flip": v2.RandomHorizontalFlip(),
        "randaug_lite": v2.Compose([v2.RandomHorizontalFlip(),
                                    v2.RandomCrop(side, padding=max(1, side // 8), padding_mode="reflect"),
                                    v2.ColorJitter(brightness=0.2, contrast=0.2)]),
    }

    def run(images: torch.Tensor, name: str, generator: torch.Generator) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
            return torch.stack([transforms[name](img) for img in images])

    return run


def train_step(side: int, batch: int) -> Callable[[], None]:
    model = RobustViT(img_size=side, patch_size=4, embed_dim=48, depth=3, num_heads=2, mlp_ratio=2.0, num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 3, side, side), torch.randint(0, 10, (batch,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def seconds(fn: Callable[[], object], repeats: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=10, help="batches per timing")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, Python {platform.python_version()}, {args.threads} thread(s), "
          f"{args.rounds} rounds x {args.repeats} batches")
    print("| size, batch | augmentation | variant | images/s | vs hand-written | share of a training step |")
    print("|---|---|---|---|---|---|")
    rng = random.Random(0)
    for side, batch in SIZES:
        images = load_digits_dataset("train", image_size=side).images[:batch].float() / 255
        step = train_step(side, batch)
        step()
        variants = {"hand-written": handwritten, "v2 transforms per image": v2_per_image(side), "ours (v2 kernels)": augment}
        cases = [(aug, v) for aug in ("flip", "randaug_lite") for v in variants]
        variants["timm's, per image through PIL"] = augment  # for scale: the RandAugment string path
        cases.append(("rand-m9-mstd0.5-inc1", "timm's, per image through PIL"))
        g = torch.Generator().manual_seed(0)
        times: dict[object, list[float]] = {c: [] for c in cases}
        steps: list[float] = []
        for c in cases:  # warm-up
            variants[c[1]](images, c[0], g)
        for _ in range(args.rounds):
            order = [*cases, "step"]
            rng.shuffle(order)
            for c in order:
                if c == "step":
                    steps.append(seconds(step, max(1, args.repeats // 5)))
                else:
                    times[c].append(seconds(lambda c=c, images=images, g=g, variants=variants: variants[c[1]](images, c[0], g), args.repeats))
        for aug, v in cases:
            t = times[(aug, v)]
            ref = times.get((aug, "hand-written"))
            ratio = f"{statistics.median(r / x for r, x in zip(ref, t, strict=True)):.2f}x" if ref else "-"
            share = statistics.median(x / s for x, s in zip(t, steps, strict=True))
            print(f"| {side} px, {batch} | `{aug}` | {v} | {batch / statistics.median(t):,.0f} | {ratio} | {share:.1%} |")
        print(f"| {side} px, {batch} | (training step) | quickstart model | {batch / statistics.median(steps):,.0f} | - | 100% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
