"""Corruption throughput, ours (torch backend) vs imagecorruptions, and the cost of judging a model.

Part 1: the same real 224 px photos (scikit-image's sample images, resized and cropped) are
corrupted by both engines with the ImageNet-C table, every severity; images per second per
corruption, their ratio, and the total over the 15 benchmark corruptions (total images / total
seconds). The reference runs image by image (that is how it works); ours runs each severity on the
whole batch.

Part 2: time to judge a small model on the digits corrupted set (360 test images x 15 corruptions
x 5 severities, CIFAR-10-C table, 32 px), split into building the set (corruption) and inference.

    python benchmarks/bench_corruptions.py --images 8 [--threads 2] [--clock wall|cpu] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.corruptions import BENCHMARK_CORRUPTIONS, corrupt, fast_backend_coverage  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def photos(n: int, size: int = 224) -> torch.Tensor:
    """``n`` real photos: scikit-image samples, shorter side resized to 256, crops of ``size``."""
    import skimage.data
    from PIL import Image

    out = []
    k = 0
    while len(out) < n:
        img = Image.fromarray(getattr(skimage.data, PHOTOS[k % len(PHOTOS)])()).convert("RGB")
        w, h = img.size
        s = 256 / min(w, h)
        arr = np.asarray(img.resize((round(w * s), round(h * s)), Image.BILINEAR))
        hh, ww = arr.shape[:2]
        j = k // len(PHOTOS)  # later rounds take other crops of the same photos
        top, left = (j * 13) % (hh - size + 1), (j * 29) % (ww - size + 1)
        out.append(arr[top:top + size, left:left + size])
        k += 1
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def bench_corruptions(n: int, device: str, severities: list[int], skip_reference: bool, clock) -> list[dict]:
    x = photos(n)
    rows = []
    for name in BENCHMARK_CORRUPTIONS:
        xd = x.to(device)
        corrupt(xd[:2], name, severities[0], seed=0)  # warm-up (tables, frost images, JIT)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = clock()
        for s in severities:
            corrupt(xd, name, s, seed=s)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        ours = clock() - t
        ref = float("nan")
        if not skip_reference:
            corrupt(x[:1], name, severities[0], backend="reference", seed=0)  # warm-up (numba)
            t = clock()
            for s in severities:
                corrupt(x, name, s, backend="reference", seed=s)
            ref = clock() - t
        count = n * len(severities)
        rows.append({"name": name, "ours_s": ours, "ref_s": ref, "images": count})
        print(f"  {name:18s} ours {count / ours:8.1f} img/s   reference {count / ref:8.1f} img/s   "
              f"x{ref / ours:6.2f}", file=sys.stderr)
    return rows


def bench_judging(device: str, cache: str) -> dict:
    from evaluation.corrupted_set import build_corrupted_set
    from evaluation.data import load_dataset
    from evaluation.report import evaluate

    clean = load_dataset("digits", "test")
    t = time.perf_counter()
    cs = build_corrupted_set(clean, corruptions="benchmark", table="cifar10", seed=0, cache_dir=cache,
                             progress=False, device=device)
    build = time.perf_counter() - t
    t = time.perf_counter()
    build_corrupted_set(clean, corruptions="benchmark", table="cifar10", seed=0, cache_dir=cache,
                        progress=False, device=device)
    reload = time.perf_counter() - t
    model, model_name = _small_model()
    report = evaluate(model, clean, cs, normalization="none", batch_size=256, device=device)
    plain = evaluate(model, clean, cs, normalization="none", batch_size=256, device=device, attention=False)
    return {"build_s": build, "reload_s": reload, "clean_s": report.seconds["clean"],
            "corrupted_s": report.seconds["corrupted"], "images": len(cs) * 75, "model": model_name,
            "attention": report.attention_stability is not None,
            "plain_clean_s": plain.seconds["clean"], "plain_corrupted_s": plain.seconds["corrupted"]}


def _small_model():
    import timm

    try:
        import components  # noqa: F401

        return timm.create_model("robust_vit_digits_p4_32", num_classes=10), "robust_vit_digits_p4_32"
    except Exception:  # the zoo is optional here
        kw = {"img_size": 32, "patch_size": 4, "embed_dim": 64, "depth": 4, "num_heads": 2, "num_classes": 10}
        return timm.create_model("vit_tiny_patch16_224", **kw), f"vit_tiny_patch16_224 {kw}"


def _print_table(rows: list[dict], coverage: dict[str, str]) -> None:
    print("| corruption | ours img/s | imagecorruptions img/s | ratio | our path |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['name']} | {r['images'] / r['ours_s']:.1f} | {r['images'] / r['ref_s']:.1f} | "
              f"{r['ref_s'] / r['ours_s']:.1f}x | {coverage[r['name']]} |")
    ours = sum(r["ours_s"] for r in rows)
    ref = sum(r["ref_s"] for r in rows)
    total = sum(r["images"] for r in rows)
    print(f"| **total (15)** | **{total / ours:.1f}** | **{total / ref:.1f}** | **{ref / ours:.1f}x** | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="photos per severity (default 16)")
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--device", default="cpu", help="device of our backend (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="wall: elapsed time; cpu: this process's CPU time (all threads), which a "
                             "busy shared machine disturbs less (use with --threads 1)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-judging", action="store_true")
    parser.add_argument("--only-judging", action="store_true", help="skip the throughput part")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sevs = [int(s) for s in args.severities.split(",")]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {args.threads}, "
          f"device {args.device}, {args.images} photos x severities {sevs}, 224 px, {args.clock} clock, "
          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if not args.only_judging:
        rows = bench_corruptions(args.images, args.device, sevs, args.skip_reference, clock)
        _print_table(rows, fast_backend_coverage(args.device))
    if not args.skip_judging:
        with tempfile.TemporaryDirectory() as cache:
            j = bench_judging(args.device, cache)
        print()
        print(f"Judging {j['model']} on the digits corrupted set ({j['images']} corrupted images, 32 px, "
              f"CIFAR-10-C table; attention metrics: {j['attention']}):")
        print(f"- corruption (building the cached set): {j['build_s']:.1f} s "
              f"({j['images'] / j['build_s']:.0f} img/s); reloading it from the cache: {j['reload_s']:.2f} s")
        print(f"- inference with attention metrics: clean pass {j['clean_s']:.1f} s, corrupted pass "
              f"{j['corrupted_s']:.1f} s ({j['images'] / j['corrupted_s']:.0f} img/s)")
        print(f"- inference without (attention=False): clean pass {j['plain_clean_s']:.1f} s, corrupted pass "
              f"{j['plain_corrupted_s']:.1f} s ({j['images'] / j['plain_corrupted_s']:.0f} img/s)")


if __name__ == "__main__":
    main()
