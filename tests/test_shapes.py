"""convcourse.shapes against the lab's answers and against PyTorch itself (a seeded sweep)."""

import random
import warnings

import pytest
import torch
from torch import nn

from convcourse.shapes import (
    Conv2dSpec,
    LinearSpec,
    Pool2dSpec,
    ShapeError,
    conv2d_output_shape,
    conv2d_parameter_count,
    conv_output_size,
    format_trace,
    formula,
    pool2d_output_shape,
    trace_shapes,
)

# The lab's output-dimension exercise: input, filters, filter size, stride, padding -> answer.
LAB_CASES = [
    ((1, 28, 28), 16, (1, 5, 5), (1, 1), (0, 0), (16, 24, 24)),
    ((2, 32, 32), 24, (2, 3, 3), (1, 1), (0, 0), (24, 30, 30)),
    ((10, 32, 32), 3, (10, 2, 2), (2, 2), (0, 0), (3, 16, 16)),
    ((11, 8, 16), 7, (11, 3, 3), (2, 2), (1, 1), (7, 4, 8)),
    ((128, 256, 256), 112, (128, 3, 3), (1, 1), (1, 1), (112, 256, 256)),
]


@pytest.mark.parametrize("input_shape, filters, filter_shape, stride, padding, answer", LAB_CASES)
def test_lab_exercise(input_shape, filters, filter_shape, stride, padding, answer):
    got = conv2d_output_shape(input_shape, filters, filter_shape[1:], stride, padding, filter_channels=filter_shape[0])
    assert got == answer


