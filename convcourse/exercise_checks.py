"""Checks of the later hand exercises: multi-channel convolution, convolution as a matrix product, the
gradient of a convolution, receptive fields and parameter counts.

Test cells reach this module as ``checks.exercises()``: a private copy executed from this file right
after the cell has reloaded ``convcourse.checks``, whose helpers and trusted oracles it uses, so no
cell above can have replaced a function here. The rules of ``convcourse.checks`` hold: plain-Python
comparisons, oracles that reproduce a hand-worked canary first, hand answers never printed, and one
sentence naming the classic mistake from a private copy of ``convcourse.diagnosis``.
"""
from __future__ import annotations

import contextlib
import random
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch

import convcourse.checks as checks  # the copy the test cell has just reloaded
from convcourse.checks import CheckFailed, Matrix

Maps = list[Matrix]  # (channels, rows, columns)

# The receptive-field exercise: conv 5x5 -> conv 3x3 -> max-pool 2 -> conv 3x3, as (kernel_size, stride).
RF_STACK: tuple[tuple[int, int], ...] = ((5, 1), (3, 1), (2, 2), (3, 1))
RF_POOLS = (2,)  # which layers of RF_STACK pool
RF_NAMES = ("conv 5x5", "conv 3x3", "max-pool 2", "conv 3x3")


def _diagnosis() -> Any:
    return checks.private_diagnosis()


def _tensor_list(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, (list, tuple)) else value


def as_maps(name: str, value: Any) -> Maps:
    """``value`` as (channels, rows, columns) lists of floats, every channel the same size, or CheckFailed."""
    value = _tensor_list(value)
    if not isinstance(value, (list, tuple)) or not value:
        raise CheckFailed(f"{name} should be a list of feature maps, one per output channel (channels, rows, "
                          f"columns), not {type(value).__name__}")
    if all(isinstance(row, (list, tuple)) and row and not isinstance(row[0], (list, tuple)) for row in value):
        raise CheckFailed(f"{name} is one matrix (rows, columns); it should be a list of feature maps, one per "
                          "output channel (channels, rows, columns)")
    maps = [checks.as_matrix(f"{name}[{c}]", m) for c, m in enumerate(value)]
    if len({checks.shape_of(m) for m in maps}) > 1:
        raise CheckFailed(f"the channels of {name} have different sizes: {[checks.shape_of(m) for m in maps]}")
    return maps


def _report(name: str, got: Sequence[Matrix], want: Sequence[Matrix], reveal: bool, tol: float = 1e-4) -> str | None:
    if len(got) != len(want):
        return f"{name} has {len(got)} channel(s); it should have {len(want)}, one per filter"
    reports = [checks.matrix_report(f"{name}[{c}]", g, w, reveal, tol) for c, (g, w) in enumerate(zip(got, want))]
    return "\n".join(r for r in reports if r) or None


def _explain(got: Any, want: Any, variants: Callable[[], list], reveal: bool, tol: float = 1e-4) -> str:
    return checks.explain(lambda: _diagnosis().diagnose(got, want, variants(), reveal=reveal, tol=tol))


# ---------------------------------------------------------------- multi-channel convolution


def multi_example() -> tuple[Maps, list[Maps]]:
    """The course's two-channel input and its two (2, 2, 2) filters (convcourse.convviz), from a private copy."""
    viz = checks.private_module("convviz")
    return as_maps("MULTI_INPUT", viz.MULTI_INPUT), [as_maps(f"MULTI_FILTERS[{o}]", f)
                                                     for o, f in enumerate(viz.MULTI_FILTERS)]


def conv2d_multi_reference(x: Any, w: Any) -> Maps:
    """(C_out, H', W'): output channel o is the sum over input channels c of conv2d(x[c], w[o][c]) (trusted oracle)."""
    x = as_maps("x", x)
    w = [as_maps(f"w[{o}]", f) for o, f in enumerate(_tensor_list(w))]
    if any(len(f) != len(x) for f in w):
        raise ValueError(f"the filters need {len(x)} channels, one kernel per input channel")
    return [_diagnosis().sum_maps([checks.conv2d_reference(x[c], f[c]) for c in range(len(x))]) for f in w]


