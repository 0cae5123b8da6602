"""How a trial's training steps run: precision, Mixup/CutMix, EMA weights, memory format, compile.

timm's own pieces where timm has them: ``timm.data.Mixup`` (mixup, cutmix and label smoothing as
soft targets) with ``timm.loss.SoftTargetCrossEntropy``, ``timm.utils.ModelEmaV3`` (an exponential
moving average of the weights, which the published recipes judge). Precision is PyTorch's
autocast: ``bf16``, or ``fp16`` with a gradient scaler; ``auto`` is bf16 on a GPU that supports it
and fp32 otherwise (CPUs train faster in fp32 with the small models this runs there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from search.trial.spec import TrainSpec

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` made concrete for ``device``: bf16 on a GPU that has it, else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


class Recipe:
    """The training-step machinery of one trial (see the module docstring).

    Args:
        train: the trial's training spec.
        model: the model (already on ``device``); the EMA copy is made from it.
        device: where the trial trains.
        num_classes: classes of the data set (Mixup's soft targets).
    """

    def __init__(self, train: TrainSpec, model: torch.nn.Module, device: torch.device, num_classes: int) -> None:
        self.precision = resolve_precision(train.precision, device)
        self.device = device
        self.label_smoothing = train.label_smoothing
        # fp16 needs the loss scaled so that small gradients do not underflow; bf16 has fp32's range.
        self.scaler = torch.amp.GradScaler(device.type) if self.precision == "fp16" else None
        self.mixup = None
        if train.mixup > 0 or train.cutmix > 0:
            from timm.data import Mixup

            self.mixup = Mixup(mixup_alpha=train.mixup, cutmix_alpha=train.cutmix,
                               label_smoothing=train.label_smoothing, num_classes=num_classes)
        self.ema = None
        if train.ema_decay is not None:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(model, decay=train.ema_decay, device=device)
        self.channels_last = train.channels_last
        self.erasing = None
        if train.random_erasing > 0:
            from timm.data.random_erasing import RandomErasing

            # On the normalised batch, as timm's loaders do: erased pixels drawn per pixel.
            self.erasing = RandomErasing(probability=train.random_erasing, mode="pixel", device=str(device))
        from timm.loss import SoftTargetCrossEntropy

        self._soft = SoftTargetCrossEntropy()

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward pass's precision (a no-op in fp32)."""
        if self.precision == "fp32":
            yield
            return
        with torch.autocast(self.device.type, dtype=DTYPES[self.precision]):
            yield

    def inputs(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch on the device in the model's memory format, and its targets: class indices, or
        Mixup's soft targets (B, classes) when mixing (an odd last batch is left unmixed)."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.mixup is not None and images.shape[0] % 2 == 0:  # timm's batch mixing pairs images
            return self.mixup(images, labels)
        return images, labels

    def erase(self, batch: torch.Tensor) -> torch.Tensor:
        """timm's RandomErasing on a normalised batch (B, 3, H, W), when the spec asks for it."""
        return self.erasing(batch) if self.erasing is not None else batch

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against class indices (with label smoothing) or soft targets."""
        logits = logits.float()  # the loss in fp32 whatever the forward's precision
        if targets.dtype.is_floating_point:
            return self._soft(logits, targets)
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)

    def step(self, loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             grad_clip: float | None, global_step: int) -> None:
        """Backward, optional clipping, the optimiser step (through the scaler in fp16) and the EMA update."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if grad_clip:
                self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        if self.ema is not None:
            self.ema.update(model, step=global_step)

    def judged_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The weights a trial is judged with: the EMA's when it keeps one (as the published recipes)."""
        return self.ema.module if self.ema is not None else model
