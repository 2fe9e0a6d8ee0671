"""Scoring a model on a split: `evaluate` (accuracy and loss) and `predict` (the predicted classes).

Under the training budget ($CONVCOURSE_MAX_STEPS) only the first `convcourse.budget.EVAL_IMAGES`
images are scored: a capped run is a smoke run.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from convcourse.budget import BUDGET_ENV, EVAL_IMAGES, step_budget
from convcourse.data import iterate_batches
from convcourse.hardware import eval_batch_size, is_channels_last, resolve_device
from convcourse.inputs import check_model, check_split, positive_int

__all__ = ["Evaluation", "budget_slice", "evaluate", "predict", "scores"]


class Evaluation(NamedTuple):
    """Accuracy (fraction correct) and mean cross-entropy loss on one split."""

    accuracy: float
    loss: float


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


@torch.inference_mode()
def scores(
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
    check_model(model)
    check_split("split", split)
    positive_int("batch_size", batch_size, allow_none=True)
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
    loss_sum, preds = scores(model, images, targets, dev, batch_size)
    n = len(targets)
    return Evaluation(accuracy=(preds == targets.to(dev)).sum().item() / n, loss=loss_sum.item() / n)


def predict(
    model: nn.Module, split: Any, *, batch_size: int | None = None, device: str | torch.device | None = None
) -> torch.Tensor:
    """Predicted class of every image in `split`, as an int64 CPU tensor."""
    dev = _prepare_eval(model, split, batch_size, device)
    return scores(model, split.images, split.targets, dev, batch_size)[1].cpu()