class MultiCase(NamedTuple):
    """An input (C_in, H, W) and filters (C_out, C_in, kh, kw), as nested lists."""

    x: Maps
    w: list[Maps]


def random_multi_cases(seed: int, count: int) -> list[MultiCase]:
    """``count`` random inputs of 1-3 channels (3-7 wide) with 1-3 filters of kernels 1-3 wide."""
    rng, cases = random.Random(seed), []
    for _ in range(count):
        cin, cout, rows, cols = rng.randint(1, 3), rng.randint(1, 3), rng.randint(3, 7), rng.randint(3, 7)
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        cases.append(MultiCase([checks.random_matrix(rng, rows, cols) for _ in range(cin)],
                               [[checks.random_matrix(rng, kh, kw) for _ in range(cin)] for _ in range(cout)]))
    return cases


def _multi_variants(x: Maps, w: list[Maps]) -> Callable[[], list]:
    return lambda: _diagnosis().multi_conv_variants(x, w, checks.conv2d_reference)


def check_multi_by_hand(answer: Any, *, name: str = "multi_by_hand") -> None:
    """Check the hand-worked multi-channel example; wrong entries are named, expected values never."""
    x, w = multi_example()
    got, want = as_maps(name, answer), conv2d_multi_reference(x, w)
    report = _report(name, got, want, reveal=False)
    if report:
        raise CheckFailed(report + _explain(_diagnosis().stack(got), _diagnosis().stack(want),
                                            _multi_variants(x, w), reveal=False))


def check_conv2d_multi(fn: Callable, cases: Sequence[MultiCase], *, name: str = "conv2d_multi") -> None:
    """Check ``fn(x, w)`` (NumPy arrays (C_in, H, W) and (C_out, C_in, kh, kw)) against PyTorch on every case."""
    for case in cases:
        want = conv2d_multi_reference(case.x, case.w)
        describe = (f"a {len(case.x)}x{checks.size_text(case.x[0])} input with {len(case.w)} filter(s) of "
                    f"{len(case.x)}x{checks.size_text(case.w[0][0])}")
        got = as_maps(f"the result of {name}", checks.call_student(name, fn, (np.array(case.x), np.array(case.w)), describe))
        report = _report(f"the result of {name}", got, want, reveal=True)
        if report:
            raise CheckFailed(f"on {describe}: {report}\n  the case was {case!r}" + _explain(
                _diagnosis().stack(got), _diagnosis().stack(want), _multi_variants(case.x, case.w), reveal=True))


# ---------------------------------------------------------------- convolution as a matrix product (unfold)


class BatchCase(NamedTuple):
    """A batch (N, C_in, H, W) and filters (C_out, C_in, kh, kw), as nested lists."""

    x: list[Maps]
    w: list[Maps]


def random_batch_cases(seed: int, count: int) -> list[BatchCase]:
    """``count`` random batches of 1-2 images with 1-3 channels, mostly non-square, and 1-3 filters."""
    rng, cases = random.Random(seed), []
    for multi in random_multi_cases(seed, count):
        images = [multi.x] + [[checks.random_matrix(rng, len(m), len(m[0])) for m in multi.x]
                              for _ in range(rng.randint(0, 1))]
        cases.append(BatchCase(images, multi.w))
    return cases


