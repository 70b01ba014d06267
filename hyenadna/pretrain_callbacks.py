"""Lightning callbacks of a pretraining run and the curve plot written at its end.

* ``SeqLenWarmup``: the sequence-length warm-up stage (HyenaDNA §A.1: the window doubles and
  the batch halves, tokens per step constant). The batch sampler reads the same schedule, so
  the stage of a step is fixed by the step; this callback logs stage changes and the current
  length, keeps the stage in every checkpoint and, on resume, restores it after checking that
  the resumed run has the same schedule (else its data would silently change).
* ``RunControl``: writes ``last.ckpt`` every N optimizer steps, at the end, and when asked to
  stop (SIGTERM, Ctrl-C, or the ``max_time`` budget of this invocation) — always at an
  optimizer-step boundary, so a resumed run repeats nothing and skips nothing. It also logs
  the training throughput in tokens per second (validation time excluded).
* ``StderrProgressBar``: Lightning's progress bar, on stderr.
* ``plot_metrics``: the CSV logs of every invocation of a run → one PNG of the curves.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class StderrProgressBar(pl.callbacks.TQDMProgressBar):
    """Lightning's progress bar on stderr (it writes to stdout, which the CLI keeps for results).
    tqdm binds its stream when a bar is created, so redirecting stdout then is enough."""

    def init_train_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()

    def init_test_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_test_tqdm()


class SeqLenWarmup(pl.Callback):
    """Sequence-length warm-up stages as ``(first step, seq_len, global batch)`` tuples."""

    def __init__(self, stages: Sequence[tuple[int, int, int]]):
        self.stages = [tuple(s) for s in stages]
        self.stage = 0

    def stage_at(self, step: int) -> int:
        """Index of the stage optimizer step ``step`` belongs to."""
        return max(k for k, s in enumerate(self.stages) if s[0] <= step)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: dict, batch_idx: int) -> None:
        stage = self.stage_at(trainer.global_step)
        _, length, global_batch = self.stages[stage]
        assert batch["input_ids"].shape[1] == length, "batch sampler and schedule disagree"
        if stage != self.stage:
            log.info("sequence-length warm-up: step %d enters stage %d (length %d, global batch "
                     "%d)", trainer.global_step, stage, length, global_batch)
            self.stage = stage
        pl_module.log("train/seq_len", float(length))

    def state_dict(self) -> dict:
        return {"stage": self.stage, "stages": [list(s) for s in self.stages]}

    def load_state_dict(self, state_dict: dict) -> None:
        saved = [tuple(s) for s in state_dict.get("stages", [])]
        if saved and saved != self.stages:
            raise ValueError(f"the sequence-length warm-up (first step, length, batch) "
                             f"{self.stages} differs from the checkpoint's {saved}; resume with "
                             "the same data.seq_len, train.global_batch_size and "
                             "train.seqlen_warmup_stages/steps")
        self.stage = int(state_dict.get("stage", 0))


class RunControl(pl.Callback):
    """``last.ckpt`` on a step schedule, at the end and on a stop request; tokens/s.

    Args:
        path: where last.ckpt goes.
        every_n_steps: save every this many optimizer steps.
        max_time_s: wall-clock budget of this invocation in seconds (None: none).
        tokens_per_step: input tokens per optimizer step over all devices.
        window: optimizer steps the logged throughput is averaged over.
    """

    def __init__(self, path: Path, every_n_steps: int, max_time_s: float | None,
                 tokens_per_step: int, window: int = 20):
        self.path, self.every, self.max_time_s = Path(path), every_n_steps, max_time_s
        self.tokens_per_step = tokens_per_step
        self.stop_reason: str | None = None
        self._requested: str | None = None
        self._start = time.monotonic()
        self._prev: float | None = None  # end of the previous step (None: not timed)
        self._recent: deque[float] = deque(maxlen=window)
        self._timed_steps, self._timed_s = 0, 0.0
        self._saved_step = -1
        self._at_boundary = True
        self._validated_since_save = False
        self.validated_step = -1
        """Optimizer step of the last validation (-1: none yet)."""
        self.sigterm_handler = None
        """Handler to put back over Lightning's SIGTERM handler when training starts (set by
        ``pretrain._graceful_signals``; Lightning's runs collectives inside the handler)."""

    def __getstate__(self) -> dict:
        return {**self.__dict__, "sigterm_handler": None}  # ddp_spawn pickles callbacks

    @property
    def stop_requested(self) -> bool:
        return self._requested is not None

    def request_stop(self, reason: str) -> None:
        """Ask for a checkpoint and a stop at the next optimizer step (signal-handler safe)."""
        self._requested = self._requested or reason

    def mean_tokens_per_s(self) -> float | None:
        """Training tokens per second over all timed steps of this invocation."""
        return self.tokens_per_step * self._timed_steps / self._timed_s if self._timed_s else None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # (the max_time clock started with this object: start-up counts against the budget)
        self._saved_step = trainer.global_step  # a resumed run's start is already saved
        if self.sigterm_handler is not None and \
                threading.current_thread() is threading.main_thread():
            # Lightning's handler (registered just before this hook, restored after fit) would
            # broadcast between ranks from inside the handler; ours only sets a flag.
            signal.signal(signal.SIGTERM, self.sigterm_handler)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._at_boundary = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._prev = None  # the next step's time would include this validation
        self.validated_step = trainer.global_step
        self._validated_since_save = True  # ModelCheckpoint's best score changed, maybe

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs, batch, batch_idx: int) -> None:
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None and connector.received_sigterm:
            # Lightning would raise SIGTERMException after this micro-batch, maybe in the middle
            # of a gradient accumulation; take the request over and stop at the step boundary.
            connector.received_sigterm = False
            self.request_stop("SIGTERM")
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return
        self._at_boundary = True
        self._log_throughput(pl_module)
        elapsed = time.monotonic() - self._start
        timed_out = self.max_time_s is not None and elapsed >= self.max_time_s
        if trainer.strategy.reduce_boolean_decision(self.stop_requested or timed_out, all=False):
            self.stop_reason = "max_time" if timed_out and not self.stop_requested else "signal"
            log.info("stopping at step %d (%s)", trainer.global_step, self._requested or "max_time")
            self._save(trainer)
            trainer.should_stop = True
            if self.stop_reason == "signal":
                trainer.limit_val_batches = 0  # no validation pass inside a kill grace period
        elif trainer.global_step % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # also after a validation that followed the last save (a max_time stop validates after
        # saving), so a resumed run knows the best validation loss so far
        if trainer.global_step != self._saved_step or self._validated_since_save:
            self._save(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        # A second Ctrl-C, or Lightning's own SIGTERM path racing ours: save only if the state is
        # a clean step boundary and no other rank must join the (collective) save.
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and self._at_boundary \
                and trainer.world_size == 1 and trainer.global_step != self._saved_step:
            self.stop_reason = "signal"
            self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path)
        self._saved_step = trainer.global_step
        self._validated_since_save = False

    def _log_throughput(self, pl_module: pl.LightningModule) -> None:
        now = time.monotonic()
        if self._prev is not None:  # the first step after start/validation is not timed
            self._recent.append(now - self._prev)
            self._timed_steps += 1
            self._timed_s += now - self._prev
            rate = self.tokens_per_step * len(self._recent) / sum(self._recent)
            pl_module.log("train/tokens_per_s", rate)
        self._prev = now


