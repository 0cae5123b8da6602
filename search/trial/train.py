"""One trial, start to end: the Ray Tune function trainable of a search.

``train_trial(config, context)`` turns the sampled flat dict into a frozen :class:`TrialSpec` and
builds everything from it: the model (``timm.create_model``), the optimiser and schedule (timm's
factories), the loss ``CE + lambda * ADL``. It trains, reporting each epoch with a checkpoint that
carries the spec and the judging settings (so a trial resumes from ``get_checkpoint()`` and a model can be rebuilt from a
checkpoint alone), then judges the model on the search's shared corrupted test set and reports the
flat robustness report with every objective. A NaN loss or an exception in this code ends the trial
as failed with its reason (the search goes on); Ray's own errors (a lost node) are left to Ray's
retries.
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import torch
from ray import tune

from search.trial import protocol
from search.trial.augment import augment
from search.trial.build import build_model, build_optimisation
from search.trial.checkpoint import read_meta, read_tensors, save_checkpoint
from search.trial.context import TrialContext, judge, judging_set, load_data
from search.trial.recipe import Recipe
from search.trial.rung_set import rung_judging_set
from search.trial.rungs import RUNG_TOTAL_TIME, rung_result
from search.trial.spec import TrialSpec
from search.trial.threads import TrialThreads


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


# ---- the trainable --------------------------------------------------------------------------------------
def train_trial(config: dict[str, Any], context: TrialContext, data: tuple[Any, Any] | None = None) -> None:
    """Ray Tune function trainable: train, report each epoch with a checkpoint, judge, report.

    ``data``: the (train, test) sets as the driver loaded them; without, the trial loads them."""
    started, cpu_started = time.monotonic(), time.process_time()  # the trial's own wall and CPU time
    torch.set_num_threads(context.runtime.torch_threads)
    threads = TrialThreads(context.runtime.threads_path, tune.get_context().get_trial_id(),
                           context.runtime.torch_threads)
    try:
        spec = TrialSpec.from_flat_dict(dict(config))
        run = _Run(spec, context, threads, data)
        resumed = run.restore(tune.get_checkpoint())
    except Exception as err:  # a bad config or data: the trial fails, the search goes on
        _report_failure(err)
        return
    if resumed and run.final is not None:
        tune.report(run.final)  # judged before an interruption: nothing to redo
        return
    for epoch in range(run.epoch + 1, spec.train.epochs + 1):
        try:
            metrics = run.train_epoch(epoch)
            if epoch in context.rungs:  # a rung of MO-ASHA: every objective, on the rung set
                metrics.update(run.judge_rung())
        except Exception as err:
            _report_failure(err, epoch)
            return
        with tempfile.TemporaryDirectory(prefix="trial-ckpt-") as tmp:
            run.save(tmp)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
    try:
        final = run.judge(trial_time_s=time.monotonic() - started, trial_cpu_s=time.process_time() - cpu_started)
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

    def __init__(self, spec: TrialSpec, ctx: TrialContext, threads: TrialThreads | None = None,
                 data: tuple[Any, Any] | None = None) -> None:
        self.spec, self.ctx = spec, ctx
        self.threads = threads or TrialThreads(None, None, ctx.runtime.torch_threads)
        self.device = torch.device("cuda" if ctx.runtime.use_gpu and torch.cuda.is_available() else "cpu")
        torch.manual_seed(spec.train.seed)
        self.train_set, self.test_set = data if data is not None else load_data(ctx)
        self.corrupted = judging_set(ctx, self.test_set)
        self.rung_set = rung_judging_set(ctx, self.corrupted) if ctx.rungs else None
        self.model = build_model(spec).to(self.device)
        if spec.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.recipe = Recipe(spec.train, self.model, self.device, spec.model.num_classes)
        # The compiled module trains; the plain one holds the weights that are saved (same tensors).
        self.forward_model = torch.compile(self.model) if spec.train.compile else self.model
        self.steps_per_epoch = max(1, math.ceil(len(self.train_set) / spec.train.batch_size))
        self.optimizer, self.scheduler = build_optimisation(spec, self.model, self.steps_per_epoch)
        self.epoch = 0  # epochs done
        self.train_time_s = 0.0
        self.rung_time_s = 0.0  # judging at rungs, all rungs together
        self.last: dict[str, float] = {}
        self.final: dict[str, Any] | None = None

    # ---- checkpoints ----
    def save(self, directory: str) -> None:
        tensors = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.recipe.ema.state_dict() if self.recipe.ema is not None else None,
            "scaler": self.recipe.scaler.state_dict() if self.recipe.scaler is not None else None,
        }
        progress = {"epoch": self.epoch, "train_time_s": self.train_time_s, "last": self.last, "final": self.final,
                    "rung_time_s": self.rung_time_s}
        save_checkpoint(directory, self.spec, self.ctx.judging(), tensors, progress)

    def restore(self, checkpoint: tune.Checkpoint | None) -> bool:
        if checkpoint is None:
            return False
        with checkpoint.as_directory() as directory:
            meta, tensors = read_meta(directory), read_tensors(directory, map_location=self.device)
        self.model.load_state_dict(tensors["model"])
        self.optimizer.load_state_dict(tensors["optimizer"])
        if self.scheduler is not None and tensors["scheduler"] is not None:
            self.scheduler.load_state_dict(tensors["scheduler"])
        if self.recipe.ema is not None and tensors.get("ema") is not None:
            self.recipe.ema.load_state_dict(tensors["ema"])
        if self.recipe.scaler is not None and tensors.get("scaler") is not None:
            self.recipe.scaler.load_state_dict(tensors["scaler"])
        self.epoch, self.train_time_s = meta["epoch"], meta["train_time_s"]
        self.last, self.final = meta["last"], meta["final"]
        self.rung_time_s = float(meta.get("rung_time_s", 0.0))
        return True

    # ---- training ----
    def _loader(self, epoch: int) -> torch.utils.data.DataLoader:
        # A generator per epoch: the same shuffle whether or not the trial was resumed.
        g = torch.Generator().manual_seed(self.spec.train.seed * 100_003 + epoch)
        workers = self.ctx.data.num_workers
        return torch.utils.data.DataLoader(
            self.train_set, batch_size=self.spec.train.batch_size, shuffle=True, generator=g,
            num_workers=workers, drop_last=False, pin_memory=self.device.type == "cuda",
            persistent_workers=False,  # a loader per epoch (its own shuffle): its workers end with it
        )

    def train_epoch(self, epoch: int) -> dict[str, float]:
        from components.adl import attention_diversification_loss
        from evaluation.data import normalize

        train, model, recipe = self.spec.train, self.forward_model, self.recipe
        t0 = time.monotonic()
        model.train()
        aug_gen = torch.Generator().manual_seed(train.seed * 100_019 + epoch)
        loss_sum, correct, seen = 0.0, 0, 0
        for step, (images, labels) in enumerate(self._loader(epoch)):
            self.threads.poll()
            images = augment(images, train.augmentation, aug_gen)  # (B, 3, H, W) in [0, 1]
            hard = labels.to(self.device)
            images, targets = recipe.inputs(images, labels)  # targets: Mixup's soft ones when mixing
            x = recipe.erase(normalize(images))
            with recipe.autocast():
                if self.spec.uses_adl:
                    logits, maps = model.forward_with_attention(x)  # maps: (B, heads, N, N) per block
                    loss = recipe.loss(logits, targets)
                    loss = loss + train.adl_weight * attention_diversification_loss(maps, threshold=train.adl_threshold)
                else:
                    logits = model(x)
                    loss = recipe.loss(logits, targets)
            if not torch.isfinite(loss):
                raise TrialDiverged(f"the loss is {loss.item()} at epoch {epoch}, step {step + 1}")
            global_step = (epoch - 1) * self.steps_per_epoch + step + 1
            recipe.step(loss, self.model, self.optimizer, train.grad_clip, global_step)
            if self.scheduler is not None:
                self.scheduler.step_update(global_step)
            loss_sum += loss.item() * labels.numel()
            correct += int((logits.argmax(-1) == hard).sum())
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

        model = self.judged.eval()
        n = len(self.test_set)
        loader = torch.utils.data.DataLoader(self.test_set, batch_size=self.ctx.eval.batch_size)
        correct = 0
        for images, labels in loader:
            logits = model(normalize(images.to(self.device)))
            correct += int((logits.argmax(-1).cpu() == labels).sum())
        return 100.0 * correct / max(n, 1)

    # ---- judging ----
    @property
    def judged(self) -> torch.nn.Module:
        """The weights the trial is judged with: the EMA's when the spec keeps one, else the model's."""
        return self.recipe.judged_model(self.model)

    def judge_rung(self) -> dict[str, float]:
        """The rung report: every metric of :func:`judge` on the rung set, under ``rung/<metric>``."""
        t0 = time.monotonic()
        self.threads.poll(force=True)
        report = judge(self.judged, self.ctx, self.test_set, self.rung_set, device=str(self.device))
        seconds = time.monotonic() - t0
        self.rung_time_s += seconds
        return rung_result(report.to_flat_dict(), {**self.last, "params_m": self._params_m(),
                                                   "train_time_s": self.train_time_s}, seconds)

    def _params_m(self) -> float:
        return sum(p.numel() for p in self.model.parameters()) / 1e6

    def judge(self, trial_time_s: float, trial_cpu_s: float = 0.0) -> dict[str, Any]:
        t0, cpu0 = time.monotonic(), time.process_time()
        self.threads.poll(force=True)
        report = judge(self.judged.eval(), self.ctx, self.test_set, self.corrupted, device=str(self.device))
        judge_time = time.monotonic() - t0
        final: dict[str, Any] = {k: float(v) for k, v in report.to_flat_dict().items()}
        final.update({
            protocol.EPOCH: self.epoch,
            "train_loss": self.last.get("train_loss", math.nan),
            "train_accuracy": self.last.get("train_accuracy", math.nan),
            "params_m": self._params_m(),
            "train_time_s": self.train_time_s,
            "judge_time_s": judge_time,
            "judge_threads": torch.get_num_threads(),  # above cpus_per_trial when it had idle cores
            "trial_time_s": trial_time_s + judge_time,
            # CPU seconds of this trial's process (all its threads) while it built, trained and judged.
            "trial_cpu_s": trial_cpu_s + time.process_time() - cpu0,
            protocol.JUDGED: 1,
            protocol.FULL_BUDGET: int(self.epoch >= self.spec.train.epochs),
        })
        if self.ctx.rungs:
            final[RUNG_TOTAL_TIME] = self.rung_time_s
        self.final = final
        return final
