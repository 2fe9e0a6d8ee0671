"""The checks of cnn_experiments' newer tasks: the unpadded first try, controlled variants, shift_images (fast)."""
from __future__ import annotations

import re

import pytest
import torch
from test_diagnosis import named
from torch import nn

import convcourse.checks as checks
from convcourse import diagnosis
from convcourse.models import PrintSize

CAUSE = "Likely cause:"


def net(*layers: nn.Module) -> nn.Sequential:
    return nn.Sequential(*[PrintSize(enabled=False) if isinstance(layer, PrintSize) else layer for layer in layers])


def message(check, *args, **kwargs) -> str:
    with pytest.raises(checks.CheckFailed) as failure:
        check(*args, **kwargs)
    return named(str(failure.value))


# ---------------------------------------------------------------- first_try: the shrink seen before padding


def test_the_unpadded_first_try_passes():
    runs = checks.check_unpadded("first_try", net(PrintSize(), nn.Conv2d(1, 32, 5), PrintSize()))
    assert [run.output_shape for run in runs if checks.is_layer(run.module, "Conv2d")] == [(2, 32, 24, 24)]


@pytest.mark.parametrize("model, text", [
    (net(PrintSize(), nn.Conv2d(1, 32, 5, padding=2), PrintSize()), "padding=(2, 2): leave the padding out"),
    (net(PrintSize(), nn.Conv2d(1, 32, 3), PrintSize()), "kernel_size=(3, 3); use (5, 5)"),
    (net(PrintSize(), nn.Conv2d(1, 16, 5), PrintSize()), "out_channels=16; use 32"),
    (net(PrintSize(), nn.Conv2d(1, 32, 5, stride=2), PrintSize()), "stride=(2, 2); use (1, 1)"),
    (net(nn.Conv2d(1, 32, 5), PrintSize()), "a PrintSize() before and one after its Conv2d"),
    (net(PrintSize(), nn.Conv2d(1, 32, 5), nn.Conv2d(32, 32, 5), PrintSize()), "exactly one nn.Conv2d; 2 ran"),
    (net(PrintSize(), nn.Conv2d(3, 32, 5), PrintSize()), "fails on a batch of shape (2, 1, 28, 28)"),
    ("not a model", "should be a torch.nn.Module"),
])
def test_the_first_try_says_what_differs(model, text):
    assert text in message(checks.check_unpadded, "first_try", model)


def test_the_padding_task_is_not_answered_by_its_failure_message():
    runs = checks.check_classifier("conv_model", net(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.Flatten(),
                                                   nn.Linear(32 * 24 * 24, 10)))
    hidden = message(checks.check_keeps_size, "conv_model", runs, reveal=False)
    assert "shrinks 28 to 24" in hidden and "padding=2" not in hidden and CAUSE not in hidden
    shown = message(checks.check_keeps_size, "conv_model", runs)  # old notebooks: the cause, pointing at the formula
    assert CAUSE in shown and "H_out = H" in shown and "padding=2" not in shown


def test_conv_model_has_the_32_filters_the_filters_section_shows():
    sixteen = checks.check_classifier("conv_model", net(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.Flatten(),
                                                       nn.Linear(16 * 28 * 28, 10)))
    checks.check_keeps_size("conv_model", sixteen, reveal=False)  # old notebooks did not ask for the number
    assert "has 16 filters (out_channels); use 32 here" in message(checks.check_keeps_size, "conv_model", sixteen,
                                                                   reveal=False, filters=32)
    right = checks.check_classifier("conv_model", net(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.Flatten(),
                                                     nn.Linear(32 * 28 * 28, 10)))
    checks.check_keeps_size("conv_model", right, reveal=False, filters=32)


# ---------------------------------------------------------------- dropout_model: pool_model plus dropout


POOL = (nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(32 * 14 * 14, 128),
        nn.ReLU(), nn.Linear(128, 10))


def layers_of(*layers: nn.Module) -> list:
    return checks.check_classifier("m", net(*layers))


def test_the_same_layers_plus_dropout_pass():
    pool = layers_of(*POOL)
    with_dropout = layers_of(*POOL[:4], nn.Dropout(0.3), POOL[4], POOL[5], nn.Dropout(0.3), POOL[6])
    checks.check_same_layers("dropout_model", with_dropout, "pool_model", pool, ("Dropout", "Dropout2d"))
    spatial = layers_of(*POOL[:2], nn.Dropout2d(0.2), *POOL[2:], PrintSize())  # PrintSize and Dropout2d are fine
    checks.check_same_layers("dropout_model", spatial, "pool_model", pool, ("Dropout", "Dropout2d"))


