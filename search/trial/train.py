"""One trial, start to end: the Ray Tune function trainable of a search.

``train_trial(config, context)`` turns the sampled flat dict into a frozen :class:`TrialConfig` and
builds everything from it: the model (``timm.create_model``), the optimiser and schedule (timm's
factories), the loss ``CE + lambda * ADL``. It trains, reporting each epoch with a checkpoint that
carries the config (so a trial resumes from ``get_checkpoint()`` and a model can be rebuilt from a
checkpoint alone), then judges the model on the search's shared corrupted test set and reports the
flat robustness report with every objective. A NaN loss or an exception in this code ends the trial
as failed with its reason (the search goes on); Ray's own errors (a lost node) are left to Ray's
retries.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from ray import tune

from search.trial import protocol
from search.trial.augment import augment
from search.trial.spec import TrialConfig
from search.trial.threads import TrialThreads

CHECKPOINT_FILE = "trial.pt"


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a search shares: the data and the judging set-up (not searched)."""

    dataset: str
    path: str | None
    image_size: int
    train_split: str
    test_split: str
    train_subset: int | None
    test_subset: int | None
    num_workers: int
    data_seed: int
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    table: str
    normalization: str
    eval_subset: int | None
    eval_seed: int
    eval_batch_size: int
    backend: str
    cache_dir: str
    use_gpu: bool
    torch_threads: int
    benchmark_path: str | None = None  # a pre-made benchmark folder instead of corrupting the test set
    corrupted_path: str | None = None  # the cache file the driver built (None: build or find it)
    threads_path: str | None = None  # the share of idle CPUs (search.tune.cores; None: own threads only)

    @classmethod
    def for_space(cls, space: Any) -> TrialContext:
        data, ev, res = space.data, space.eval, space.resources
        path = str(Path(data["path"]).expanduser().resolve()) if data["path"] else None
        return cls(
            dataset=data["dataset"], path=path, image_size=data["image_size"],
            train_split=data["train_split"], test_split=data["test_split"],
            train_subset=data["train_subset"], test_subset=data["test_subset"], num_workers=data["num_workers"],
            data_seed=space.search["seed"], corruptions=tuple(ev["corruptions"]), severities=tuple(ev["severities"]),
            table=space.corruption_table, normalization=_absolute_if_file(ev["normalization"]), eval_subset=ev["subset"],
            eval_seed=ev["seed"], eval_batch_size=ev["batch_size"], backend=ev["backend"],
            cache_dir=str(Path(ev["cache_dir"]).expanduser().resolve()),
            use_gpu=res["gpus_per_trial"] > 0, torch_threads=max(1, int(res["cpus_per_trial"])),
            benchmark_path=str(Path(ev["benchmark_path"]).expanduser().resolve()) if ev["benchmark_path"] else None,
        )


def _absolute_if_file(normalization: str) -> str:
    """A baseline file's path made absolute (trials may run in another working directory)."""
    if normalization.lower().endswith((".json", ".csv")):
        return str(Path(normalization).expanduser().resolve())
    return normalization


# ---- data and the judging set (shared by the driver, which builds the cache, and the trials) ----------
def load_data(ctx: TrialContext) -> tuple[Any, Any]:
    """The train and test data sets of the search."""
    from evaluation.data import load_dataset

    common = dict(path=ctx.path, image_size=ctx.image_size, seed=ctx.data_seed)
    train = load_dataset(ctx.dataset, ctx.train_split, subset=ctx.train_subset, **common)
    test = load_dataset(ctx.dataset, ctx.test_split, subset=ctx.test_subset, **common)
    return train, test


def judging_set(ctx: TrialContext, test: Any, progress: bool = False) -> Any:
    """The cached corrupted test set: built once by the driver, read from the cache by every trial.

    A trial on a node that cannot see the driver's cache file builds the same set again (a pure
    function of its inputs, stored under the same content hash).
    """
    from evaluation.corrupted_set import build_corrupted_set, load_cached

    if ctx.benchmark_path:
        from evaluation.data.corrupted_benchmarks import load_corrupted_benchmark

        return load_corrupted_benchmark(
            ctx.benchmark_path, corruptions=list(ctx.corruptions), severities=list(ctx.severities),
            image_size=ctx.image_size, subset=ctx.eval_subset, seed=ctx.eval_seed,
        )
    if ctx.corrupted_path and Path(ctx.corrupted_path).is_file():
        return load_cached(ctx.corrupted_path)
    return build_corrupted_set(
        test, corruptions=list(ctx.corruptions), severities=list(ctx.severities), table=ctx.table,
        seed=ctx.eval_seed, subset=ctx.eval_subset, cache_dir=ctx.cache_dir, backend=ctx.backend,
        progress=progress,
    )


