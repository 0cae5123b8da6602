"""One call that judges a model: :func:`evaluate` -> :class:`RobustnessReport`.

The model receives normalised inputs (:func:`evaluation.data.normalize`) and returns logits. If it
has ``forward_with_attention(x) -> (logits, [maps (B, heads, N, N)])`` and the corrupted set
knows which clean image each item came from, the report adds attention stability and head
diversity (from the same forward passes that give the accuracies).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset

from evaluation.corrupted_set import CorruptedSet
from evaluation.data import ImageDataset, normalize
from evaluation.metrics import (
    ALEXNET,
    Baseline,
    attention_stability,
    head_diversity,
    load_baseline,
    summarize_errors,
)


@dataclass
class RobustnessReport:
    """The result of :func:`evaluate`. Accuracies, errors, CE and retention are in percent.

    Attributes:
        clean_accuracy: top-1 accuracy on the clean test set.
        errors: ``errors[corruption][severity]`` top-1 error.
        ce: CE per corruption (normalised, or the unnormalised mean error when normalization="none").
        relative_ce: relative CE per corruption.
        mce, relative_mce: their means.
        mean_corruption_error: 100 - mean accuracy over all corruptions and severities.
        corrupted_accuracy: mean accuracy over all corruptions and severities.
        retention: corrupted_accuracy / clean_accuracy x 100.
        normalization: ``"alexnet"``, ``"none"`` or the baseline's name.
        attention_stability: clean-vs-corrupted attention cosine (None without attention maps).
        attention_stability_per_corruption: the same per corruption.
        head_diversity: mean pairwise cosine between heads on clean images (None without maps).
        num_clean, num_corrupted: clean images judged (the corrupted set's own images when it
            knows them, so a subset judges clean and corrupted accuracy on the same ones) and
            images per corruption/severity.
        seconds: wall time of the clean and corrupted passes.
        setup: how the corrupted set was made (``table``, ``seed``, ``subset``, ``backend``,
            ``source``), printed and written with every report.
        extra: the other robustness axes (``adv_accuracy/pgd``, ``lesion_accuracy/mean``,
            ``shift_accuracy/<name>``, ...), see :func:`evaluation.axes.judge_axes`.
        curves: per-step series (``lesion_accuracy`` per block), logged as curves.
    """

    clean_accuracy: float
    errors: dict[str, dict[int, float]]
    ce: dict[str, float]
    relative_ce: dict[str, float]
    mce: float
    relative_mce: float
    mean_corruption_error: float
    corrupted_accuracy: float
    retention: float
    normalization: str
    attention_stability: float | None = None
    attention_stability_per_corruption: dict[str, float] = field(default_factory=dict)
    head_diversity: float | None = None
    num_clean: int = 0
    num_corrupted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    setup: dict = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)

    def to_flat_dict(self) -> dict[str, float]:
        """Flat metric names for logging: ``clean_accuracy``, ``mce``, ..., ``ce/<c>``,
        ``relative_ce/<c>``, ``error/<c>/<s>`` and the other axes (:attr:`extra`)."""
        out = {
            "clean_accuracy": self.clean_accuracy,
            "mce": self.mce,
            "relative_mce": self.relative_mce,
            "mean_corruption_error": self.mean_corruption_error,
            "retention": self.retention,
            "corrupted_accuracy": self.corrupted_accuracy,
        }
        if self.attention_stability is not None:
            out["attention_stability"] = self.attention_stability
        if self.head_diversity is not None:
            out["head_diversity"] = self.head_diversity
        for c, v in self.ce.items():
            out[f"ce/{c}"] = v
        for c, v in self.relative_ce.items():
            out[f"relative_ce/{c}"] = v
        out.update(self.extra)
        for c, by_sev in self.errors.items():
            for s, e in by_sev.items():
                out[f"error/{c}/{s}"] = e
        return {k: float(v) for k, v in out.items()}

    def to_dict(self) -> dict:
        """All fields as plain JSON-able data."""
        return asdict(self)

    def to_json_dict(self) -> dict:
        """What ``search eval --json`` writes: the flat metrics, the set-up and the curves."""
        return {**self.to_flat_dict(), "normalization": self.normalization, "num_clean": self.num_clean,
                "num_corrupted": self.num_corrupted, "setup": self.setup, "curves": self.curves}

    def setup_line(self) -> str:
        """One line naming the corruption table (or pre-made source), seed, backend and subset."""
        s = self.setup
        subset = f"{s.get('subset')} images" if s.get("subset") else "all images"
        return (f"table {s.get('table') or '?'}, seed {s.get('seed')}, backend {s.get('backend') or '-'}, "
                f"subset {subset} ({self.num_corrupted} judged), source {s.get('source') or '-'}")

    def to_table(self) -> str:
        """A plain-text table: one row per corruption (errors by severity, mean, CE), then totals."""
        sevs = sorted({s for by_sev in self.errors.values() for s in by_sev})
        plain = self.normalization == "none"  # CE is then the mean error itself: one column, not two
        cols = ("mean", "rel CE") if plain else ("mean", "CE", "rel CE")
        head = f"{'corruption':<18s}" + "".join(f"{'s' + str(s):>7s}" for s in sevs) + "".join(f"{c:>8s}" for c in cols)
        lines = [f"Robustness report (errors in %, CE normalised by: {self.normalization})", self.setup_line(),
                 head, "-" * len(head)]

        def cell(v: float | None) -> str:
            return f"{'-':>8s}" if v is None or math.isnan(v) else f"{v:8.2f}"

        for c, by_sev in self.errors.items():
            mean = sum(by_sev.values()) / len(by_sev)
            values = (mean, self.relative_ce.get(c)) if plain else (mean, self.ce.get(c), self.relative_ce.get(c))
            lines.append(f"{c:<18s}" + "".join(f"{by_sev[s]:7.2f}" for s in sevs) + "".join(map(cell, values)))
        lines.append("-" * len(head))

        def fmt(v: float | None) -> str:
            return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"

        summary = [
            ("clean accuracy", self.clean_accuracy), ("corrupted accuracy", self.corrupted_accuracy),
            ("mCE", self.mce), ("relative mCE", self.relative_mce),
            ("mean corruption error", self.mean_corruption_error), ("retention", self.retention),
        ]
        if self.attention_stability is not None:
            summary.append(("attention stability", self.attention_stability))
        if self.head_diversity is not None:
            summary.append(("head diversity", self.head_diversity))
        summary += sorted(self.extra.items())
        lines += [f"{name:<22s}{fmt(v):>10s}" for name, v in summary]
        lines.append(f"images: {self.num_clean} clean, {self.num_corrupted} per corruption and severity")
        return "\n".join(lines)


def resolve_baseline(normalization: str | Path | Baseline | None) -> Baseline | None:
    """``"alexnet"`` -> AlexNet, ``"none"``/None -> unnormalised, a path -> :func:`load_baseline`."""
    if isinstance(normalization, Baseline):
        return normalization
    if normalization is None or normalization == "none":
        return None
    if normalization == "alexnet":
        return ALEXNET
    path = Path(normalization)
    if path.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"normalization must be 'alexnet', 'none' or a .json/.csv baseline file, "
                         f"got {normalization!r}")
    return load_baseline(path)


def _clean_items(dataset: Dataset, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images (B, 3, H, W) and labels (B,) of ``dataset[indices]``."""
    if isinstance(dataset, ImageDataset):  # in memory: slice instead of collating items
        return dataset.images[indices].float() / 255, dataset.labels[indices]
    items = [dataset[int(i)] for i in indices]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


