"""convcourse.translation: robustness tables of models built to be (in)sensitive to shifts, worked out by hand."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from convcourse.budget import BUDGET_ENV
from convcourse.data import Split
from convcourse.evaluation import evaluate
from convcourse.translation import BUDGET_IMAGES, DIRECTIONS, shift_robustness


def shift(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """What a student's shift_images does: pixels moved dy rows down and dx columns right, 0 where none came."""
    height, width = images.shape[-2:]
    moved = torch.zeros_like(images)
    moved[..., max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        images[..., max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    return moved


class CentrePixel(nn.Module):
    """Class 1 when the centre pixel of a 28x28 image is bright, else class 0: a network that cannot take a shift."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # evaluate wants a model with parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = x[:, 0, 14, 14]
        return torch.stack([0.5 - bright, bright - 0.5], dim=1)


class Brightness(nn.Module):
    """Class 1 when the image holds any bright pixel: moving a digit that stays in the picture changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = x.flatten(1).amax(1)
        return torch.stack([0.5 - bright, bright - 0.5], dim=1)


def dots(n: int = 40) -> Split:
    """Half the images black (class 0), half with one bright pixel in the centre (class 1)."""
    images = torch.zeros(n, 1, 28, 28)
    images[n // 2:, 0, 14, 14] = 1.0
    return Split(images, torch.tensor([0] * (n // 2) + [1] * (n - n // 2)))


def test_robustness_table_by_hand(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    calls = []

    def counting_shift(images, dy, dx):
        calls.append((dy, dx))
        return shift(images, dy, dx)

    split = dots()
    table = shift_robustness({"centre": CentrePixel(), "brightness": Brightness()}, split, shift_fn=counting_shift)
    assert list(table.index) == ["centre", "brightness"] and list(table.columns) == [0, 1, 2, 3]
    # Any shift moves the dot off the centre: the centre model then calls every image black, half of them right.
    assert table.loc["centre"].tolist() == [1.0, 0.5, 0.5, 0.5]
    assert table.loc["brightness"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert table.loc["centre", 0] == evaluate(CentrePixel(), split).accuracy
    assert calls == [(0, 0)] + [(d * dy, d * dx) for d in (1, 2, 3) for dy, dx in DIRECTIONS.values()]


def test_robustness_scores_the_budget_prefix_only(monkeypatch, capsys):
    monkeypatch.setenv(BUDGET_ENV, "5")
    seen = []
    split = dots(BUDGET_IMAGES + 10)

    def recording_shift(images, dy, dx):
        seen.append(len(images))
        return shift(images, dy, dx)

    shift_robustness({"centre": CentrePixel()}, split, shift_fn=recording_shift, distances=(0, 1))
    assert set(seen) == {BUDGET_IMAGES}
    assert f"shifted digits scored on the first {BUDGET_IMAGES:,} of {BUDGET_IMAGES + 10:,} images" in \
        capsys.readouterr().out


def test_robustness_refuses_bad_input():
    with pytest.raises(ValueError, match="non-empty dict"):
        shift_robustness({}, dots(), shift_fn=shift)
    with pytest.raises(ValueError, match="distances"):
        shift_robustness({"m": Brightness()}, dots(), shift_fn=shift, distances=(-1,))
    with pytest.raises(ValueError, match="shift_fn must be a function"):
        shift_robustness({"m": Brightness()}, dots(), shift_fn="shift_images")
    wrong_shape = r"shift_fn\(images, 0, 0\) should return a tensor of shape \(40, 1, 28, 28\), got \(40, 1, 27, 28\)"
    with pytest.raises(ValueError, match=wrong_shape):
        shift_robustness({"m": Brightness()}, dots(), shift_fn=lambda images, dy, dx: images[:, :, 1:])