def prepare(ctx: TrialContext, progress: bool = False) -> tuple[TrialContext, int]:
    """In the driver, before any trial: load the data and build the corrupted set's cache.

    Returns the context with the cache file's path (what trials read) and the number of classes.
    """
    train, test = load_data(ctx)
    return with_judging_set(ctx, judging_set(ctx, test, progress=progress)), int(train.num_classes)


def with_judging_set(ctx: TrialContext, corrupted: Any) -> TrialContext:
    """The context that points trials at the cache file of ``corrupted`` (when it has one)."""
    path = getattr(corrupted, "path", None)
    return dataclasses.replace(ctx, corrupted_path=str(path) if path else None)


# ---- building from a config ---------------------------------------------------------------------------
def build_model(cfg: TrialConfig) -> torch.nn.Module:
    """``timm.create_model(cfg.model_name, **cfg.model_kwargs())`` with the zoo registered."""
    import timm

    import components  # noqa: F401  (registers the zoo with timm)

    return timm.create_model(cfg.model_name, **cfg.model_kwargs())


def build_optimisation(cfg: TrialConfig, model: torch.nn.Module, steps_per_epoch: int):
    """The optimiser and the epoch-stepped schedule (None for a constant learning rate), from timm."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    optimizer = create_optimizer_v2(model, **cfg.optimizer_kwargs())
    if cfg.scheduler == "none":
        return optimizer, None
    scheduler, _ = create_scheduler_v2(
        optimizer, sched=cfg.scheduler, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
        min_lr=cfg.min_lr, warmup_lr=cfg.min_lr, decay_epochs=max(1, cfg.epochs // 3),
        decay_milestones=[max(1, cfg.epochs // 2), max(1, 3 * cfg.epochs // 4)], plateau_mode="max",
        updates_per_epoch=steps_per_epoch,
    )
    return optimizer, scheduler


def load_trial_checkpoint(directory: str | os.PathLike) -> tuple[TrialConfig, torch.nn.Module, dict[str, Any]]:
    """Rebuild a trial's model from its checkpoint folder alone: (config, model with weights, state)."""
    state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    cfg = TrialConfig.from_flat_dict(state["config"])
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    return cfg, model, state


# ---- the trainable --------------------------------------------------------------------------------------
def train_trial(config: dict[str, Any], context: TrialContext, data: tuple[Any, Any] | None = None) -> None:
    """Ray Tune function trainable: train, report each epoch with a checkpoint, judge, report.

    ``data``: the (train, test) sets as the driver loaded them; without, the trial loads them."""
    started = time.monotonic()
    torch.set_num_threads(context.torch_threads)
    threads = TrialThreads(context.threads_path, tune.get_context().get_trial_id(), context.torch_threads)
    try:
        cfg = TrialConfig.from_flat_dict(dict(config))
        run = _Run(cfg, context, threads, data)
        resumed = run.restore(tune.get_checkpoint())
    except Exception as err:  # a bad config or data: the trial fails, the search goes on
        _report_failure(err)
        return
    if resumed and run.final is not None:
        tune.report(run.final)  # judged before an interruption: nothing to redo
        return
    for epoch in range(run.epoch + 1, cfg.epochs + 1):
        try:
            metrics = run.train_epoch(epoch)
        except Exception as err:
            _report_failure(err, epoch)
            return
        with tempfile.TemporaryDirectory(prefix="trial-ckpt-") as tmp:
            run.save(tmp)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
    try:
        final = run.judge(trial_time_s=time.monotonic() - started)
    except Exception as err:
        _report_failure(err)
        return
    with tempfile.TemporaryDirectory(prefix="trial-ckpt-") as tmp:
        run.save(tmp)
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(tmp))


def _report_failure(err: BaseException, epoch: int | None = None) -> None:
    reason = f"{type(err).__name__}: {err}"
    result = {protocol.FAILED: 1, protocol.ERROR: reason}
    if epoch is not None:
        result[protocol.EPOCH] = epoch
    tune.report(result)


