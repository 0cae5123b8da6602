"""Corruption throughput, ours (torch backend) vs imagecorruptions, and the cost of judging a model.

Part 1: the same real 224 px photos (scikit-image's sample images, resized and cropped) are
corrupted by both engines with the ImageNet-C table, every severity; images per second per
corruption, their ratio, and the total over the 15 benchmark corruptions (total images / total
seconds). The reference runs image by image (that is how it works); ours runs each severity on the
whole batch. Three comparisons, measured in the same run, interleaved: every round times every
corruption once in each setting, and the table gives medians over rounds (of the throughputs and of
the per-round ratios), so a busy shared machine disturbs the ratios less:

* ``cpu``: CPU time of the process, ours with 1 torch thread vs the reference (single-threaded);
* ``wall``: elapsed time, ours with ``--threads`` torch threads (default 2, the 2 cores) vs the
  reference as it runs, one process (it is single-threaded);
* ``pool``: elapsed time, ours as in ``wall`` vs the reference spread over a pool of ``--threads``
  worker processes (each corrupting its share of the images).

Part 2: time to judge a small model on the digits corrupted set (360 test images x 15 corruptions
x 5 severities, CIFAR-10-C table, 32 px), split into building the set (corruption) and inference.

    python benchmarks/bench_corruptions.py --images 16 --rounds 3 [--threads 2] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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


_WORKER_PHOTOS: torch.Tensor | None = None


def _worker_init(n: int) -> None:
    global _WORKER_PHOTOS
    torch.set_num_threads(1)
    _WORKER_PHOTOS = photos(n)


def _worker_corrupt(task: tuple[str, int, int, int]) -> int:
    from evaluation.corruptions.reference import reference_corrupt

    name, severity, lo, hi = task
    reference_corrupt(_WORKER_PHOTOS[lo:hi], name, severity, seed=severity)
    return hi - lo


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_ours(x: torch.Tensor, name: str, severities: list[int], threads: int, device: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of our backend on ``x`` for every severity with ``threads``."""
    torch.set_num_threads(threads)
    _sync(device)
    w, c = time.perf_counter(), time.process_time()
    for s in severities:
        corrupt(x, name, s, seed=s)
    _sync(device)
    return time.perf_counter() - w, time.process_time() - c


def bench_corruptions(n: int, device: str, severities: list[int], rounds: int, threads: int,
                      skip_reference: bool, pool_size: int) -> list[dict]:
    """Per corruption, lists (one entry per round) of seconds in each setting."""
    x = photos(n)
    xd = x.to(device)
    timings = {name: {"ours_cpu": [], "ours_wall": [], "ref_cpu": [], "ref_wall": [], "ref_pool": []}
               for name in BENCHMARK_CORRUPTIONS}
    pool = None
    if not skip_reference and pool_size > 1:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(pool_size, initializer=_worker_init, initargs=(n,))
    chunks = [(i * n // pool_size, (i + 1) * n // pool_size) for i in range(pool_size)]
    try:
        for name in BENCHMARK_CORRUPTIONS:  # warm-up: tables, frost images, numba JIT (every worker)
            for t in {1, threads}:
                torch.set_num_threads(t)
                corrupt(xd[:2], name, severities[0], seed=0)
            if not skip_reference:
                corrupt(x[:1], name, severities[0], backend="reference", seed=0)
                if pool is not None:
                    pool.map(_worker_corrupt, [(name, severities[0], 0, 1)] * pool_size * 2, chunksize=1)
        for r in range(rounds):
            for name in BENCHMARK_CORRUPTIONS:
                t = timings[name]
                t["ours_cpu"].append(_time_ours(xd, name, severities, 1, device)[1 if device == "cpu" else 0])
                t["ours_wall"].append(_time_ours(xd, name, severities, threads, device)[0])
                if skip_reference:
                    continue
                w, c = time.perf_counter(), time.process_time()
                for s in severities:
                    corrupt(x, name, s, backend="reference", seed=s)
                t["ref_wall"].append(time.perf_counter() - w)
                t["ref_cpu"].append(time.process_time() - c)
                if pool is not None:
                    w = time.perf_counter()
                    pool.map(_worker_corrupt, [(name, s, lo, hi) for s in severities for lo, hi in chunks], chunksize=1)
                    t["ref_pool"].append(time.perf_counter() - w)
            print(f"  round {r + 1}/{rounds} done, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    count = n * len(severities)
    return [{"name": name, "images": count, **timings[name]} for name in BENCHMARK_CORRUPTIONS]


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


def _median_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of num / den (same round), nan when a side was not measured."""
    if not num or not den:
        return float("nan")
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def _rate(images: int, seconds: list[float]) -> float:
    return statistics.median(images / s for s in seconds) if seconds else float("nan")


def _print_table(rows: list[dict], coverage: dict[str, str], threads: int) -> None:
    total = {key: [sum(r[key][i] for r in rows) for i in range(len(rows[0][key]))]
             for key in ("ours_cpu", "ours_wall", "ref_cpu", "ref_wall", "ref_pool")}
    allrows = rows + [{"name": "**total (15)**", "images": sum(r["images"] for r in rows), **total}]
    print(f"| corruption | ours, 1 thread, CPU | reference, CPU | ratio CPU | ours, {threads} threads, wall | "
          f"reference, 1 process, wall | ratio wall | reference, {threads} processes, wall | ratio vs pool | our path |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in allrows:
        n = r["images"]
        print(f"| {r['name']} | {_rate(n, r['ours_cpu']):.1f} | {_rate(n, r['ref_cpu']):.1f} | "
              f"{_median_ratio(r['ref_cpu'], r['ours_cpu']):.1f}x | {_rate(n, r['ours_wall']):.1f} | "
              f"{_rate(n, r['ref_wall']):.1f} | {_median_ratio(r['ref_wall'], r['ours_wall']):.1f}x | "
              f"{_rate(n, r['ref_pool']):.1f} | {_median_ratio(r['ref_pool'], r['ours_wall']):.1f}x | "
              f"{coverage.get(r['name'], '')} |")
    print("\n(images per second, medians over rounds; ratios: median of the per-round ratios)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="photos per severity (default 16)")
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--device", default="cpu", help="device of our backend (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads of ours in the wall-clock comparison, and worker processes "
                             "of the reference's pool (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-pool", action="store_true", help="skip the reference's process pool")
    parser.add_argument("--json", help="also write the raw per-round timings (seconds) to this file")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-judging", action="store_true")
    parser.add_argument("--only-judging", action="store_true", help="skip the throughput part")
    args = parser.parse_args()
    sevs = [int(s) for s in args.severities.split(",")]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {args.threads}, device {args.device}, {args.images} photos x severities {sevs}, 224 px, "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    if not args.only_judging:
        rows = bench_corruptions(args.images, args.device, sevs, args.rounds, args.threads, args.skip_reference,
                                 1 if args.no_pool else args.threads)
        _print_table(rows, fast_backend_coverage(args.device), args.threads)
        if args.json:
            import json

            Path(args.json).write_text(json.dumps({"args": vars(args), "load": os.getloadavg()[0], "rows": rows}))
    torch.set_num_threads(args.threads)
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
