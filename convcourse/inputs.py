"""What `fit` and `evaluate` accept: the models, splits and numbers they are given, refused with a reason.

Students pass their own models and tensors here, so every refusal says what was expected and what came.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


def positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    """Refuse anything but a positive int (or None where allowed), naming the argument."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def check_split(name: str, split: Any) -> None:
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


def check_model(model: Any) -> None:
    """Refuse anything but an nn.Module with parameters."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if next(model.parameters(), None) is None:
        raise ValueError(f"the model ({type(model).__name__}) has no parameters")


def first_logits(model: nn.Module, x: torch.Tensor, num_classes: int) -> torch.Tensor:
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