class _Run:
    """The state of one trial's training: model, optimiser, schedule, data, counters."""

    def __init__(self, cfg: TrialConfig, ctx: TrialContext, threads: TrialThreads | None = None,
                 data: tuple[Any, Any] | None = None) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.threads = threads or TrialThreads(None, None, ctx.torch_threads)
        self.device = torch.device("cuda" if ctx.use_gpu and torch.cuda.is_available() else "cpu")
        torch.manual_seed(cfg.seed)
        self.train_set, self.test_set = data if data is not None else load_data(ctx)
        self.corrupted = judging_set(ctx, self.test_set)
        self.model = build_model(cfg).to(self.device)
        self.steps_per_epoch = max(1, math.ceil(len(self.train_set) / cfg.batch_size))
        self.optimizer, self.scheduler = build_optimisation(cfg, self.model, self.steps_per_epoch)
        self.epoch = 0  # epochs done
        self.train_time_s = 0.0
        self.last: dict[str, float] = {}
        self.final: dict[str, Any] | None = None

    # ---- checkpoints ----
    def save(self, directory: str) -> None:
        torch.save(
            {
                "config": self.cfg.to_flat_dict(),
                "model_name": self.cfg.model_name,
                "model_kwargs": self.cfg.model_kwargs(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "epoch": self.epoch,
                "train_time_s": self.train_time_s,
                "last": self.last,
                "final": self.final,
            },
            Path(directory) / CHECKPOINT_FILE,
        )

    def restore(self, checkpoint: tune.Checkpoint | None) -> bool:
        if checkpoint is None:
            return False
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.train_time_s = state["epoch"], state["train_time_s"]
        self.last, self.final = state["last"], state["final"]
        return True

    # ---- training ----
    def _loader(self, epoch: int) -> torch.utils.data.DataLoader:
        # A generator per epoch: the same shuffle whether or not the trial was resumed.
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        return torch.utils.data.DataLoader(
            self.train_set, batch_size=self.cfg.batch_size, shuffle=True, generator=g,
            num_workers=self.ctx.num_workers, drop_last=False,
        )

    def train_epoch(self, epoch: int) -> dict[str, float]:
        from components.adl import attention_diversification_loss
        from evaluation.data import normalize

        cfg, model = self.cfg, self.model
        t0 = time.monotonic()
        model.train()
        aug_gen = torch.Generator().manual_seed(cfg.seed * 100_019 + epoch)
        loss_sum, correct, seen = 0.0, 0, 0
        for step, (images, labels) in enumerate(self._loader(epoch)):
            self.threads.poll()
            images = augment(images, cfg.augmentation, aug_gen).to(self.device)  # (B, 3, H, W) in [0, 1]
            labels = labels.to(self.device)
            x = normalize(images)
            if cfg.adl_weight > 0:
                logits, maps = model.forward_with_attention(x)  # maps: (B, heads, N, N) per block
                loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
                loss = loss + cfg.adl_weight * attention_diversification_loss(maps, threshold=cfg.adl_threshold)
            else:
                logits = model(x)
                loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
            if not torch.isfinite(loss):
                raise TrialDiverged(f"the loss is {loss.item()} at epoch {epoch}, step {step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step_update((epoch - 1) * self.steps_per_epoch + step + 1)
            loss_sum += loss.item() * labels.numel()
            correct += int((logits.argmax(-1) == labels).sum())
            seen += labels.numel()
        clean = self.clean_accuracy()
        if self.scheduler is not None:
            self.scheduler.step(epoch, clean)
        self.epoch = epoch
        elapsed = time.monotonic() - t0
        self.train_time_s += elapsed
        self.last = {
            protocol.EPOCH: epoch,
            "train_loss": loss_sum / max(seen, 1),
            "train_accuracy": 100.0 * correct / max(seen, 1),
            "clean_accuracy": clean,
            "lr": self.optimizer.param_groups[0]["lr"],
            "epoch_time_s": elapsed,
        }
        return dict(self.last)

    @torch.no_grad()
    def clean_accuracy(self) -> float:
        """Top-1 accuracy (%) on the clean test set (as the final report measures it)."""
        from evaluation.data import normalize

        self.model.eval()
        n = len(self.test_set)
        loader = torch.utils.data.DataLoader(self.test_set, batch_size=self.ctx.eval_batch_size)
        correct = 0
        for images, labels in loader:
            logits = self.model(normalize(images.to(self.device)))
            correct += int((logits.argmax(-1).cpu() == labels).sum())
        return 100.0 * correct / max(n, 1)

    # ---- judging ----
    def judge(self, trial_time_s: float) -> dict[str, Any]:
        from evaluation.report import evaluate

        t0 = time.monotonic()
        self.threads.poll(force=True)
        self.model.eval()
        report = evaluate(
            self.model, self.test_set, self.corrupted, normalization=self.ctx.normalization,
            batch_size=self.ctx.eval_batch_size, device=str(self.device),
        )
        judge_time = time.monotonic() - t0
        final: dict[str, Any] = {k: float(v) for k, v in report.to_flat_dict().items()}
        final.update({
            protocol.EPOCH: self.epoch,
            "train_loss": self.last.get("train_loss", math.nan),
            "train_accuracy": self.last.get("train_accuracy", math.nan),
            "params_m": sum(p.numel() for p in self.model.parameters()) / 1e6,
            "train_time_s": self.train_time_s,
            "judge_time_s": judge_time,
            "judge_threads": torch.get_num_threads(),  # above cpus_per_trial when it had idle cores
            "trial_time_s": trial_time_s + judge_time,
            protocol.JUDGED: 1,
            protocol.FULL_BUDGET: int(self.epoch >= self.cfg.epochs),
        })
        self.final = final
        return final
