"""Shifted digits: how accurate trained models stay on images moved by whole pixels.

The lab claims that max pooling gives a network some local translation invariance; `shift_robustness`
measures it, without retraining: each model scores the same images moved 0, 1, 2, ... pixels up, down,
left and right. The move itself is the student's graded `shift_images` (cnn_experiments 2.7), passed in as
``shift_fn``: this module holds no shift of its own to import in its place (the grader's reference is a private
one in `convcourse.checks`).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from convcourse.budget import BUDGET_ENV, step_budget
from convcourse.data import Split
from convcourse.evaluation import evaluate

__all__ = ["DIRECTIONS", "shift_robustness"]

DIRECTIONS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}  # (rows, columns) per pixel
BUDGET_IMAGES = 200  # scored per shift under the training budget: 13 shifted copies of 4 models were 1.4 s of a graded run at 500


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{name} must be a whole number of pixels, got {value!r}")
    return int(value)


def shift_robustness(models: Mapping[str, nn.Module], split: Any, *, shift_fn: Callable,
                     distances: Sequence[int] = (0, 1, 2, 3)) -> pd.DataFrame:
    """Accuracy of each model (rows) on ``split`` moved each distance (columns), the mean over up, down, left, right.

    ``shift_fn(images, dy, dx)`` moves the (N, C, H, W) images ``dy`` rows down and ``dx`` columns right.
    Under the training budget only the first BUDGET_IMAGES images are scored, and it says so.
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict of name -> trained model")
    if not callable(shift_fn):
        raise ValueError(f"shift_fn must be a function (images, dy, dx) -> moved images, such as your shift_images; "
                         f"got {type(shift_fn).__name__}")
    distances = [_whole("distance", d) for d in distances]
    if not distances or min(distances) < 0:
        raise ValueError(f"distances must be whole numbers of pixels >= 0, got {distances!r}")
    images, targets = split.images, split.targets
    if step_budget() is not None and len(targets) > BUDGET_IMAGES:
        print(f"convcourse: training budget ({BUDGET_ENV}): shifted digits scored on the first {BUDGET_IMAGES:,} of "
              f"{len(targets):,} images", flush=True)
        images, targets = images[:BUDGET_IMAGES], targets[:BUDGET_IMAGES]
    scores = {name: {} for name in models}
    for distance in distances:
        moves = [(0, 0)] if distance == 0 else [(distance * dy, distance * dx) for dy, dx in DIRECTIONS.values()]
        totals = dict.fromkeys(models, 0.0)
        for dy, dx in moves:  # one shifted copy at a time, scored by every model
            moved = shift_fn(images, dy, dx)
            if not isinstance(moved, torch.Tensor) or moved.shape != images.shape:
                raise ValueError(f"shift_fn(images, {dy}, {dx}) should return a tensor of shape {tuple(images.shape)}, "
                                 f"got {tuple(moved.shape) if isinstance(moved, torch.Tensor) else type(moved).__name__}")
            for name, model in models.items():
                totals[name] += evaluate(model, Split(moved.float(), targets)).accuracy
        for name in models:
            scores[name][distance] = totals[name] / len(moves)
    table = pd.DataFrame.from_dict(scores, orient="index")
    table.index.name, table.columns.name = "model", "shift (pixels)"
    return table