def _torch_shape(build, input_shape):
    """Output shape (without batch) of a real module, or None where PyTorch raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. 'same' padding with an even kernel
            with torch.no_grad():
                return tuple(build()(torch.zeros(1, *input_shape)).shape[1:])
    except (RuntimeError, ValueError):
        return None


def _ours(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except ShapeError:
        return None


def _int_or_pair(rng, low, high, bad=None):
    """An int or a pair in [low, high]; with probability 0.05 per value, the invalid `bad` instead."""
    def one():
        return bad if bad is not None and rng.random() < 0.05 else rng.randint(low, high)

    return one() if rng.random() < 0.6 else (one(), one())


def test_conv2d_matches_pytorch_sweep():
    rng = random.Random(2024)
    mismatches, raised, total = [], 0, 800
    for _ in range(total):
        groups = rng.choice([1, 1, 1, 2, 3])
        c = groups * rng.randint(1, 3) if rng.random() < 0.95 else rng.randint(1, 6)
        out = groups * rng.randint(1, 3) if rng.random() < 0.95 else rng.randint(1, 6)
        filter_channels = c // groups if rng.random() < 0.9 or c % groups else c // groups + 1
        shape = (c, rng.randint(0 if rng.random() < 0.03 else 1, 12), rng.randint(1, 12))
        kernel, stride = _int_or_pair(rng, 1, 6, bad=0), _int_or_pair(rng, 1, 3, bad=0)
        dilation = _int_or_pair(rng, 1, 3, bad=0)
        padding = rng.choice(["same", "valid", _int_or_pair(rng, 0, 3, bad=-1), _int_or_pair(rng, 0, 3)])
        args = (out, kernel, stride, padding, dilation)
        theirs = _torch_shape(
            lambda: nn.Conv2d(filter_channels * groups, out, kernel, stride, padding, dilation, groups), shape
        )
        mine = _ours(conv2d_output_shape, shape, *args, filter_channels=filter_channels, groups=groups)
        raised += theirs is None
        if mine != theirs:
            mismatches.append((shape, args, filter_channels, groups, mine, theirs))
    assert not mismatches, f"{len(mismatches)} differ from PyTorch, e.g. {mismatches[:3]}"
    print(f"{raised} of {total} configurations invalid")
    assert 0.2 * total < raised < 0.8 * total, f"{raised} of {total} invalid: the sweep should mix both kinds"


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool2d_matches_pytorch_sweep(kind):
    rng = random.Random(7 if kind == "max" else 8)
    mismatches, raised, total = [], 0, 600
    for _ in range(total):
        shape = (rng.randint(1, 3), rng.randint(0 if rng.random() < 0.03 else 1, 12), rng.randint(1, 12))
        kernel = _int_or_pair(rng, 1, 6, bad=0)
        stride = None if rng.random() < 0.3 else _int_or_pair(rng, 1, 3, bad=0)
        padding = _int_or_pair(rng, 0, 2, bad=-1)
        dilation = _int_or_pair(rng, 1, 2, bad=0) if kind == "max" else 1
        ceil_mode = rng.random() < 0.3
        if kind == "max":
            build = lambda: nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)  # noqa: E731
        else:
            build = lambda: nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode)  # noqa: E731
        theirs = _torch_shape(build, shape)
        mine = _ours(pool2d_output_shape, shape, kernel, stride, padding, dilation, kind=kind, ceil_mode=ceil_mode)
        raised += theirs is None
        if mine != theirs:
            mismatches.append((shape, kernel, stride, padding, dilation, ceil_mode, mine, theirs))
    assert not mismatches, f"{len(mismatches)} differ from PyTorch, e.g. {mismatches[:3]}"
    print(f"{raised} of {total} configurations invalid")
    assert 0.2 * total < raised < 0.8 * total, f"{raised} of {total} invalid: the sweep should mix both kinds"


@pytest.mark.parametrize(
    "call, rule",
    [
        (lambda: conv2d_output_shape((3, 4, 4), 8, 5), "kernel larger than padded input"),
        (lambda: conv2d_output_shape((3, 4, 4), 8, 3, dilation=2), "effective kernel"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, 3, filter_channels=2), "channel mismatch"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, 3, groups=2), "input channels"),
        (lambda: conv2d_output_shape((4, 8, 8), 3, 3, groups=2), "out_channels"),
        (lambda: conv2d_output_shape((3, 0, 8), 8, 3), "non-positive size"),
        (lambda: conv2d_output_shape((3, 8, 8), 0, 3), "non-positive size"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, (3, 0)), "kernel_size must be positive"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, 3, stride=0), "stride must be positive"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, 3, padding=-1), "negative padding"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, 3, stride=2, padding="same"), "needs stride 1"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, 3, padding="full"), "'valid' or 'same'"),
        (lambda: conv2d_output_shape((3, 8, 8), 8, 2.5), "int or a pair"),
        (lambda: conv2d_output_shape((8, 8), 8, 3), "(channels, height, width)"),
        (lambda: pool2d_output_shape((3, 8, 8), 3, padding=2), "padding 2 > kernel 3 // 2"),
        (lambda: pool2d_output_shape((3, 2, 8), 4), "kernel larger than padded input (height)"),
        (lambda: pool2d_output_shape((3, 8, 8), 2, dilation=2, kind="avg"), "AvgPool2d has no dilation"),
        (lambda: pool2d_output_shape((3, 8, 8), 2, kind="min"), "'max' or 'avg'"),
        (lambda: conv_output_size(4, 5), "kernel larger than padded input"),
    ],
)
def test_errors_name_the_rule(call, rule):
    with pytest.raises(ShapeError) as info:
        call()
    assert rule in str(info.value)
    assert isinstance(info.value, ValueError)


def test_one_dimension_and_formula_text():
    assert conv_output_size(28, 5, padding=2) == 28
    assert conv_output_size(8, 3, stride=2, padding=1) == 4
    assert conv_output_size(10, 3, dilation=2) == 6  # effective kernel 5
    assert conv_output_size(7, 4, padding="same") == 7 and conv_output_size(7, 4, padding="valid") == 4
    assert formula(28, 5, 1, 2) == "floor((28 + 2*2 - 5) / 1) + 1 = 28"
    assert formula(16, 3, 2, 1) == "floor((16 + 2*1 - 3) / 2) + 1 = 8"
    assert formula(10, 3, 1, 0, 2) == "floor((10 + 2*0 - 2*(3 - 1) - 1) / 1) + 1 = 6"
    assert "same" in formula(9, 3, padding="same")


@pytest.mark.parametrize(
    "in_ch, out_ch, kernel, bias, groups",
    [(1, 16, 5, True, 1), (32, 64, 3, True, 1), (3, 6, (3, 5), False, 1), (4, 8, 3, True, 2), (6, 6, 3, False, 6)],
)
def test_parameter_count_matches_pytorch(in_ch, out_ch, kernel, bias, groups):
    layer = nn.Conv2d(in_ch, out_ch, kernel, bias=bias, groups=groups)
    expected = sum(p.numel() for p in layer.parameters())
    assert conv2d_parameter_count(in_ch, out_ch, kernel, bias=bias, groups=groups) == expected


def test_trace_of_a_stack_and_its_table():
    specs = [Conv2dSpec(8, 3, padding=1), Pool2dSpec(2), Conv2dSpec(4, 3, stride=2), LinearSpec(10)]
    rows = trace_shapes((3, 16, 16), specs)
    assert [r.output_shape for r in rows] == [(8, 16, 16), (8, 8, 8), (4, 3, 3), (10,)]
    # by hand: 8*3*3*3+8, 0, 4*8*3*3+4, 36*10+10
    assert [r.parameters for r in rows] == [224, 0, 292, 370]
    assert rows[0].name == "Conv2d(3, 8, kernel_size=3, padding=1)" and rows[3].input_shape == (4, 3, 3)
    table = format_trace(rows)
    assert "(4, 3, 3)" in table and table.splitlines()[-1].endswith("886")
    with pytest.raises(ShapeError, match=r"layer 2 .*kernel larger than padded input"):
        trace_shapes((1, 8, 8), [Conv2dSpec(4, 5), Pool2dSpec(2), Conv2dSpec(4, 3)])
    with pytest.raises(ShapeError, match=r"layer 1: Conv2dSpec needs a \(C, H, W\) input"):
        trace_shapes((1, 8, 8), [LinearSpec(4), Conv2dSpec(4, 3)])