@contextlib.contextmanager
def _without_conv2d(name: str) -> Iterator[None]:
    """PyTorch's convolutions raise while the student's function runs: it must multiply, not call conv2d."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise CheckFailed(f"{name} calls PyTorch's conv2d; compute the convolution with F.unfold and a matrix "
                          "product instead")

    saved = torch.nn.functional.conv2d, torch.conv2d
    torch.nn.functional.conv2d = torch.conv2d = refuse
    try:
        yield
    finally:
        torch.nn.functional.conv2d, torch.conv2d = saved


def check_conv2d_unfold(fn: Callable, cases: Sequence[BatchCase], *, name: str = "conv2d_unfold") -> None:
    """Check ``fn(x, w)`` (float tensors (N, C_in, H, W), (C_out, C_in, kh, kw)) against PyTorch, without conv2d."""
    for case in cases:
        want = [conv2d_multi_reference(image, case.w) for image in case.x]
        shape = (len(want), len(want[0]), *checks.shape_of(want[0][0]))
        describe = f"a batch of shape {(len(case.x), len(case.x[0]), *checks.shape_of(case.x[0][0]))} with " \
                   f"filters of shape {(len(case.w), len(case.w[0]), *checks.shape_of(case.w[0][0]))}"
        with _without_conv2d(name):
            result = checks.call_student(name, fn, (torch.tensor(case.x, dtype=torch.float32),
                                             torch.tensor(case.w, dtype=torch.float32)), describe)
        got_shape = tuple(getattr(result, "shape", ()))
        if not isinstance(result, torch.Tensor) or got_shape != shape:
            swapped = got_shape == (*shape[:2], shape[3], shape[2]) and shape[2] != shape[3]
            returned = f"a tensor of shape {got_shape}" if isinstance(result, torch.Tensor) else type(result).__name__
            raise CheckFailed(f"on {describe}: {name} returns {returned}; it should return a tensor of shape "
                              f"(N, C_out, H_out, W_out) = {shape}" + (_explain_swapped_reshape() if swapped else ""))
        got = [as_maps(f"the result of {name}[{n}]", image) for n, image in enumerate(result.detach().tolist())]
        report = _report(f"the result of {name}", [m for image in got for m in image],
                         [m for image in want for m in image], reveal=True)
        if report:
            raise CheckFailed(f"on {describe}: {report}\n  the case was {case!r}" + _explain(
                _diagnosis().stack(got), _diagnosis().stack(want),
                lambda case=case: _diagnosis().unfold_variants(case.x, case.w, checks.conv2d_reference), reveal=True))


def _explain_swapped_reshape() -> str:
    return checks.explain(lambda: _diagnosis().tagged("height and width are swapped in the last reshape (the matrix "
                                                      "product gives (N, C_out, H_out * W_out), row by row).",
                                                      "reshape-sides-swapped"))


# ---------------------------------------------------------------- the gradient with respect to the input


class GradCase(NamedTuple):
    """The gradient g of the output (H', W') and the kernel k (kh, kw) of a stride-1, unpadded conv2d."""

    g: Matrix
    k: Matrix


def input_grad_reference(g: Any, k: Any) -> Matrix:
    """dL/dx of conv2d(x, k) for dL/dy = g, in plain Python: x[a][b] gets g[i][j] * k[a - i][b - j] from every output."""
    g, k = checks.as_matrix("g", g), checks.as_matrix("k", k)
    rows, cols = len(g) + len(k) - 1, len(g[0]) + len(k[0]) - 1
    grad = [[0.0] * cols for _ in range(rows)]
    for i, row in enumerate(g):
        for j, value in enumerate(row):
            for a, krow in enumerate(k):
                for b, weight in enumerate(krow):
                    grad[i + a][j + b] += value * weight
    return checks.Reference(grad, lambda: _diagnosis().input_grad_variants(g, k, checks.conv2d_reference))


def random_grad_cases(seed: int, count: int) -> list[GradCase]:
    """``count`` random output gradients (1-5 wide) and kernels (1-4 wide)."""
    rng = random.Random(seed)
    return [GradCase(checks.random_matrix(rng, rng.randint(1, 5), rng.randint(1, 5)),
                     checks.random_matrix(rng, rng.randint(1, 4), rng.randint(1, 4))) for _ in range(count)]


def check_conv2d_input_grad(fn: Callable, cases: Sequence[GradCase], *, name: str = "conv2d_input_grad") -> None:
    """Check ``fn(g, k)`` (NumPy arrays) against the gradient of conv2d with respect to its input."""
    for case in cases:
        want = input_grad_reference(case.g, case.k)
        describe = f"a {checks.size_text(case.g)} output gradient with a {checks.size_text(case.k)} kernel"
        result = checks.call_student(name, fn, (np.array(case.g), np.array(case.k)), describe)
        shape, size = tuple(getattr(result, "shape", ())), checks.shape_of(want)
        if len(shape) == 2 and shape != size:  # before the entries: an empty array has none to compare
            raise CheckFailed(f"on {describe}: {name} returns an array of shape {shape}; dL/dx has the input's shape "
                              f"(H_out + kh - 1, W_out + kw - 1) = {size}\n  the case was {case!r}" + _explain(
                                  shape, size, lambda case=case: _diagnosis().grad_shape_variants(
                                      checks.shape_of(case.g), checks.shape_of(case.k)), reveal=True))
        checks.check_result(name, result, want, describe, case)


# ---------------------------------------------------------------- receptive fields


def _field_reference(layers: Sequence[tuple[int, int]]) -> list[int]:
    """The receptive field after each (kernel_size, stride) layer, from a private copy of convcourse.shapes.

    Private, like every oracle of a hand task here: the checks call it, a notebook never should.
    """
    return checks.private_shapes().receptive_fields(layers)


def _as_count(what: str, value: Any) -> int:
    if isinstance(value, float):
        raise CheckFailed(f"{what} is {value!r}, a float; write whole numbers")
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise CheckFailed(f"{what} is {value!r}; write a whole number")
    return int(value)


def check_fields_by_hand(answer: Any, *, name: str = "fields_by_hand") -> None:
    """Check the receptive field after each layer of RF_STACK; wrong entries are named, right values never."""
    want = _field_reference(RF_STACK)
    if not isinstance(answer, (list, tuple)) or len(answer) != len(want):
        raise CheckFailed(f"{name} should be a list of {len(want)} whole numbers, one per layer, not {answer!r}")
    got = [_as_count(f"{name}[{i}]", v) for i, v in enumerate(answer)]
    wrong = [f"  {name}[{i}] (after layer {i + 1}, {RF_NAMES[i]}): {g} is not right"
             for i, (g, w) in enumerate(zip(got, want)) if g != w]
    if wrong:
        raise CheckFailed(f"{len(wrong)} of {len(want)} receptive fields need another look:\n" + "\n".join(wrong)
                          + _explain(tuple(got), tuple(want), lambda: _diagnosis().field_variants(RF_STACK, RF_POOLS),
                                     reveal=False))


def random_field_cases(seed: int, count: int) -> list[list[tuple[int, int]]]:
    """``count`` random stacks of 1-6 layers with kernels 1-7 and strides 1-3."""
    rng = random.Random(seed)
    return [[(rng.randint(1, 7), rng.randint(1, 3)) for _ in range(rng.randint(1, 6))] for _ in range(count)]


def check_receptive_field(fn: Callable, cases: Sequence[Sequence[tuple[int, int]]], *,
                          name: str = "receptive_field") -> None:
    """Check ``fn(layers)`` (a list of (kernel_size, stride) pairs) returns the last layer's receptive field.

    Every case runs before a wrong one is reported, so the mistake named is the one that explains them all.
    """
    stacks = [[tuple(layer) for layer in layers] for layers in cases]
    got = [_as_count(f"{name}({layers})", checks.call_student(name, fn, ([*layers],), f"the layers {layers}"))
           for layers in stacks]
    want = [_field_reference(layers)[-1] for layers in stacks]
    wrong = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), None)
    if wrong is not None:
        raise CheckFailed(f"{name}({stacks[wrong]}) gives {got[wrong]}; the right answer is {want[wrong]}" + _explain(
            tuple(got), tuple(want), lambda: _field_mistakes(stacks), reveal=True))


def _field_mistakes(stacks: Sequence[Sequence[tuple[int, int]]]) -> list:
    """Each receptive-field slip as one Variant over all the stacks: its last layer's field on each, in order."""
    found = [{v.tag: v for v in _diagnosis().field_variants(layers)} for layers in stacks]
    return [found[0][tag]._replace(answer=tuple(each[tag].answer[-1] for each in found))
            for tag in found[0] if all(tag in each for each in found)]


