"""Robustness metrics as pure functions of error rates (percent) and attention maps.

Definitions (docs/evaluation.md, Metrics); errors ``E(c, s)`` are in percent (100 - accuracy):

* CE (normalised by a baseline ``B``): ``CE_c = sum_s E(c, s) / sum_s B(c, s)`` x 100. When only
  averages over the 5 severities are known for the baseline (AlexNet's published numbers), the
  denominator is ``len(severities) * B_mean(c)``: exact for all 5 severities, the natural
  approximation for a subset.
* mCE: mean of CE_c over the corruptions that have a baseline value.
* relative CE: ``sum_s (E(c, s) - E_clean) / sum_s (B(c, s) - B_clean)`` x 100; relative mCE its mean.
* With ``normalization="none"`` (the CIFAR convention) CE_c is the unnormalised mean error
  ``mean_s E(c, s)`` and relative CE is ``mean_s (E(c, s) - E_clean)``.
* mean corruption error: ``100 - mean accuracy over all evaluated corruptions and severities``.
* retention: ``corrupted accuracy / clean accuracy`` x 100 (FAN's R, in percent).
* attention stability: cosine between the attention rows of a clean image and of its corrupted
  copy, averaged over rows, heads, layers (and images).
* head diversity: mean pairwise cosine between the heads' attention maps of one layer, averaged
  over head pairs, layers (and images); lower is more diverse.

Baseline file (``normalization=<path>``), errors in percent:

* JSON: ``{"clean": 43.45, "errors": {"gaussian_noise": 88.6, "fog": [70.1, 75.2, 80.3, 86.0, 90.1]}}``
  (a number = mean over the 5 severities; a list = severities 1..5; ``"clean"`` optional, needed
  for relative mCE);
* CSV with header ``corruption,severity,error``: severity ``1``..``5`` or ``mean``; the row
  ``clean,,43.45`` (or corruption ``clean``) gives the clean error.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

# AlexNet top-1 errors on ImageNet-C averaged over the 5 severities (fractions x 100).
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 88.6428, "shot_noise": 89.4468, "impulse_noise": 92.2640,
    "defocus_blur": 81.9880, "glass_blur": 82.6268, "motion_blur": 78.5948, "zoom_blur": 79.8360,
    "snow": 86.6816, "frost": 82.6572, "fog": 81.9324, "brightness": 56.4592,
    "contrast": 85.3204, "elastic_transform": 64.6056, "pixelate": 71.7840, "jpeg_compression": 60.6500,
}
# AlexNet's clean top-1 error on ImageNet, the denominator offset of relative mCE (43.45 % as used
# in public ImageNet-C evaluation code; torchvision's AlexNet measures 43.48 %).
ALEXNET_CLEAN_ERROR = 43.45


@dataclass(frozen=True)
class Baseline:
    """Per-corruption baseline errors (percent): ``errors[c]`` is a mean or a 5-tuple by severity."""

    name: str
    errors: Mapping[str, float | tuple[float, ...]]
    clean: float | None = None

    def total(self, corruption: str, severities: Sequence[int]) -> float | None:
        """``sum_s B(c, s)`` over ``severities``; ``None`` when the baseline lacks the corruption."""
        e = self.errors.get(corruption)
        if e is None:
            return None
        if isinstance(e, (tuple, list)):
            return float(sum(e[s - 1] for s in severities))
        return float(e) * len(severities)


ALEXNET = Baseline("alexnet", ALEXNET_ERRORS, ALEXNET_CLEAN_ERROR)


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file (JSON or CSV, see the module docstring); ``ValueError`` if malformed."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"baseline file {p} does not exist")
    fmt = ('expected JSON {"clean": 43.5, "errors": {"<corruption>": <mean> or [e1..e5]}} or CSV '
           "with header corruption,severity,error (severity 1-5 or mean; a 'clean' row)")
    errors: dict[str, float | tuple[float, ...]] = {}
    clean = None
    try:
        if p.suffix.lower() == ".json":
            blob = json.loads(p.read_text())
            clean = None if blob.get("clean") is None else float(blob["clean"])
            for c, v in blob["errors"].items():
                if isinstance(v, list):
                    if len(v) != 5:
                        raise ValueError(f"{c}: a list needs 5 values (severities 1..5)")
                    errors[c] = tuple(float(x) for x in v)
                else:
                    errors[c] = float(v)
        elif p.suffix.lower() == ".csv":
            per: dict[str, dict[int, float]] = {}
            with open(p, newline="") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is None or not {"corruption", "severity", "error"} <= set(reader.fieldnames):
                    raise ValueError("missing header corruption,severity,error")
                for row in reader:
                    c, s, e = row["corruption"].strip(), (row["severity"] or "").strip(), float(row["error"])
                    if c == "clean":
                        clean = e
                    elif s in ("", "mean"):
                        errors[c] = e
                    else:
                        per.setdefault(c, {})[int(s)] = e
            for c, d in per.items():
                if sorted(d) != [1, 2, 3, 4, 5]:
                    raise ValueError(f"{c}: per-severity rows need severities 1..5, got {sorted(d)}")
                errors[c] = tuple(d[s] for s in range(1, 6))
        else:
            raise ValueError("unknown extension (use .json or .csv)")
    except (KeyError, TypeError, json.JSONDecodeError, ValueError) as err:
        raise ValueError(f"malformed baseline file {p}: {err}; {fmt}") from err
    if not errors:
        raise ValueError(f"baseline file {p} has no corruption errors; {fmt}")
    return Baseline(p.stem, errors, clean)


@dataclass
class CorruptionSummary:
    """CE per corruption and the averages, from :func:`summarize_errors`."""

    ce: dict[str, float] = field(default_factory=dict)
    relative_ce: dict[str, float] = field(default_factory=dict)
    mce: float = math.nan
    relative_mce: float = math.nan
    mean_corruption_error: float = math.nan
    corrupted_accuracy: float = math.nan
    retention: float = math.nan


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def summarize_errors(errors: Mapping[str, Mapping[int, float]], clean_error: float,
                     baseline: Baseline | None) -> CorruptionSummary:
    """CE, mCE, relative mCE, mean corruption error and retention from errors in percent.

    ``errors[c][s]`` is the error at corruption c, severity s; ``baseline=None`` is the
    unnormalised (CIFAR) convention.
    """
    out = CorruptionSummary()
    for c, by_sev in errors.items():
        sevs = sorted(by_sev)
        total = sum(by_sev[s] for s in sevs)
        if baseline is None:
            out.ce[c] = total / len(sevs)
            out.relative_ce[c] = (total - clean_error * len(sevs)) / len(sevs)
            continue
        base = baseline.total(c, sevs)
        if base is None:
            continue  # no normaliser for this corruption (e.g. the 4 extra ones for AlexNet)
        out.ce[c] = 100.0 * total / base
        if baseline.clean is not None:
            denom = base - baseline.clean * len(sevs)
            out.relative_ce[c] = 100.0 * (total - clean_error * len(sevs)) / denom
    out.mce = _mean(out.ce.values())
    out.relative_mce = _mean(out.relative_ce.values())
    all_errors = [e for by_sev in errors.values() for e in by_sev.values()]
    out.mean_corruption_error = _mean(all_errors)
    out.corrupted_accuracy = 100.0 - out.mean_corruption_error
    clean_acc = 100.0 - clean_error
    out.retention = 100.0 * out.corrupted_accuracy / clean_acc if clean_acc > 0 else math.nan
    return out


def _row_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # cosine along the last axis, broadcasting the leading axes (no copies of the larger input)
    dot = (a * b).sum(-1)
    return dot / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)


def attention_stability(clean_maps: Sequence[torch.Tensor], corrupted_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image stability: cosine of matching attention rows, averaged over rows, heads, layers.

    Each map is (..., B, heads, N, N) post-softmax; clean and corrupted lists pair layer by layer and
    their leading axes broadcast (e.g. clean (B, h, N, N) against corrupted (G, B, h, N, N) gives
    (G, B)).
    """
    if len(clean_maps) != len(corrupted_maps) or not clean_maps:
        raise ValueError(f"need the same, non-zero number of layers, got {len(clean_maps)} and {len(corrupted_maps)}")
    per_layer = [_row_cosine(a.float(), b.float()).mean(dim=(-2, -1))
                 for a, b in zip(clean_maps, corrupted_maps, strict=True)]
    return torch.stack(per_layer).mean(dim=0)


def head_diversity(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image head similarity (B,): mean pairwise cosine between the heads' flattened maps,
    averaged over head pairs and layers (lower = more diverse). Layers with one head are skipped."""
    per_layer = []
    for a in maps:
        b, h = a.shape[:2]
        if h < 2:
            continue
        flat = torch.nn.functional.normalize(a.float().reshape(b, h, -1), dim=-1, eps=1e-12)
        sim = flat @ flat.transpose(1, 2)  # (B, h, h)
        iu = torch.triu_indices(h, h, offset=1)
        per_layer.append(sim[:, iu[0], iu[1]].mean(dim=1))
    if not per_layer:
        return torch.full((maps[0].shape[0],) if maps else (0,), math.nan)
    return torch.stack(per_layer).mean(dim=0)