def _chunks(n: int, small: int, large: int, small_until: int):
    """Index ranges covering 0..n: ``small`` at a time below ``small_until``, then ``large``."""
    start = 0
    while start < n:
        step = small if start < small_until else large
        yield torch.arange(start, min(start + step, n))
        start += step


def evaluate(model: torch.nn.Module, clean: Dataset, corrupted: CorruptedSet, *,
             normalization: str | Path | Baseline | None = "alexnet", batch_size: int = 256,
             device: str | torch.device = "cpu", attention: bool | None = None,
             attention_items: int | None = 256,
             progress: Callable[[int, int, str], None] | None = None) -> RobustnessReport:
    """Judge ``model`` on the clean test set and the corrupted set.

    Args:
        model: maps normalised (B, 3, H, W) images to logits; moved to ``device`` and set to eval.
        clean: the clean test set (``(image, label)`` items).
        corrupted: the corrupted set (items pair with ``clean`` through ``source_indices``).
        normalization: ``"alexnet"`` (ImageNet-C mCE), ``"none"`` (CIFAR convention: unnormalised
            mean error), a baseline file path (see :mod:`evaluation.metrics`) or a ``Baseline``.
        batch_size: images per forward pass (passes that return attention maps use at most 64 items).
        device: where the model runs.
        attention: measure attention stability and head diversity; default: when the model has
            ``forward_with_attention`` (stability also needs ``corrupted.source_indices``).
        attention_items: measure them on the first this many clean images and corrupted items (a
            fixed sample: returning attention maps is several times slower than a plain forward);
            ``None`` = all. Accuracies always use every image.
        progress: called as ``progress(done, total, label)`` after each forward pass of the
            corrupted set (``total`` = items x corruptions x severities; ``label`` "fog s3").
    """
    baseline = resolve_baseline(normalization)
    norm_name = "none" if baseline is None else baseline.name
    use_attn = hasattr(model, "forward_with_attention") if attention is None else attention
    if use_attn and not hasattr(model, "forward_with_attention"):
        raise ValueError("attention=True needs a model with forward_with_attention(x)")
    model = model.to(device).eval()
    bs_attn = min(batch_size, 64)
    attn_n = 0 if not use_attn else (len(clean) if attention_items is None else int(attention_items))

    def run(x: torch.Tensor, with_maps: bool):
        x = normalize(x.to(device))
        if with_maps:
            return model.forward_with_attention(x)
        return model(x), None

    # ---- clean pass: accuracy (+ head diversity on the first attn_n images), on the corrupted
    # set's own clean images when it knows them (a subset: the same images on both sides)
    t0 = time.time()
    correct = 0
    div_sum, div_n = 0.0, 0
    judged = corrupted.source_indices if corrupted.source_indices is not None else torch.arange(len(clean))
    with torch.inference_mode():
        for pos in _chunks(len(judged), bs_attn, batch_size, attn_n):
            x, y = _clean_items(clean, judged[pos])
            logits, maps = run(x, bool(pos[0] < attn_n))
            correct += int((logits.argmax(-1).cpu() == y).sum())
            if maps:
                div = head_diversity(maps)
                div_sum += float(div.nansum())
                div_n += int((~div.isnan()).sum())
    total = len(judged)
    if total == 0:
        raise ValueError("the clean test set is empty")
    clean_acc = 100.0 * correct / total
    t1 = time.time()

    # ---- corrupted pass: per corruption/severity accuracy (+ attention stability on a sample)
    pair_n = attn_n if corrupted.source_indices is not None else 0
    hits = {c: {s: 0 for s in corrupted.severities} for c in corrupted.corruptions}
    stab = {c: [0.0, 0] for c in corrupted.corruptions}
    combos = [(c, s) for c in corrupted.corruptions for s in corrupted.severities]
    work_done = 0
    with torch.inference_mode():
        for pos in _chunks(len(corrupted), bs_attn, batch_size, pair_n):
            labels = corrupted.labels[pos]
            pair = bool(pos[0] < pair_n)
            clean_maps = None
            if pair:
                _, clean_maps = run(_clean_items(clean, corrupted.source_indices[pos])[0], True)
            # Several (corruption, severity) blocks of these items per forward pass, up to batch_size.
            per_pass = max(1, batch_size // len(pos))
            for g in range(0, len(combos), per_pass):
                group = combos[g:g + per_pass]
                x = torch.cat([corrupted.load(c, s, pos) for c, s in group])
                logits, maps = run(x, pair)
                correct_g = (logits.argmax(-1).cpu() == labels.repeat(len(group))).view(len(group), -1).sum(1)
                if pair:  # (G * P, h, N, N) -> (G, P, h, N, N) against clean (P, h, N, N)
                    grouped = [m.view(len(group), len(pos), *m.shape[1:]) for m in maps]
                    st = attention_stability(clean_maps, grouped).sum(1)  # (G,)
                work_done += len(pos) * len(group)
                if progress is not None:
                    progress(work_done, len(corrupted) * len(combos), f"{group[-1][0]} s{group[-1][1]}")
                for j, (c, s) in enumerate(group):
                    hits[c][s] += int(correct_g[j])
                    if pair:
                        stab[c][0] += float(st[j])
                        stab[c][1] += len(pos)
    n = len(corrupted)
    if n == 0:
        raise ValueError("the corrupted set is empty")
    errors = {c: {s: 100.0 - 100.0 * hits[c][s] / n for s in corrupted.severities} for c in corrupted.corruptions}
    summary = summarize_errors(errors, 100.0 - clean_acc, baseline)
    stab_per = {c: v[0] / v[1] for c, v in stab.items() if v[1]}
    return RobustnessReport(
        clean_accuracy=clean_acc,
        errors=errors,
        ce=summary.ce,
        relative_ce=summary.relative_ce,
        mce=summary.mce,
        relative_mce=summary.relative_mce,
        mean_corruption_error=summary.mean_corruption_error,
        corrupted_accuracy=summary.corrupted_accuracy,
        retention=summary.retention,
        normalization=norm_name,
        attention_stability=(sum(stab_per.values()) / len(stab_per)) if stab_per else None,
        attention_stability_per_corruption=stab_per,
        head_diversity=(div_sum / div_n) if div_n else None,
        num_clean=total,
        num_corrupted=n,
        seconds={"clean": t1 - t0, "corrupted": time.time() - t1},
        setup=corrupted.describe(),
    )


def comparability_warnings(table: str, normalization: str, image_size: int) -> list[str]:
    """What makes a report's numbers not comparable with published ones (printed by ``search eval``)."""
    out = []
    if normalization == "alexnet" and (table == "cifar10" or image_size < 128):
        out.append(f"warning: AlexNet normalisation divides by ImageNet-C errors at 224 px; the mCE of a "
                   f"{image_size} px {table or 'pre-made'} set is not comparable to published figures "
                   "(use --normalization none, the CIFAR convention)")
    if table == "imagecorruptions" and normalization == "alexnet":
        out.append("warning: table imagecorruptions is the package's variant, not the released ImageNet-C "
                   "(AlexNet's errors belong to imagenet_c); its mCE is close to, not equal to, published figures")
    return out


def default_normalization(table: str) -> str:
    """``alexnet`` for the two ImageNet tables, ``none`` (the CIFAR convention) otherwise."""
    return "alexnet" if table in ("imagenet_c", "imagecorruptions", "imagenet") else "none"
