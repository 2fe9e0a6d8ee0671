"""Training and evaluation on preloaded tensors: `fit`, `evaluate`, `predict`, `History`.

The loop follows the lab (Adam, cross-entropy, batch 64, validation every 500 steps) but keeps
the data as tensors on the device, accumulates accuracy and loss on the device (no per-batch
host sync, no scikit-learn), evaluates in large batches under `torch.inference_mode`, and shows
a `tqdm.auto` progress bar. Device, bfloat16 and memory-format choices are in `convcourse.hardware`.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from convcourse.budget import BUDGET_ENV, EVAL_IMAGES, step_budget
from convcourse.data import iterate_batches
from convcourse.hardware import (
    adam,
    bf16_default,
    channels_last_default,
    channels_last_grads,
    cpu_native_bf16,
    eval_batch_size,
    is_channels_last,
    resolve_device,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Evaluation", "History", "budget_slice", "evaluate", "fit", "plan_steps", "predict"]

_POSTFIX_SECONDS = 0.5  # how often the bar's loss/accuracy is read back (one host sync each time)


class Evaluation(NamedTuple):
    """Accuracy (fraction correct) and mean cross-entropy loss on one split."""

    accuracy: float
    loss: float


@dataclass
class History:
    """What one `fit` did: curves at each validation point plus run facts for tables."""

    steps: list[int] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)  # mean over the steps since the last point
    train_loss: list[float] = field(default_factory=list)
    valid_accuracy: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds since the start, per point
    images_per_second: float = 0.0  # training images / wall_time (validations included)
    wall_time: float = 0.0
    capped: bool = False
    device: str = "cpu"
    planned_steps: int = 0  # epochs * batches per epoch, before any cap
    steps_run: int = 0
    epochs: int = 0
    batch_size: int = 0
    lr: float = 0.0
    seed: int = 0
    bf16: bool = False
    channels_last: bool = False
    model_name: str = ""
    parameters: int = 0

    @property
    def final_valid_accuracy(self) -> float:
        """Validation accuracy at the last point (NaN if there is none)."""
        return self.valid_accuracy[-1] if self.valid_accuracy else math.nan

    def to_frame(self) -> "pd.DataFrame":
        """Long table (step, time, split, accuracy, loss): one row per point and split, for seaborn."""
        import pandas as pd

        rows = [
            {"step": step, "time": t, "split": split, "accuracy": acc, "loss": loss}
            for split, accs, losses in (
                ("train", self.train_accuracy, self.train_loss),
                ("validation", self.valid_accuracy, self.valid_loss),
            )
            for step, t, acc, loss in zip(self.steps, self.times, accs, losses)
        ]
        return pd.DataFrame(rows, columns=["step", "time", "split", "accuracy", "loss"])

    def summary(self) -> dict[str, Any]:
        """One row of run facts: model, parameters, steps, time, speed, final validation accuracy."""
        return {
            "model": self.model_name, "parameters": self.parameters, "steps": self.steps_run,
            "capped": self.capped, "wall_time_s": self.wall_time, "images_per_s": self.images_per_second,
            "valid_accuracy": self.final_valid_accuracy,
        }

    def as_dict(self) -> dict[str, Any]:
        """All fields as plain Python values (e.g. for JSON)."""
        return asdict(self)


# ----------------------------------------------------------------------------- checks and the budget


def budget_slice(
    images: torch.Tensor, targets: torch.Tensor, *, announce: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Under $CONVCOURSE_MAX_STEPS, the first EVAL_IMAGES images: a capped run is a smoke
    run, and scoring 10,000 images per check would cost more than its training."""
    if step_budget() is None or len(targets) <= EVAL_IMAGES:
        return images, targets
    if announce:
        print(
            f"convcourse: training budget ({BUDGET_ENV}): evaluating on the first {EVAL_IMAGES:,} "
            f"of {len(targets):,} images",
            flush=True,
        )
    return images[:EVAL_IMAGES], targets[:EVAL_IMAGES]