# ------------------------------------------------------------------------------------------
# Curves: logs/version_*/metrics.csv (one version per invocation) → curves.png
# ------------------------------------------------------------------------------------------

PANELS = (("loss (nats / base)", ("train/loss", "val/loss")),
          ("next-base accuracy", ("train/accuracy", "val/accuracy")),
          ("throughput (tokens / s)", ("train/tokens_per_s",)))


def read_metrics(out_dir: Path) -> dict[str, dict[int, float]]:
    """metric → {step: value} over all invocations of a run (a later one wins a step)."""
    series: dict[str, dict[int, float]] = {}
    versions = sorted((out_dir / "logs").glob("version_*/metrics.csv"),
                      key=lambda p: int(p.parent.name.split("_")[-1]))
    for path in versions:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                step = int(float(row.get("step") or 0))
                for key, value in row.items():
                    if key not in ("step", "epoch") and value not in ("", None):
                        series.setdefault(key, {})[step] = float(value)
    return series


def plot_metrics(out_dir: str | os.PathLike,
                 stages: Sequence[tuple[int, int, int]] = ()) -> Path | None:
    """Write ``out_dir/curves.png`` (loss, accuracy, throughput against optimizer step) from
    the run's CSV logs, atomically; sequence-length warm-up ``stages`` (first step, length,
    batch) are marked. None when nothing was logged yet."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    out_dir = Path(out_dir)
    series = read_metrics(out_dir)
    if not series:
        return None
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (title, keys) in zip(fig.subplots(1, len(PANELS)), PANELS):
        plotted = [key for key in keys if series.get(key)]
        for key in plotted:
            style = "o-" if key.startswith("val/") else "-"
            ax.plot(*zip(*sorted(series[key].items())), style, label=key, markersize=3)
        for step, length, _ in stages if len(stages) > 1 else ():
            ax.axvline(step, color="grey", linestyle=":", linewidth=0.8)
            ax.annotate(f" L={length}", (step, 1), xycoords=("data", "axes fraction"),
                        fontsize=7, color="grey", va="top")
        ax.set(title=title, xlabel="optimizer step")
        if plotted:
            ax.legend(fontsize=8)
    path = out_dir / "curves.png"
    tmp = out_dir / f".curves.png.{os.getpid()}.tmp"
    try:
        fig.savefig(tmp, format="png", dpi=110)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
