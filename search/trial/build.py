"""What a trial builds from its spec: the model and the optimisation (timm's factories)."""

from __future__ import annotations

import torch

from search.trial.spec import TrialSpec


def build_model(spec: TrialSpec) -> torch.nn.Module:
    """``timm.create_model(spec.model.name, **spec.model.kwargs())`` with the zoo registered."""
    import timm

    import components  # noqa: F401  (registers the zoo with timm)

    return timm.create_model(spec.model.name, **spec.model.kwargs())


def build_optimisation(spec: TrialSpec, model: torch.nn.Module, steps_per_epoch: int):
    """The optimiser and the epoch-stepped schedule (None for a constant learning rate), from timm."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    train = spec.train
    optimizer = create_optimizer_v2(model, **train.optimizer_kwargs())
    if train.scheduler == "none":
        return optimizer, None
    scheduler, _ = create_scheduler_v2(
        optimizer, sched=train.scheduler, num_epochs=train.epochs, warmup_epochs=train.warmup_epochs,
        min_lr=train.min_lr, warmup_lr=train.min_lr, decay_epochs=max(1, train.epochs // 3),
        decay_milestones=[max(1, train.epochs // 2), max(1, 3 * train.epochs // 4)], plateau_mode="max",
        updates_per_epoch=steps_per_epoch,
    )
    return optimizer, scheduler
