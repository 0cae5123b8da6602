"""Cost of the other robustness axes next to a quickstart trial's training (issue 15).

The quickstart model (robust_vit, 32 px, patch 4, dim 48, depth 3, fan mixer, TAP) trained for one
epoch on the 1,437 digits training images at batch 64, then, side by side on the same process:
PGD-10 and FGSM on the quickstart-size subset (120 test images), and the lesion sweep (each of the 3
blocks skipped, on the 120 images). Run under the CPU lock: ``flock /tmp/cpu.lock python benchmarks/bench_axes.py``.
"""

from __future__ import annotations

import time

import timm
import torch

import components  # noqa: F401
from evaluation.axes import adversarial_accuracy, lesion_curve, seeded_positions
from evaluation.data import load_dataset, normalize


def main() -> None:
    torch.manual_seed(0)
    model = timm.create_model("robust_vit", img_size=32, patch_size=4, embed_dim=48, depth=3, num_heads=4,
                              mlp_ratio=2.0, mixer="fan", tap_blocks="all", num_classes=10)
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    opt = torch.optim.AdamW(model.parameters(), lr=4e-3)
    t0 = time.perf_counter()
    model.train()
    for start in range(0, len(train), 64):
        x = train.images[start:start + 64].float() / 255
        loss = torch.nn.functional.cross_entropy(model(normalize(x)), train.labels[start:start + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    epoch = time.perf_counter() - t0
    rows = [("one training epoch (1,437 images)", epoch)]
    for kind, steps in (("fgsm", 1), ("pgd", 10)):
        t = time.perf_counter()
        acc = adversarial_accuracy(model, test, kind=kind, epsilon=2 / 255, steps=steps, subset=120, seed=0)
        rows.append((f"{kind}{'-10' if steps > 1 else ''} on 120 images (acc {acc:.1f})", time.perf_counter() - t))
    t = time.perf_counter()
    curve = lesion_curve(model, test, positions=seeded_positions(len(test), 120, 0))
    rows.append((f"lesion sweep, {len(curve)} blocks x 120 images", time.perf_counter() - t))
    for name, sec in rows:
        print(f"{name:<42s} {sec:7.2f} s  {sec / epoch:6.2f} x epoch")


if __name__ == "__main__":
    main()