def test_another_change_besides_dropout_is_named():
    pool = layers_of(*POOL)
    wider = layers_of(*POOL[:4], nn.Dropout(0.3), nn.Linear(32 * 14 * 14, 256), nn.ReLU(), nn.Linear(256, 10))
    text = message(checks.check_same_layers, "dropout_model", wider, "pool_model", pool, "Dropout")
    assert "dropout_model has nn.Linear(in_features=6272, out_features=256, bias=True) at dropout_model[5] where " \
           "pool_model has nn.Linear(in_features=6272, out_features=128, bias=True) at pool_model[4]" in text
    assert diagnosis.names_in(text) == ["comparison-changes-more"]  # counted in the class report
    shorter = layers_of(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(), nn.Dropout(0.3),
                        nn.Linear(32 * 14 * 14, 10))
    shorter_text = message(checks.check_same_layers, "dropout_model", shorter, "pool_model", pool, "Dropout")
    assert "has nn.Linear(in_features=6272, out_features=10, bias=True) at dropout_model[5] where pool_model has " \
           "nn.Linear(in_features=6272, out_features=128" in shorter_text
    longer = layers_of(*POOL[:4], nn.Dropout(0.3), *POOL[4:6], nn.Linear(128, 128), nn.ReLU(), POOL[6])
    longer_text = message(checks.check_same_layers, "dropout_model", longer, "pool_model", pool, "Dropout")
    assert "dropout_model has nn.Linear(in_features=128, out_features=128, bias=True) at dropout_model[7] where " \
           "pool_model has nn.Linear(in_features=128, out_features=10, bias=True) at pool_model[6]" in longer_text
    assert "at least 1 nn.Dropout" in message(checks.check_same_layers, "dropout_model", pool, "pool_model", pool,
                                              "Dropout")


# ---------------------------------------------------------------- shift_images


def shift(images, dy, dx):
    """A right answer written another way than the course's: pad, then cut the window back out."""
    height, width = images.shape[-2:]
    padded = nn.functional.pad(images, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    return padded[..., max(-dy, 0):max(-dy, 0) + height, max(-dx, 0):max(-dx, 0) + width]


def rolled_and_cleared(images, dy, dx):
    """Another right answer: torch.roll, then the rows and columns that wrapped round set to 0."""
    moved = torch.roll(images, (dy, dx), dims=(-2, -1))
    moved[..., :max(dy, 0), :] = 0
    moved[..., moved.shape[-2] + min(dy, 0):, :] = 0
    moved[..., :max(dx, 0)] = 0
    moved[..., moved.shape[-1] + min(dx, 0):] = 0
    return moved


IMAGE = [[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]]]


@pytest.mark.parametrize("dy, dx, expected", [
    (0, 0, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]),
    (1, 0, [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]),
    (-1, 0, [[5, 6, 7, 8], [9, 10, 11, 12], [0, 0, 0, 0]]),
    (0, 2, [[0, 0, 1, 2], [0, 0, 5, 6], [0, 0, 9, 10]]),
    (1, -2, [[0, 0, 0, 0], [3, 4, 0, 0], [7, 8, 0, 0]]),
    (3, 0, [[0] * 4] * 3), (0, -4, [[0] * 4] * 3), (-7, 9, [[0] * 4] * 3),  # moved out of the picture
])
def test_the_shift_reference_by_hand(dy, dx, expected):
    assert checks._shift_reference(IMAGE, dy, dx) == [[expected]]
    assert IMAGE[0][0][0] == [1.0, 2.0, 3.0, 4.0]  # the input is left alone


def test_the_package_has_no_public_shift_to_import_instead_of_writing_one():
    """The graded shift_images (2 points) has its reference in a private function of checks only."""
    from convcourse import translation

    assert [name for name in dir(translation) if "shift" in name.lower()] == ["shift_robustness"]
    assert {name for name in dir(checks) if "shift" in name.lower() and not name.startswith("_")} == \
        {"ShiftCase", "check_shift", "random_shift_cases"}
    with pytest.raises(TypeError, match="shift_fn"):  # the notebook passes the student's shift_images
        translation.shift_robustness({"m": nn.Linear(1, 1)}, None)


def replicate(images, dy, dx):
    height, width = images.shape[-2:]
    padded = nn.functional.pad(images, (3, 3, 3, 3), mode="replicate")
    return padded[..., 3 - dy:3 - dy + height, 3 - dx:3 - dx + width]


def in_place(images, dy, dx):
    images[:] = shift(images, dy, dx)
    return images