# ---------------------------------------------------------------- parameter counts


def _parameter_answers() -> dict[str, int]:
    """The parameter-count questions, worked out with a private copy of convcourse.shapes (ConvModel1's layers)."""
    shapes = checks.private_shapes()
    conv, head = shapes.Conv2dSpec(32, 5, padding=2), shapes.LinearSpec(128)
    pooled = shapes.trace_shapes((1, 28, 28), [conv, shapes.Pool2dSpec(2, 2), head])
    unpooled = shapes.trace_shapes((1, 28, 28), [conv, head])
    return {"linear": pooled[-1].parameters, "linear_no_pool": unpooled[-1].parameters,
            "gap_head": shapes.LinearSpec(10).parameters((32,))}


def _count_mistakes() -> dict[str, list]:
    """For each question, the classic wrong counts: Variants of plain ints."""
    d, answers = _diagnosis(), _parameter_answers()
    # each names the slip without the number of values that reach the Linear layer: that is half the answer
    before = "the maps are counted before the 2x2 max pool halves their height and width: count what leaves the pool"
    after = "the maps are counted as if pooled; without the pool the maps reach the Linear layer at full size"
    return {"linear": d.count_variants(32 * 14 * 14, 128, 1, 1, linear=True) + [
                d.Variant(answers["linear_no_pool"], before, tag="counted-before-pool"),
                d.Variant(14 * 14 * 128 + 128, "one map is counted: Flatten puts the values of every feature map in a "
                          "row", tag="count-one-channel")],
            "linear_no_pool": d.count_variants(32 * 28 * 28, 128, 1, 1, linear=True) + [
                d.Variant(answers["linear"], after, tag="counted-as-if-pooled")],
            "gap_head": d.count_variants(32, 10, 1, 1, linear=True) + [
                d.Variant(32 * 14 * 14 * 10 + 10, "the maps are not averaged: global average pooling leaves one "
                          "value per feature map", tag="gap-not-averaged"),
                d.Variant(32 * 128 + 128 + 128 * 10 + 10, "the hidden Linear(.., 128) is kept; the head replaces "
                          "everything after the pool, so one Linear layer gives the 10 scores", tag="gap-hidden-layer-kept")]}


