"""Training on preloaded tensors: `fit` and its `History` (scoring is in `convcourse.evaluation`).

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
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from convcourse.budget import BUDGET_ENV, step_budget
from convcourse.data import iterate_batches
from convcourse.evaluation import Evaluation, budget_slice, evaluate, predict, scores
from convcourse.hardware import adam, bf16_default, channels_last_default, channels_last_grads, cpu_native_bf16, resolve_device
from convcourse.inputs import check_model, check_split, first_logits, positive_int

if TYPE_CHECKING:
    import pandas as pd

# evaluate, predict and Evaluation live in convcourse.evaluation; released notebooks import them from here.
__all__ = ["Evaluation", "History", "curve_table", "evaluate", "fit", "plan_steps", "predict"]

_POSTFIX_SECONDS = 0.5  # how often the bar's loss/accuracy is read back (one host sync each time)


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


def curve_table(runs: Mapping[str, History], *, split: str = "validation") -> "pd.DataFrame":
    """Accuracy at every point of each run's curve: a row per run, a column per step (blank where a run has none)."""
    import pandas as pd

    column = {"validation": "valid_accuracy", "train": "train_accuracy"}.get(split)
    if column is None:
        raise ValueError(f"split must be 'validation' or 'train', got {split!r}")
    if not isinstance(runs, Mapping) or not runs or not all(isinstance(h, History) for h in runs.values()):
        raise TypeError("expected a non-empty dict of name -> History (what fit returns)")
    table = pd.DataFrame({name: pd.Series(getattr(h, column), index=h.steps, dtype=float) for name, h in runs.items()}).T
    table.index.name, table.columns.name = "run", "step"
    return table


# ----------------------------------------------------------------------------- the budget


def plan_steps(n_train: int, epochs: int, batch_size: int, max_steps: int | None) -> tuple[int, int, str]:
    """(planned steps, steps to run, what capped them or ""): the last partial batch is dropped."""
    planned = epochs * (n_train // batch_size)
    if planned == 0:
        raise ValueError(f"data.train has {n_train} images, fewer than one batch of {batch_size}")
    env_cap = step_budget()
    caps = [(c, why) for c, why in ((max_steps, "max_steps"), (env_cap, f"{BUDGET_ENV}={env_cap}")) if c is not None]
    cap, why = min(caps) if caps else (planned, "")
    return planned, min(planned, cap), why if cap < planned else ""


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
    same history on the same machine (seed before building the model for the same weights too); on
    CUDA up to the last digits, unless you ask for `torch.use_deterministic_algorithms(True)`.
    """
    check_model(model)
    for name in ("train", "valid"):
        check_split(f"data.{name}", getattr(data, name, None))
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        positive_int(name, value)
    positive_int("validate_every", validate_every, allow_none=True)
    positive_int("max_steps", max_steps, allow_none=True)
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
        val_loss, val_preds = scores(model, valid_x, valid_y, dev, bf16=use_bf16)
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
                    logits = model(x) if step else first_logits(model, x, num_classes)
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
