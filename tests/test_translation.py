"""convcourse.translation: shifts worked out by hand, and robustness tables of models built to be (in)sensitive."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from convcourse.budget import BUDGET_ENV
from convcourse.data import Split
from convcourse.evaluation import evaluate
from convcourse.translation import BUDGET_IMAGES, DIRECTIONS, shift, shift_robustness

IMAGE = torch.arange(1.0, 13.0).reshape(1, 1, 3, 4)  # rows 1-4, 5-8, 9-12


@pytest.mark.parametrize("dy, dx, expected", [
    (0, 0, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]),
    (1, 0, [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]),
    (-1, 0, [[5, 6, 7, 8], [9, 10, 11, 12], [0, 0, 0, 0]]),
    (0, 2, [[0, 0, 1, 2], [0, 0, 5, 6], [0, 0, 9, 10]]),
    (1, -2, [[0, 0, 0, 0], [3, 4, 0, 0], [7, 8, 0, 0]]),
    (3, 0, [[0] * 4] * 3), (0, -4, [[0] * 4] * 3), (-7, 9, [[0] * 4] * 3),  # moved out of the picture
])
def test_shift_by_hand(dy, dx, expected):
    moved = shift(IMAGE, dy, dx)
    assert moved[0, 0].tolist() == expected
    assert IMAGE[0, 0, 0].tolist() == [1, 2, 3, 4]  # the input is left alone


def test_shift_moves_every_image_and_channel_alike():
    images = torch.rand(3, 2, 5, 6)
    moved = shift(images, -2, 1)
    for n in range(3):
        for c in range(2):
            assert torch.equal(moved[n, c], shift(images[n, c], -2, 1))  # any leading axes: (H, W) alone works too
    assert moved.dtype == images.dtype and moved.shape == images.shape


@pytest.mark.parametrize("args, message", [
    ((IMAGE, 1.5, 0), "dy must be a whole number"), ((IMAGE, 0, True), "dx must be a whole number"),
    ((torch.zeros(4), 1, 1), r"\(\.\.\., H, W\)"), (([[1, 2]], 0, 0), "tensor"),
])
def test_shift_refuses_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        shift(*args)


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
        shift_robustness({}, dots())
    with pytest.raises(ValueError, match="distances"):
        shift_robustness({"m": Brightness()}, dots(), distances=(-1,))
    wrong_shape = r"shift_fn\(images, 0, 0\) should return a tensor of shape \(40, 1, 28, 28\), got \(40, 1, 27, 28\)"
    with pytest.raises(ValueError, match=wrong_shape):
        shift_robustness({"m": Brightness()}, dots(), shift_fn=lambda images, dy, dx: images[:, :, 1:])
