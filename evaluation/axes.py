"""The robustness axes of the seeds beyond corruptions: adversarial, lesion, distribution shift.

Every function takes a model that maps *normalised* images to logits (like
:func:`evaluation.report.evaluate`) and returns accuracies in percent; :func:`judge_axes` runs the
ones a search's ``eval`` section asks for and returns flat metric names:

* ``adv_accuracy/fgsm``, ``adv_accuracy/pgd``: accuracy under an L-infinity attack in pixel
  space (before normalisation, images kept in [0, 1]) on a seeded subset of the clean test set
  (seed 002, section 3.5). FGSM: one step of size epsilon. PGD: a random start uniform in the
  epsilon ball (seeded), ``steps`` steps of size ``2.5 epsilon / steps`` (Madry et al.), each
  projected back. The same algorithm as torchattacks' ``FGSM`` / ``PGD`` (checked in the tests);
  written here in a few lines so the random start is seeded by the search and no dependency is
  added at run time.
* ``lesion_accuracy/mean``, ``lesion_accuracy/worst``: accuracy with one token block skipped (the
  block returns its input: both residual branches removed), for each block in turn (seed 002,
  section 4); the curve over blocks is ``curves["lesion_accuracy"]``.
* ``shift_accuracy/<name>``: accuracy on a distribution-shift set (:mod:`evaluation.data.shifts`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from evaluation.data import normalize
from evaluation.data.shifts import SHIFT_SETS

ATTACKS = ("fgsm", "pgd")


def _items(dataset: Dataset, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from evaluation.report import _clean_items

    return _clean_items(dataset, positions)


def seeded_positions(n: int, size: int | None, seed: int) -> torch.Tensor:
    """``size`` of ``n`` positions chosen with ``seed`` (sorted); all when ``size`` is None or >= n."""
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:size].sort().values


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, kind: str, epsilon: float, steps: int = 10,
           step_size: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial images for ``x`` (B, 3, H, W) in [0, 1]: FGSM or PGD under ||delta||_inf <= epsilon."""
    if kind not in ATTACKS:
        raise ValueError(f"unknown attack {kind!r}; valid attacks: {list(ATTACKS)}")
    x = x.detach()

    def grad_sign(adv: torch.Tensor) -> torch.Tensor:
        adv = adv.clone().requires_grad_(True)
        loss = F.cross_entropy(model(normalize(adv)), y)
        (g,) = torch.autograd.grad(loss, adv)
        return g.sign()

    if kind == "fgsm":
        return (x + epsilon * grad_sign(x)).clamp(0, 1).detach()
    alpha = 2.5 * epsilon / steps if step_size is None else step_size
    adv = x + torch.empty_like(x).uniform_(-epsilon, epsilon, generator=generator)
    adv = adv.clamp(0, 1)
    for _ in range(steps):
        adv = adv + alpha * grad_sign(adv)
        adv = (x + (adv - x).clamp(-epsilon, epsilon)).clamp(0, 1).detach()
    return adv