def check_parameter_counts(answers: Any, *, name: str = "param_counts") -> None:
    """Check the parameter-count dict, naming each wrong count without giving the right one away."""
    want = _parameter_answers()
    problems, parsed = checks.answer_entries(answers, list(want), lambda key, value: _as_count("the count", value),
                                             lambda key: f"{name}[{key!r}]", f"{name} should be a dict {{question: count}}")
    causes = []
    for key, got in parsed:
        if got != want[key]:
            problems.append(f"  {name}[{key!r}]: {got:,} is not right")
            causes.append(_explain(got, want[key], lambda key=key: _count_mistakes()[key], reveal=False)
                          .replace("Likely cause: ", f"Likely cause ({key}): "))
    if problems:
        raise CheckFailed(f"{len(problems)} of {len(want)} counts need another look:\n" + "\n".join(problems)
                          + "".join(causes))


class CountCase(NamedTuple):
    """A Conv2d layer to count: channels in and out, (kh, kw), bias."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    bias: bool = True


def random_count_cases(seed: int, count: int) -> list[CountCase]:
    """``count`` random Conv2d layers, rectangular kernels and layers without bias among them."""
    rng = random.Random(seed)
    return [CountCase(rng.randint(1, 64), rng.randint(1, 128), (rng.randint(1, 7), rng.randint(1, 7)),
                      rng.random() > 0.3) for _ in range(count)]


def check_conv_parameters(fn: Callable, cases: Sequence[CountCase], *, name: str = "conv_parameters") -> None:
    """Check ``fn(in_channels, out_channels, kernel_size, bias)`` counts a Conv2d's weights and biases."""
    shapes = checks.private_shapes()
    for case in cases:
        want = shapes.conv2d_parameter_count(case.in_channels, case.out_channels, case.kernel_size, bias=case.bias)
        got = _as_count(f"{name}{tuple(case)}", checks.call_student(name, fn, tuple(case), f"{case!r}"))
        if got != want:
            raise CheckFailed(f"{name}{tuple(case)} gives {got:,}; nn.Conv2d has {want:,} parameters" + _explain(
                got, want, lambda case=case: _diagnosis().count_variants(case.in_channels, case.out_channels,
                                                                         *case.kernel_size, case.bias), reveal=True))