def test_right_answers_pass_every_random_case():
    cases = checks.random_shift_cases(seed=5, count=40)
    checks.check_shift(shift, cases)
    checks.check_shift(rolled_and_cleared, cases)
    assert len({(c.dy, c.dx) for c in cases}) > 15 and any(c.shape[0] > 1 and c.shape[1] > 1 for c in cases)
    assert cases == checks.random_shift_cases(seed=5, count=40)


@pytest.mark.parametrize("wrong, cause, tag", [
    (lambda x, dy, dx: torch.roll(x, (dy, dx), dims=(2, 3)), "torch.roll wraps around", "shift-wraps-around"),
    (lambda x, dy, dx: torch.roll(x, (dy, dx), dims=(-2, -1)), "torch.roll wraps around", "shift-wraps-around"),
    (replicate, "repeat the edge row or column", "shift-repeats-edge"),
    (lambda x, dy, dx: shift(x, -dy, -dx), "the digit moves the wrong way", "shift-wrong-direction"),
    (lambda x, dy, dx: shift(x, dx, dy), "dy and dx are swapped", "shift-dy-dx-swapped"),
    (lambda x, dy, dx: shift(x, dy, 0), "the shift by dx is missing", "shift-rows-only"),
    (lambda x, dy, dx: shift(x, 0, dx), "the shift by dy is missing", "shift-columns-only"),
    (lambda x, dy, dx: shift(x.permute(0, 3, 1, 2), dy, dx).permute(0, 2, 3, 1), "the shift moves the wrong axes",
     "shift-wrong-axes"),
    (lambda x, dy, dx: torch.roll(x, (dy, dx), dims=(1, 2)), "the shift moves the wrong axes", "shift-wrong-axes"),
    (lambda x, dy, dx: x.clone(), "the images come back unmoved", "shift-unmoved"),
])
def test_classic_mistakes_are_named(wrong, cause, tag):
    text = message(checks.check_shift, wrong, [checks.ShiftCase((2, 3, 5, 6), 2, -1, 7)])
    assert text.startswith("on images of shape (2, 3, 5, 6) moved by dy=2, dx=-1: ")
    assert re.search(r"the first at image \d, channel \d, row \d, column \d: you have [\d.]+, expected [\d.]+", text)
    assert f"{CAUSE} " in text and cause in text.splitlines()[-1]
    assert diagnosis.names_in(text) == [tag]  # the name the class report counts


def test_other_failures_say_what_is_wrong():
    case = [checks.ShiftCase((1, 1, 4, 5), 1, 1)]
    assert "changed the images it was given" in message(checks.check_shift, in_place, case)
    padded = message(checks.check_shift, lambda x, dy, dx: nn.functional.pad(x, (1, 0, 1, 0)), case)
    assert "returned shape (1, 1, 5, 6)" in padded
    assert "returned ndarray" in message(checks.check_shift, lambda x, dy, dx: shift(x, dy, dx).numpy(), case)
    assert "not written yet" in message(checks.check_shift, lambda x, dy, dx: (_ for _ in ()).throw(NotImplementedError()),
                                        case)
    unrelated = message(checks.check_shift, lambda x, dy, dx: shift(x, dy, dx) * 2, case)
    assert CAUSE not in unrelated  # no diagnosis is better than a wrong one


def test_the_shift_oracle_cannot_be_patched_into_agreement(monkeypatch):
    monkeypatch.setattr(torch, "zeros_like", torch.ones_like)  # what a notebook cell could do before the test cell
    monkeypatch.setattr(nn.functional, "pad", lambda x, *args, **kwargs: torch.ones_like(x))
    text = message(checks.check_shift, lambda x, dy, dx: torch.ones_like(x), [checks.ShiftCase((1, 1, 4, 4), 1, 0)])
    assert "values are wrong" in text and "expected 0" in text  # the reference is plain Python: still 0 at the top


def test_shift_variants_keep_only_what_tells_the_mistakes_apart():
    image = [[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]]  # N = C = 1: a move along them empties it
    variants = diagnosis.shift_variants(image, 1, -1)
    answers = [v.answer for v in variants]
    assert diagnosis.flat(image) in answers and answers.count(diagnosis.flat(image)) == 1
    assert [[0.0] * 9] not in answers  # all zeros says nothing about how it came about
    assert [[0.0, 0.0, 0.0, 2.0, 3.0, 0.0, 5.0, 6.0, 0.0]] not in answers  # the right answer is no variant here
    rolled = next(v for v in variants if v.mistake.startswith("what leaves one edge"))
    assert rolled.answer == [[8.0, 9.0, 7.0, 2.0, 3.0, 1.0, 5.0, 6.0, 4.0]]