def adversarial_accuracy(model: nn.Module, dataset: Dataset, *, kind: str, epsilon: float, steps: int = 10,
                         subset: int | None = 256, seed: int = 0, batch_size: int = 64,
                         device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy (%) under :func:`attack` on a seeded subset of ``dataset``."""
    model = model.to(device).eval()
    pos = seeded_positions(len(dataset), subset, seed)
    g = torch.Generator(device=device).manual_seed(int(seed))
    correct = 0
    for start in range(0, len(pos), batch_size):
        x, y = _items(dataset, pos[start:start + batch_size])
        x, y = x.to(device), y.to(device)
        adv = attack(model, x, y, kind=kind, epsilon=epsilon, steps=steps, generator=g)
        with torch.no_grad():
            correct += int((model(normalize(adv)).argmax(-1) == y).sum())
    return 100.0 * correct / max(1, len(pos))


def token_blocks(model: nn.Module) -> Sequence[nn.Module]:
    """The model's token blocks (``model.blocks``, as in timm's ViTs and the zoo)."""
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, (nn.Sequential, nn.ModuleList)) or len(blocks) == 0:
        raise ValueError(f"lesion robustness needs a model with token blocks in model.blocks; "
                         f"{type(model).__name__} has none")
    return blocks


@contextlib.contextmanager
def skipped(block: nn.Module):
    """Within the context, ``block`` returns its input unchanged (its residual branches removed)."""
    handle = block.register_forward_hook(lambda module, args, out: args[0] if isinstance(out, torch.Tensor) else out)
    try:
        yield
    finally:
        handle.remove()


def accuracy(model: nn.Module, dataset: Dataset, *, positions: torch.Tensor | None = None,
             class_subset: torch.Tensor | None = None, batch_size: int = 256,
             device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy (%) on ``dataset`` (at ``positions``); with ``class_subset``, the prediction is
    the best of those classes only."""
    model = model.to(device).eval()
    pos = torch.arange(len(dataset)) if positions is None else positions
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(pos), batch_size):
            x, y = _items(dataset, pos[start:start + batch_size])
            logits = model(normalize(x.to(device))).cpu()
            if class_subset is not None:
                pred = class_subset[logits[:, class_subset].argmax(-1)]
            else:
                pred = logits.argmax(-1)
            correct += int((pred == y).sum())
    return 100.0 * correct / max(1, len(pos))


def lesion_curve(model: nn.Module, dataset: Dataset, *, positions: torch.Tensor | None = None,
                 batch_size: int = 256, device: str | torch.device = "cpu") -> list[float]:
    """Accuracy (%) with block i skipped, for every token block i."""
    out = []
    for block in token_blocks(model):
        with skipped(block):
            out.append(accuracy(model, dataset, positions=positions, batch_size=batch_size, device=device))
    return out


def judge_axes(model: nn.Module, clean: Dataset, *, attacks: Sequence[str] = (), epsilon: float = 1 / 255,
               steps: int = 10, adv_subset: int | None = 256, lesion: bool = False,
               shift_sets: Mapping[str, str] | None = None, image_size: int = 32, seed: int = 0,
               batch_size: int = 256, device: str | torch.device = "cpu",
               positions: torch.Tensor | None = None) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The axes asked for: ``(metrics, curves)`` with the names of the module docstring.

    ``positions``: the clean images the lesion sweep uses (the corrupted set's, so a subset judges
    every axis on the same images); attacks use their own seeded ``adv_subset``.
    """
    from evaluation.data.shifts import load_shift_set

    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attacks {unknown}; valid attacks: {list(ATTACKS)}")
    metrics: dict[str, float] = {}
    curves: dict[str, list[float]] = {}
    for kind in attacks:
        metrics[f"adv_accuracy/{kind}"] = adversarial_accuracy(
            model, clean, kind=kind, epsilon=epsilon, steps=steps, subset=adv_subset, seed=seed,
            batch_size=min(batch_size, 64), device=device)
    if lesion:
        curve = lesion_curve(model, clean, positions=positions, batch_size=batch_size, device=device)
        curves["lesion_accuracy"] = curve
        metrics["lesion_accuracy/mean"] = sum(curve) / len(curve)
        metrics["lesion_accuracy/worst"] = min(curve)
    for name, path in (shift_sets or {}).items():
        shift = load_shift_set(name, path, image_size=image_size, num_classes=clean.num_classes,
                               classes=getattr(clean, "classes", None))
        metrics[f"shift_accuracy/{name}"] = accuracy(model, shift.dataset, class_subset=shift.class_subset,
                                                     batch_size=batch_size, device=device)
    return metrics, curves


AXIS_METRICS = (*(f"adv_accuracy/{a}" for a in ATTACKS), "lesion_accuracy/mean", "lesion_accuracy/worst",
                *(f"shift_accuracy/{n}" for n in SHIFT_SETS))
"""Every metric name :func:`judge_axes` can report (valid objective names)."""