def plan_steps(n_train: int, epochs: int, batch_size: int, max_steps: int | None) -> tuple[int, int, str]:
    """(planned steps, steps to run, what capped them or ""): the last partial batch is dropped."""
    planned = epochs * (n_train // batch_size)
    if planned == 0:
        raise ValueError(f"data.train has {n_train} images, fewer than one batch of {batch_size}")
    env_cap = step_budget()
    caps = [(c, why) for c, why in ((max_steps, "max_steps"), (env_cap, f"{BUDGET_ENV}={env_cap}")) if c is not None]
    cap, why = min(caps) if caps else (planned, "")
    return planned, min(planned, cap), why if cap < planned else ""


def _positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def _check_split(name: str, split: Any) -> None:
    """Refuse anything but (N, C, H, W) float images with (N,) int64 targets, saying why."""
    images, targets = getattr(split, "images", None), getattr(split, "targets", None)
    if not isinstance(images, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(f"{name} must have tensors .images and .targets (a convcourse.data.Split)")
    if images.ndim != 4:
        hint = " Add the channel axis with images.unsqueeze(1)." if images.ndim == 3 else ""
        raise ValueError(
            f"{name}.images must be shaped (N, C, H, W), e.g. (N, 1, 28, 28); got {tuple(images.shape)}.{hint}"
        )
    if not images.is_floating_point():
        raise ValueError(f"{name}.images must be floating point (float32 in [0, 1]), got {images.dtype}")
    if targets.shape != (len(images),) or targets.dtype != torch.int64:
        raise ValueError(
            f"{name}.targets must be int64 class indices shaped ({len(images)},), "
            f"got {targets.dtype} {tuple(targets.shape)}"
        )
    if len(images) == 0:
        raise ValueError(f"{name} is empty")


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if next(model.parameters(), None) is None:
        raise ValueError(f"the model ({type(model).__name__}) has no parameters")


def _first_logits(model: nn.Module, x: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The first forward pass, checked once: errors name the input shape and the class count."""
    try:
        logits = model(x)
    except RuntimeError as err:
        raise ValueError(f"the model failed on a batch of images shaped {tuple(x.shape)}: {err}") from err
    if logits.ndim != 2 or logits.shape[0] != len(x) or logits.shape[1] < num_classes:
        raise ValueError(
            f"the model must return one score per class, shaped ({len(x)}, {num_classes}); "
            f"got {tuple(logits.shape)}"
        )
    return logits


# ----------------------------------------------------------------------------- evaluation


@torch.inference_mode()
def _scores(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, device: torch.device,
    batch_size: int | None = None, bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed cross-entropy, predictions) over tensors, in eval mode and large batches."""
    was_training = model.training
    model.eval()
    channels_last = is_channels_last(model)
    try:
        loss_sum = torch.zeros((), device=device)
        preds = []
        for x, y in iterate_batches(images, targets, batch_size or eval_batch_size(device)):
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x).float()
            loss_sum += nn.functional.cross_entropy(logits, y.to(device, non_blocking=True), reduction="sum")
            preds.append(logits.argmax(1))
        return loss_sum, torch.cat(preds)
    finally:
        model.train(was_training)


def _prepare_eval(
    model: nn.Module, split: Any, batch_size: int | None, device: str | torch.device | None
) -> torch.device:
    _check_model(model)
    _check_split("split", split)
    _positive_int("batch_size", batch_size, allow_none=True)
    dev = resolve_device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    return dev


def evaluate(
    model: nn.Module, split: Any, *, batch_size: int | None = None, device: str | torch.device | None = None
) -> Evaluation:
    """Accuracy and mean cross-entropy of `model` on `split` (eval mode, no gradients, float32).

    `batch_size` None: 256 on the CPU, 1024 on an accelerator."""
    dev = _prepare_eval(model, split, batch_size, device)
    images, targets = budget_slice(split.images, split.targets, announce=True)
    loss_sum, preds = _scores(model, images, targets, dev, batch_size)
    n = len(targets)
    return Evaluation(accuracy=(preds == targets.to(dev)).sum().item() / n, loss=loss_sum.item() / n)


def predict(
    model: nn.Module, split: Any, *, batch_size: int | None = None, device: str | torch.device | None = None
) -> torch.Tensor:
    """Predicted class of every image in `split`, as an int64 CPU tensor."""
    dev = _prepare_eval(model, split, batch_size, device)
    return _scores(model, split.images, split.targets, dev, batch_size)[1].cpu()


# ----------------------------------------------------------------------------- training


class _Meter:
    """Running train accuracy and loss kept on the device: reading it is the only host sync."""

    def __init__(self, device: torch.device) -> None:
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.loss = torch.zeros((), device=device)
        self.images = self.batches = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss.detach()
        self.correct += (logits.argmax(1) == y).sum()
        self.images += len(y)
        self.batches += 1

    def read(self) -> tuple[float, float]:
        """(accuracy, mean loss) since the last reset."""
        return self.correct.item() / max(self.images, 1), self.loss.item() / max(self.batches, 1)

    def reset(self) -> None:
        self.correct.zero_()
        self.loss.zero_()
        self.images = self.batches = 0


def _announce_cap(planned: int, total: int, why: str, epochs: int) -> None:
    print(
        f"convcourse: training budget ({why}): this run is CAPPED at {total} of {planned} steps "
        f"({total / planned:.1%} of {epochs} epoch{'s' * (epochs != 1)}). Its accuracies are those "
        "of a shortened run; lift the budget for the full run.",
        flush=True,
    )


def fit(
    model: nn.Module,
    data: Any,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    validate_every: int | None = 500,
    device: str | torch.device | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    bf16: bool | None = None,
    channels_last: bool | None = None,
    progress: bool = True,
) -> History:
    """Train `model` in place on `data.train` with Adam and cross-entropy; validate on `data.valid`.

    Validation runs every `validate_every` steps and once more at the end when the last step is
    not a multiple of it (None: only at the end). `max_steps` and $CONVCOURSE_MAX_STEPS cap the
    run (the smaller wins) and the cap is printed. The model is moved to `device` (None: CUDA,
    then MPS, then CPU). `bf16` (autocast, validation included) and `channels_last`: None means on
    where measured to help, i.e. both on CPUs with native bf16 only. The same `seed` gives the
    same history on the same machine (seed before building the model for the same weights too).
    """
    _check_model(model)
    for name in ("train", "valid"):
        _check_split(f"data.{name}", getattr(data, name, None))
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        _positive_int(name, value)
    _positive_int("validate_every", validate_every, allow_none=True)
    _positive_int("max_steps", max_steps, allow_none=True)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr < math.inf):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    planned, total, why = plan_steps(len(data.train.images), epochs, batch_size, max_steps)
    if why:
        _announce_cap(planned, total, why, epochs)

    dev = resolve_device(device)
    use_bf16 = bf16_default(dev) if bf16 is None else bool(bf16)
    if use_bf16 and dev.type == "cpu" and not cpu_native_bf16():
        warnings.warn("bf16=True on a CPU without native bfloat16 (AVX512-BF16/AMX) is emulated and slow", stacklevel=2)
    want_cl = channels_last_default(dev, use_bf16) if channels_last is None else bool(channels_last)
    use_cl = want_cl and any(p.ndim == 4 for p in model.parameters())
    model.to(dev)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    history = History(
        capped=bool(why), device=str(dev), planned_steps=planned, epochs=epochs, batch_size=batch_size,
        lr=float(lr), seed=seed, bf16=use_bf16, channels_last=use_cl, model_name=type(model).__name__,
        parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    # Moved to the device once: every batch is then an index into device memory.
    images, targets = data.train.images.to(dev), data.train.targets.to(dev)
    valid_x, valid_y = (t.to(dev) for t in budget_slice(data.valid.images, data.valid.targets, announce=True))
    num_classes = int(max(targets.max(), valid_y.max())) + 1
    optimizer = adam(model, lr, dev)
    shuffler = torch.Generator().manual_seed(seed)
    meter = _Meter(dev)
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []

    def checkpoint(step: int) -> None:
        val_loss, val_preds = _scores(model, valid_x, valid_y, dev, bf16=use_bf16)
        train_acc, train_loss = meter.read()
        meter.reset()
        history.steps.append(step)
        history.train_accuracy.append(train_acc)
        history.train_loss.append(train_loss)
        history.valid_accuracy.append((val_preds == valid_y).sum().item() / len(valid_y))
        history.valid_loss.append(val_loss.item() / len(valid_y))
        history.times.append(time.perf_counter() - start)
        if progress:
            bar.write(
                f"step {step:>5}/{total}  train acc {train_acc:.4f} loss {train_loss:.4f}  |  "
                f"valid acc {history.valid_accuracy[-1]:.4f} loss {history.valid_loss[-1]:.4f}"
            )

    bar = tqdm(total=total, disable=not progress, unit="step", desc=history.model_name, mininterval=_POSTFIX_SECONDS)
    start = last_postfix = time.perf_counter()
    step = 0
    layout = channels_last_grads(model) if use_cl else contextlib.nullcontext()
    with torch.random.fork_rng(devices=cuda), layout:  # dropout is seeded without touching the caller's RNG
        torch.manual_seed(seed)
        model.train()
        while step < total:
            for x, y in iterate_batches(images, targets, batch_size, shuffle=True, generator=shuffler, drop_last=True):
                if use_cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = model(x) if step else _first_logits(model, x, num_classes)
                    loss = nn.functional.cross_entropy(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                meter.add(loss, logits, y)
                step += 1
                bar.update(1)
                if progress and time.perf_counter() - last_postfix > _POSTFIX_SECONDS:
                    acc, mean_loss = meter.read()
                    bar.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{acc:.4f}", refresh=False)
                    last_postfix = time.perf_counter()
                if step == total or (validate_every is not None and step % validate_every == 0):
                    checkpoint(step)
                if step == total:
                    break
    bar.close()
    history.wall_time = time.perf_counter() - start
    history.steps_run = step
    history.images_per_second = step * batch_size / history.wall_time
    return history
