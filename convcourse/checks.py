"""Helpers that the notebooks' autograded test cells call: clear messages, and oracles student code cannot quietly replace.

A test cell starts with::

    import importlib, convcourse.checks
    checks = importlib.reload(convcourse.checks)

so whatever a cell above did to this module's functions is undone before anything is checked.
Three more rules keep a notebook from grading itself:

* comparisons are plain Python on nested lists (no ``np.allclose``/``torch.allclose`` to patch);
* a PyTorch oracle is trusted only after it reproduces a case worked out by hand (a canary), so a
  patched ``torch.nn.functional`` function fails loudly instead of agreeing with the student;
* the shape oracle and the course's example numbers come from private copies of
  ``convcourse.shapes`` / ``convcourse.convviz`` loaded from their files, not from ``sys.modules``.

A failure ends with one sentence naming the classic mistake behind it, when the answer matches one
(``convcourse.diagnosis``, also a private copy). The diagnosis runs only while a CheckFailed is
being raised and any error inside it is dropped, so it can add a sentence but never change a result.
Habits that are not wrong (a softmax before the loss, ...) get a HabitWarning line on stdout, and no points are lost
(not a Python warning: those go to stderr, and nbgrader scores a test cell that wrote to stderr 0).
Code that rewrites the import system or builtins is beyond these checks; the grading sandbox owns that.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import numbers
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

Matrix = list[list[float]]

_PACKAGE_DIR = Path(__file__).resolve().parent
_MAX_LISTED = 5  # wrong entries named in one message


class CheckFailed(AssertionError):
    """A check failed; the message says what is wrong and where."""


class TamperingError(CheckFailed):
    """A function the checks rely on no longer does what it should (it was replaced in this notebook)."""


class HabitWarning(UserWarning):
    """Not wrong, and no points are lost, but a habit that costs accuracy or speed (its name heads the printed line)."""


def private_module(name: str) -> ModuleType:
    """A fresh copy of ``convcourse.<name>`` executed from its file, never registered in ``sys.modules``."""
    path = _PACKAGE_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"convcourse has no module {name!r} (looked for {path})")
    private_name = f"convcourse._private_{name}"
    spec = importlib.util.spec_from_file_location(private_name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered only while it executes: dataclasses look their module up in sys.modules.
    sys.modules[private_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(private_name, None)
    return module


@functools.cache  # one private copy per load of this module (each test cell reloads it)
def _diagnosis() -> ModuleType:
    return private_module("diagnosis")


def _explain(diagnose: Callable[[], Any], lead: str = "Likely cause: ") -> str:
    """``lead`` + the sentence ``diagnose()`` returns, as the last line of a failure; "" when it has none or fails."""
    try:
        text = diagnose()
        if type(text) is not str or not text:  # a str subclass could rewrite the message it is added to
            return ""
        return f"\n  {lead}{text}" + ("" if text.endswith(".") else ".")
    except Exception:  # noqa: BLE001 - a bug here must never hide or replace the failure being reported
        return ""


def _tagged(text: str, tag: str) -> str:
    """``text`` carrying the stable name of its classic mistake (``diagnosis.MISTAKES``); as it is if that fails."""
    try:
        named = _diagnosis().tagged(text, tag)
        return named if type(named) is str else text
    except Exception:  # noqa: BLE001 - the name is for the class report: it must never hide the failure
        return text


# ---------------------------------------------------------------- matrices


def as_matrix(name: str, value: Any) -> Matrix:
    """``value`` (nested list, NumPy array or tensor) as a rectangular list of rows of floats, or CheckFailed."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if isinstance(value, (int, float)):
        raise CheckFailed(f"{name} is a single number ({value}); write it as a nested list of rows, e.g. [[{value}]]")
    if isinstance(value, (list, tuple)) and not value:
        raise CheckFailed(f"{name} is empty; it should be a non-empty nested list of rows (or a 2-D array)")
    if not isinstance(value, (list, tuple)):
        raise CheckFailed(f"{name} should be a non-empty nested list of rows (or a 2-D array), not {type(value).__name__}")
    rows = []
    for i, row in enumerate(value):
        if hasattr(row, "tolist") and not isinstance(row, (list, tuple)):
            row = row.tolist()
        if not isinstance(row, (list, tuple)):
            raise CheckFailed(f"row {i} of {name} is {row!r}; every row must itself be a list of numbers")
        rows.append([_number(name, i, j, entry) for j, entry in enumerate(row)])
    if any(len(row) != len(rows[0]) for row in rows):
        raise CheckFailed(f"the rows of {name} have different lengths: {[len(row) for row in rows]}")
    if not rows[0]:
        raise CheckFailed(f"the rows of {name} are empty")
    return rows


def _number(name: str, i: int, j: int, entry: Any) -> float:
    if hasattr(entry, "tolist") and not isinstance(entry, (list, tuple)):
        entry = entry.tolist()  # NumPy scalars and 0-d tensors become plain numbers
    if isinstance(entry, bool) or not isinstance(entry, numbers.Real):
        raise CheckFailed(f"{name}[{i}][{j}] is {entry!r}, not a number")
    if not math.isfinite(entry):
        raise CheckFailed(f"{name}[{i}][{j}] is {entry}; every entry must be a finite number")
    return float(entry)


def shape_of(matrix: Matrix) -> tuple[int, int]:
    """(rows, columns) of a matrix from :func:`as_matrix`."""
    return len(matrix), len(matrix[0])


def check_matrix(name: str, answer: Any, expected: Any, *, reveal: bool = True, tol: float = 1e-4) -> None:
    """Raise CheckFailed naming the shape mismatch or the wrong entries of ``answer``; quiet when it matches.

    When ``expected`` is a :class:`Reference`, a last line names the classic mistake ``answer`` matches;
    with ``reveal=False`` only mistakes whose name gives no expected value away are named.
    """
    got, want = as_matrix(name, answer), as_matrix("expected", expected)
    report = _matrix_report(name, got, want, reveal, tol)
    if report:
        raise CheckFailed(report + _explain_matrix(got, expected, reveal, tol))


def _explain_matrix(got: Matrix, expected: Any, reveal: bool, tol: float) -> str:
    variants = getattr(expected, "variants", None)
    return _explain(lambda: _diagnosis().diagnose(got, as_matrix("expected", expected), variants(),
                                                  reveal=reveal, tol=tol)) if callable(variants) else ""


def _matrix_report(name: str, got: Matrix, want: Matrix, reveal: bool, tol: float) -> str | None:
    if shape_of(got) != shape_of(want):
        return f"{name} has {_dims(got)}; it should have {_dims(want)}"
    wrong = [
        (i, j, g, w)
        for i, (grow, wrow) in enumerate(zip(got, want))
        for j, (g, w) in enumerate(zip(grow, wrow))
        if abs(g - w) > tol * (1 + abs(w))
    ]
    if wrong:
        lines = [
            f"  row {i}, column {j}: you have {_fmt(g)}" + (f", expected {_fmt(w)}" if reveal else "")
            for i, j, g, w in wrong[:_MAX_LISTED]
        ]
        more = f"\n  ... and {len(wrong) - _MAX_LISTED} more" if len(wrong) > _MAX_LISTED else ""
        return (f"{len(wrong)} of {len(want) * len(want[0])} entries of {name} are wrong "
                f"(rows and columns count from 0):\n" + "\n".join(lines) + more)
    return None


def _dims(matrix: Matrix) -> str:
    rows, cols = shape_of(matrix)
    return f"{rows} row{'s' * (rows != 1)} and {cols} column{'s' * (cols != 1)}"


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e12 else f"{value:.6g}"


# ---------------------------------------------------------------- convolution and pooling oracles

# Worked out by hand: cross-correlation (no kernel flip) and max pooling of the 3x3 input 1..9.
_CANARY_INPUT = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
_CANARY_KERNEL = [[1.0, 2.0], [3.0, 4.0]]
_CANARY_CONV = [[37.0, 47.0], [67.0, 77.0]]
_CANARY_POOL = [[5.0, 6.0], [8.0, 9.0]]  # size 2, stride 1


def _torch_conv(x: Matrix, k: Matrix) -> Matrix:
    inp = torch.tensor(x, dtype=torch.float64)[None, None]
    weight = torch.tensor(k, dtype=torch.float64)[None, None]
    return torch.nn.functional.conv2d(inp, weight)[0, 0].tolist()


def _torch_pool(x: Matrix, size: int, stride: int) -> Matrix:
    inp = torch.tensor(x, dtype=torch.float64)[None, None]
    return torch.nn.functional.max_pool2d(inp, size, stride)[0, 0].tolist()


class Reference(list):
    """An oracle's result (a Matrix, equal to the plain list) that can also work out the classic wrong answers."""

    def __init__(self, rows: Matrix, variants: Callable[[], list]) -> None:
        super().__init__(rows)
        self.variants = variants  # called only when an answer is already wrong


def _trusted(result: Any, canary: Any, expected: Matrix, what: str) -> Any:
    try:
        ok = as_matrix(what, canary) == expected
    except CheckFailed:
        ok = False
    if not ok:
        raise TamperingError(f"{what} no longer computes what PyTorch's does (it was changed in this "
                             "notebook); restart the kernel and run the notebook without that change")
    return result


def conv2d_reference(x: Any, k: Any) -> Matrix:
    """``torch.nn.functional.conv2d`` of one 2-D input with one 2-D kernel, stride 1, no padding."""
    x, k = as_matrix("x", x), as_matrix("k", k)
    result = _trusted(_torch_conv(x, k), _torch_conv(_CANARY_INPUT, _CANARY_KERNEL), _CANARY_CONV,
                      "torch.nn.functional.conv2d")
    return Reference(result, lambda: _diagnosis().conv_variants(x, k, conv2d_reference))


def maxpool2d_reference(x: Any, size: int, stride: int) -> Matrix:
    """``torch.nn.functional.max_pool2d`` of one 2-D input (square window, no padding, floor rule)."""
    x = as_matrix("x", x)
    result = _trusted(_torch_pool(x, size, stride), _torch_pool(_CANARY_INPUT, 2, 1), _CANARY_POOL,
                      "torch.nn.functional.max_pool2d")
    return Reference(result, lambda: _diagnosis().pool_variants(x, size, stride, result))


# convviz defines the example numbers that widgets re-exports; a private copy of it cannot have been edited.
def course_grid(name: str) -> Matrix:
    """A grid of the course's examples in ``convcourse.convviz`` (EXAMPLE_INPUT, GIF_INPUT, EDGE_KERNEL, ...), privately."""
    return as_matrix(name, getattr(private_module("convviz"), name))


# The test cells of notebooks released before issue 21's review call example_input and example_kernel (with
# conv2d_reference); today's compute Tasks 1 and 2 inside their checks, because a test cell that spelled out the
# oracle's call would show a student the one line that prints the answer.
def example_input() -> Matrix:
    """The course's 5x5 example input (``convcourse.widgets.EXAMPLE_INPUT``), from a private copy."""
    return course_grid("EXAMPLE_INPUT")


def example_kernel() -> Matrix:
    """The course's 3x3 example kernel (``convcourse.widgets.EXAMPLE_KERNEL``), from a private copy."""
    return course_grid("EXAMPLE_KERNEL")


def check_conv_by_hand(answer: Any, *, name: str = "conv_by_hand") -> None:
    """Check Task 1, the example input convolved with the example kernel by hand; wrong entries named, values never."""
    check_matrix(name, answer, conv2d_reference(example_input(), example_kernel()), reveal=False)


def check_pool_by_hand(answer: Any, *, name: str = "pool_by_hand") -> None:
    """Check Task 2, Task 1's feature map max-pooled (2x2 window, stride 2) by hand; its value is never shown."""
    conv = conv2d_reference(example_input(), example_kernel())
    check_matrix(name, answer, maxpool2d_reference(conv, 2, 2), reveal=False)


class ConvCase(NamedTuple):
    """A 2-D input and a 2-D kernel for conv2d_naive."""

    x: Matrix
    k: Matrix


class PoolCase(NamedTuple):
    """A 2-D input, window size and stride for maxpool2d."""

    x: Matrix
    size: int
    stride: int


def _random_matrix(rng: random.Random, rows: int, cols: int) -> Matrix:
    # Two decimals keep failure messages readable while still catching integer-only arithmetic.
    return [[round(rng.uniform(-3, 3), 2) for _ in range(cols)] for _ in range(rows)]


def random_conv_cases(seed: int, count: int) -> list[ConvCase]:
    """``count`` random (input, kernel) pairs: rectangular inputs 3-9 wide, kernels 1-4 wide, kernel never larger."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        rows, cols = rng.randint(3, 9), rng.randint(3, 9)
        cases.append(ConvCase(_random_matrix(rng, rows, cols),
                              _random_matrix(rng, rng.randint(1, min(4, rows)), rng.randint(1, min(4, cols)))))
    return cases


def random_pool_cases(seed: int, count: int) -> list[PoolCase]:
    """``count`` random (input, size, stride) triples, including strides that do not divide the input."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        rows, cols = rng.randint(2, 9), rng.randint(2, 9)
        size = rng.randint(1, min(3, rows, cols))
        cases.append(PoolCase(_random_matrix(rng, rows, cols), size, rng.randint(1, 3)))
    return cases


def _call(name: str, fn: Callable, args: tuple, describe: str) -> Any:
    if not callable(fn):
        raise CheckFailed(f"{name} should be a function, not {type(fn).__name__}")
    try:
        return fn(*args)
    except NotImplementedError:
        raise CheckFailed(f"{name} is not written yet (it raises NotImplementedError)") from None
    except Exception as error:  # the student's bug: report it against the case that triggered it
        raise CheckFailed(f"{name} raised {type(error).__name__}: {error} on {describe}") from error


def check_conv2d(fn: Callable, cases: Sequence[ConvCase], *, name: str = "conv2d_naive") -> None:
    """Check ``fn(x, k)`` (NumPy arrays in) against PyTorch's conv2d on every case."""
    for case in cases:
        expected = conv2d_reference(case.x, case.k)  # before the student's function can touch the data
        describe = f"a {_size(case.x)} input with a {_size(case.k)} kernel"
        result = _call(name, fn, (np.array(case.x), np.array(case.k)), describe)
        _check_case(name, result, expected, describe, case)


def check_maxpool2d(fn: Callable, cases: Sequence[PoolCase], *, name: str = "maxpool2d") -> None:
    """Check ``fn(x, size, stride)`` (NumPy array in) against PyTorch's max_pool2d on every case."""
    for case in cases:
        expected = maxpool2d_reference(case.x, case.size, case.stride)
        describe = f"a {_size(case.x)} input with size={case.size}, stride={case.stride}"
        result = _call(name, fn, (np.array(case.x), case.size, case.stride), describe)
        _check_case(name, result, expected, describe, case)


def _check_case(name: str, result: Any, expected: Matrix, describe: str, case: tuple) -> None:
    try:
        got = as_matrix(f"the result of {name}", result)
    except CheckFailed as failure:  # an empty array one row and column short of a 1-row result: the + 1 left out
        want = as_matrix("expected", expected)
        empty = tuple(getattr(result, "shape", ())) == (len(want) - 1, len(want[0]) - 1)
        raise CheckFailed(f"on {describe}: {failure}\n  the case was {case!r}"
                          + (_explain_matrix([], expected, True, 1e-4) if empty else "")) from None
    report = _matrix_report(f"the result of {name}", got, as_matrix("expected", expected), True, 1e-4)
    if report:  # the diagnosis goes last, after the case it is about
        raise CheckFailed(f"on {describe}: {report}\n  the case was {case!r}"
                          + _explain_matrix(got, expected, True, 1e-4))


def _size(matrix: Matrix) -> str:
    return "{}x{}".format(*shape_of(matrix))


# ---------------------------------------------------------------- output shapes


class ShapeCase(NamedTuple):
    """A Conv2d layer on paper: input (C, H, W), ``num_filters`` filters of ``filter_shape`` (C, kh, kw)."""

    input_shape: tuple[int, int, int]
    num_filters: int
    filter_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def describe(self) -> str:
        """The case in words, as the notebook lists it."""
        return (f"input {self.input_shape}, {self.num_filters} filters of size {self.filter_shape}, "
                f"stride {self.stride}, padding {self.padding}")


# output_dimensions' Task 1: seven layers on paper, numbered as the notebook lists them.
PAPER_CASES: dict[int, ShapeCase] = {
    1: ShapeCase((1, 28, 28), 16, (1, 5, 5)),
    2: ShapeCase((2, 32, 32), 24, (2, 3, 3)),
    3: ShapeCase((3, 32, 32), 8, (1, 3, 3)),
    4: ShapeCase((10, 32, 32), 3, (10, 2, 2), (2, 2)),
    5: ShapeCase((11, 8, 16), 7, (11, 3, 3), (2, 2), (1, 1)),
    6: ShapeCase((1, 4, 4), 2, (1, 7, 7), (1, 1), (1, 1)),
    7: ShapeCase((128, 256, 256), 112, (128, 3, 3), (1, 1), (1, 1)),
}
# The same seven in the order of the notebooks released before issue 21's review: their locked cells and tests
# (compare_with_conv2d, check_shape_answers without ``cases``) number the answers this way.
SHAPE_CASES: dict[int, ShapeCase] = {old: PAPER_CASES[new] for old, new in enumerate((1, 2, 4, 5, 7, 3, 6), start=1)}


@functools.cache  # one private copy per load of this module (each test cell reloads it)
def _private_shapes() -> ModuleType:
    return private_module("shapes")


def _expected_output_shape(case: ShapeCase) -> tuple[int, int, int] | None:
    """The (C, H, W) output of ``case`` from a private copy of convcourse.shapes, or None where it is invalid.

    Private: the hand tasks' oracle, which the checks call and a notebook never should.
    """
    shapes = _private_shapes()
    try:
        return shapes.conv2d_output_shape(case.input_shape, case.num_filters, case.filter_shape[1:],
                                          case.stride, case.padding, filter_channels=case.filter_shape[0])
    except shapes.ShapeError:
        return None


def as_shape_answer(what: str, value: Any) -> tuple[int, int, int] | None:
    """A student's answer as a (C, H, W) tuple of ints or None, or CheckFailed saying what form it should take."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise CheckFailed(f"{what} is {value!r}; write a tuple (channels, height, width), or None if invalid")
    for entry in value:
        if isinstance(entry, float):
            raise CheckFailed(f"{what} is {value!r}: {entry} is a float; sizes are whole numbers (use // to "
                              "divide and round down)")
        if isinstance(entry, bool) or not hasattr(entry, "__index__"):
            raise CheckFailed(f"{what} is {value!r}; every entry must be an int")
    return tuple(int(entry) for entry in value)


def answer_entries(answers: Any, keys: Sequence[Any], parse: Callable[[Any, Any], Any], label: Callable[[Any], str],
                   what: str) -> tuple[list[str], list[tuple[Any, Any]]]:
    """(problem lines, [(key, parsed answer)]) of a dict of hand answers: a missing or malformed entry is a problem."""
    if not isinstance(answers, dict):
        raise CheckFailed(f"{what}, not {type(answers).__name__}")
    problems, parsed = [], []
    for key in keys:
        if key not in answers:
            problems.append(f"  {label(key)}: no answer")
            continue
        try:
            parsed.append((key, parse(key, answers[key])))
        except CheckFailed as failure:
            problems.append(f"  {label(key)}: {failure}")
    return problems, parsed


def check_shape_answers(answers: Any, numbers: Sequence[int], cases: dict[int, ShapeCase] | None = None) -> None:
    """Check ``answers[n]`` for each case number ``n`` of ``cases``, naming every wrong case without its answer.

    ``cases`` defaults to SHAPE_CASES, the numbering the test cells of notebooks released before issue 21's review use.
    """
    cases = SHAPE_CASES if cases is None else cases
    problems, parsed = answer_entries(answers, numbers, lambda number, value: as_shape_answer(f"answers[{number}]",
                                                                                              value),
                                      lambda number: f"case {number}", "answers should be a dict {case number: answer}")
    causes: dict[str, list[int]] = {}
    for number, got in parsed:
        want = _expected_output_shape(cases[number])
        if got != want:
            problems.append(f"  case {number}: {got!r} is not right")
            causes.setdefault(_shape_mistake(got, cases[number], reveal=False), []).append(number)
    if problems:  # one diagnosis line per mistake, naming the cases it explains; nothing that says which are invalid
        raise CheckFailed(f"{len(problems)} of {len(numbers)} answers need another look:\n" + "\n".join(problems)
                          + "".join(_explain(lambda m=mistake: m, f"Likely cause (case{'s' * (len(which) > 1)} "
                                             f"{', '.join(map(str, which))}): ") for mistake, which in causes.items()))


def _shape_mistake(got: tuple | None, case: ShapeCase, *, reveal: bool) -> str:
    """The classic slip that turns ``case`` into ``got`` ("" when none or unsure); computed with the private oracle."""
    try:
        diagnosis, want = _diagnosis(), _expected_output_shape(case)
        return diagnosis.diagnose(got, want, diagnosis.shape_variants(case, _expected_output_shape), reveal=reveal) or ""
    except Exception:  # noqa: BLE001 - never let the diagnosis hide the failure
        return ""


def random_shape_cases(seed: int, count: int) -> list[ShapeCase]:
    """``count`` random cases, some with mismatched channels or kernels larger than the padded input."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        channels = rng.randint(1, 16)
        filter_channels = channels if rng.random() > 0.15 else channels + rng.randint(1, 3)
        cases.append(ShapeCase((channels, rng.randint(1, 40), rng.randint(1, 40)), rng.randint(1, 64),
                               (filter_channels, rng.randint(1, 7), rng.randint(1, 7)),
                               (rng.randint(1, 3), rng.randint(1, 3)), (rng.randint(0, 3), rng.randint(0, 3))))
    return cases


def check_output_shape_function(fn: Callable, cases: Sequence[ShapeCase], *, name: str = "output_shape",
                                reveal: bool = True) -> None:
    """Check ``fn(input_shape, num_filters, filter_shape, stride, padding)`` on every case.

    ``reveal=False`` (cases that are also hand tasks) names the wrong case and the mistake, never the answer.
    """
    for case in cases:
        want = _expected_output_shape(case)
        got = as_shape_answer(f"{name}(...)", _call(name, fn, tuple(case), case.describe()))
        if got != want:
            verdict = f"the right answer is {want!r}" if reveal else "that is not right (a hand task: its answer stays hidden)"
            raise CheckFailed(f"{name} gives {got!r} for {case.describe()}; {verdict}"
                              + _explain(lambda got=got, case=case: _shape_mistake(got, case, reveal=reveal)))


def conv2d_forward_shape(case: ShapeCase) -> tuple[int, int, int] | None:
    """Shape of a real ``nn.Conv2d`` forward pass on zeros for ``case``, or None where PyTorch refuses it."""
    layer = nn.Conv2d(case.filter_shape[0], case.num_filters, case.filter_shape[1:], case.stride, case.padding)
    try:
        with torch.no_grad():
            return tuple(layer(torch.zeros(1, *case.input_shape))[0].shape)
    except RuntimeError:
        return None


def _same_shape(mine: Any, real: tuple[int, ...] | None) -> bool:
    """An answer agrees with PyTorch whether it is written as a tuple or a list."""
    return (tuple(mine) if isinstance(mine, list) else mine) == real


def compare_with_conv2d(answers: dict) -> str:
    """A table of each answer next to what a real ``nn.Conv2d`` forward pass produces, numbered as SHAPE_CASES.

    Kept for the notebooks released before issue 21, whose locked cell calls it; today's notebook compares the
    student's ``output_shape`` with PyTorch on other layers (compare_function_with_conv2d).
    """
    lines = [f"{'case':<6}{'your answer':<20}{'nn.Conv2d gives':<20}agree"]
    for number, case in SHAPE_CASES.items():
        mine, real = answers.get(number, "(none)"), conv2d_forward_shape(case)
        shown = "error" if real is None else str(real)
        lines.append(f"{number:<6}{str(mine):<20}{shown:<20}{'yes' if _same_shape(mine, real) else 'NO'}")
    return "\n".join(lines)


# The first layer of cnn_experiments' conv_model, the original lab's second layer (stride 1 and 2) and three odd
# layers: none of them is a hand task.
PYTORCH_CASES: list[ShapeCase] = [
    ShapeCase((1, 28, 28), 32, (1, 5, 5), (1, 1), (2, 2)),
    ShapeCase((32, 28, 28), 64, (32, 3, 3), (1, 1), (1, 1)),
    ShapeCase((32, 28, 28), 64, (32, 3, 3), (2, 2), (1, 1)),
    ShapeCase((3, 9, 20), 5, (3, 4, 6), (3, 2), (0, 1)),
    ShapeCase((2, 5, 5), 1, (2, 7, 3)),
    ShapeCase((4, 12, 12), 8, (3, 3, 3)),
]


def compare_function_with_conv2d(fn: Callable, cases: Sequence[ShapeCase] = PYTORCH_CASES, *,
                                 name: str = "output_shape") -> str:
    """A table of ``fn`` on each case next to a real ``nn.Conv2d`` forward pass; CheckFailed if ``fn`` is unwritten."""
    lines = []
    for case in cases:
        mine, real = _call(name, fn, tuple(case), case.describe()), conv2d_forward_shape(case)
        shown = "an error" if real is None else str(real)
        lines += [case.describe(), f"    {name} gives {mine}, nn.Conv2d gives {shown}: "
                  f"{'agree' if _same_shape(mine, real) else 'DIFFERENT'}"]
    return "\n".join(lines)


def exercises() -> ModuleType:
    """The checks of the later hand exercises (``convcourse.exercise_checks``), loaded fresh from its file."""
    return private_module("exercise_checks")


# The helpers exercise_checks shares, under public names (the code above keeps its short private ones).
matrix_report, call_student, random_matrix, size_text = _matrix_report, _call, _random_matrix, _size
check_result, private_shapes, explain, private_diagnosis = _check_case, _private_shapes, _explain, _diagnosis


# ---------------------------------------------------------------- models


class LayerRun(NamedTuple):
    """One leaf module that ran during a forward pass, with the shape it produced (and the one it got)."""

    name: str
    module: nn.Module
    output_shape: tuple[int, ...] | None  # None only for the layer that raised, in a failed pass
    input_shape: tuple[int, ...] = ()


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(getattr(value, "shape", ()))


def _traced_forward(model: nn.Module, input_shape: tuple[int, ...], batch: int
                    ) -> tuple[Any, list[LayerRun], Exception | None]:
    """Output, leaf layers that ran, and the error; after an error the last run is the leaf that raised (no output)."""
    runs: list[LayerRun] = []
    entered: list[LayerRun] = []  # leaves do not nest: the one entered last and not finished is the one that raised
    leaves = [(name, module) for name, module in model.named_modules() if not list(module.children())]

    def enter(mod: nn.Module, inp: Any, name: str) -> None:
        entered.append(LayerRun(name, mod, None, _shape(inp[0]) if inp else ()))  # inp: the positional arguments

    def leave(mod: nn.Module, inp: Any, out: Any) -> None:
        runs.append(entered.pop()._replace(output_shape=_shape(out)))

    hooks = [hook for name, module in leaves for hook in (
        module.register_forward_pre_hook(functools.partial(enter, name=name)), module.register_forward_hook(leave))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            return model(torch.rand(batch, *input_shape, generator=torch.Generator().manual_seed(0))), runs, None
    except Exception as error:  # noqa: BLE001 - the student's architecture bug: the caller decides how to report it
        return None, runs + entered[-1:], error
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()


def run_layers(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28), batch: int = 2
               ) -> tuple[torch.Tensor, list[LayerRun]]:
    """Run ``model`` in eval mode on a random batch and record every leaf module that ran, in order."""
    out, runs, error = _traced_forward(model, input_shape, batch)
    if error is not None:
        raise error
    return out, runs


def _kind(module: Any) -> str:
    """The PyTorch/convcourse layer class ``module`` is (a student's subclass of Conv2d is a "Conv2d")."""
    return next((cls.__name__ for cls in type(module).__mro__ if cls.__module__.startswith(_LAYER_HOMES)),
                type(module).__name__)


def _display(model_name: str, path: str) -> str:
    """A layer named as the student writes it: conv_model[1], net.fc."""
    return model_name + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in path.split(".") if part)


def _layers(model_name: str, runs: Sequence[LayerRun]) -> list:
    """The runs as the diagnosis sees them, named as the student writes them."""
    return [_diagnosis().Layer(_display(model_name, run.name), _kind(run.module), run.module, run.input_shape,
                               run.output_shape) for run in runs]


def _warn_habits(model_name: str, runs: Sequence[LayerRun]) -> None:
    # Printed on stdout, not warnings.warn: nbgrader scores any test cell with stderr output 0, and a warnings
    # filter set to "error" would turn advice into a failure.
    with contextlib.suppress(Exception):  # a warning is advice: it must never fail a check
        for habit in _diagnosis().habit_warnings(model_name, _layers(model_name, runs)):
            print(f"{HabitWarning.__name__}: {habit} (a warning: no points lost)", file=sys.stdout, flush=True)


def check_classifier(name: str, model: Any, *, input_shape: tuple[int, int, int] = (1, 28, 28),
                     num_classes: int = 10) -> list[LayerRun]:
    """Check ``model`` maps (N, *input_shape) to (N, num_classes); return the layers that ran."""
    if not isinstance(model, nn.Module):
        raise CheckFailed(f"{name} should be a torch.nn.Module (e.g. an nn.Sequential), not {type(model).__name__}")
    batch = 2
    out, runs, error = _traced_forward(model, input_shape, batch)
    if error is not None:  # the student's architecture bug, reported with the input that broke it and, if known, why
        why = _explain(lambda: _diagnosis().explain_failure(_layers(name, runs), _private_shapes()), lead="")
        raise CheckFailed(f"{name} fails on a batch of shape {(batch, *input_shape)}: {type(error).__name__}: "
                          f"{error}" + (why or "\n  (a PrintSize() between layers shows where the shapes stop fitting)")
                          ) from error
    shape = tuple(getattr(out, "shape", ()))
    if shape != (batch, num_classes):
        raise CheckFailed(f"{name} turns a batch of shape {(batch, *input_shape)} into {shape}; it should give "
                          f"{(batch, num_classes)}: one score per class for each image")
    _warn_habits(name, runs)
    return runs


# Layers are recognised by class name and defining module, not by identity with ``nn.Conv2d`` and
# friends: a notebook that rebinds ``nn.Conv2d = nn.Module`` cannot make every layer count.
_LAYER_HOMES = ("torch.nn.modules.", "convcourse.models")
Kinds = str | tuple[str, ...]


def is_layer(module: Any, kinds: Kinds) -> bool:
    """Whether ``module`` is (a subclass of) one of the PyTorch/convcourse layers named in ``kinds``."""
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    return any(cls.__name__ in kinds and cls.__module__.startswith(_LAYER_HOMES) for cls in type(module).__mro__)


def count_runs(runs: Sequence[LayerRun], kinds: Kinds) -> int:
    """How many of the layers that ran are of one of ``kinds`` (class names such as "Conv2d")."""
    return sum(is_layer(run.module, kinds) for run in runs)


def _names(kinds: Kinds) -> str:
    return " or ".join(f"nn.{kind}" if kind != "PrintSize" else kind for kind in ((kinds,) if isinstance(kinds, str) else kinds))


def check_uses(name: str, runs: Sequence[LayerRun], kinds: Kinds, *, at_least: int = 1) -> None:
    """Check that at least ``at_least`` layers of ``kinds`` (e.g. "Conv2d") ran in the forward pass."""
    found = count_runs(runs, kinds)
    if found < at_least:
        raise CheckFailed(f"{name} should use at least {at_least} {_names(kinds)} layer(s) in its forward pass; "
                          f"{found} ran (layers that ran: {', '.join(type(r.module).__name__ for r in runs)})")


def check_avoids(name: str, runs: Sequence[LayerRun], kinds: Kinds) -> None:
    """Check that no layer of ``kinds`` ran in the forward pass."""
    if count_runs(runs, kinds):
        raise CheckFailed(f"{name} should not use {_names(kinds)} here")


def check_keeps_size(name: str, runs: Sequence[LayerRun], *, kernel_size: int = 5, size: tuple[int, int] = (28, 28),
                     reveal: bool = True, filters: int | None = None) -> None:
    """Check that the first Conv2d has a ``kernel_size`` kernel (and ``filters`` filters) and keeps the image's ``size``.

    ``reveal=False`` (the padding is what the task asks for) says what the layer does, not which padding fixes it.
    """
    convs = [run for run in runs if is_layer(run.module, "Conv2d")]
    if not convs:
        raise CheckFailed(f"{name} has no nn.Conv2d that runs in its forward pass")
    first = convs[0]
    if tuple(first.module.kernel_size) != (kernel_size, kernel_size):
        raise CheckFailed(f"the first Conv2d of {name} has kernel_size {first.module.kernel_size}; "
                          f"use {kernel_size} here")
    if filters is not None and first.module.out_channels != filters:
        raise CheckFailed(f"the first Conv2d of {name} has {first.module.out_channels} filters (out_channels); use "
                          f"{filters} here")
    if first.output_shape[-2:] != size:
        layer = _layers(name, [first])[0]
        why = _explain(lambda: _diagnosis().explain_target(layer, size, _private_shapes()) if reveal else
                       _diagnosis().describe_change(layer, _private_shapes()), "Why: " if not reveal else "Likely cause: ")
        raise CheckFailed(f"the first Conv2d of {name} turns {size[0]}x{size[1]} images into "
                          "{}x{} feature maps; choose the padding that keeps the size".format(*first.output_shape[-2:])
                          + why)


def check_halves(name: str, runs: Sequence[LayerRun], *, by: str, size: tuple[int, int] = (14, 14)) -> None:
    """Check that the image is halved (to ``size``) by a MaxPool2d (``by="pool"``) or a stride-2 Conv2d (``by="stride"``)."""
    if by == "pool":
        halving = [r for r in runs if is_layer(r.module, "MaxPool2d") and r.output_shape[-2:] == size]
        what = "an nn.MaxPool2d"
    elif by == "stride":
        check_avoids(name, runs, ("MaxPool2d", "AvgPool2d"))
        halving = [r for r in runs if is_layer(r.module, "Conv2d") and tuple(r.module.stride) == (2, 2)
                   and r.output_shape[-2:] == size]
        what = "an nn.Conv2d with stride=2"
    else:
        raise ValueError(f"by must be 'pool' or 'stride', not {by!r}")
    if not halving:
        shapes = ", ".join(f"{type(r.module).__name__} {r.output_shape}" for r in runs)
        why = _explain(lambda: _diagnosis().explain_reduction(_layers(name, runs), "MaxPool2d" if by == "pool" else
                                                              "Conv2d", size, _private_shapes()))
        raise CheckFailed(f"in {name}, {what} should produce {size[0]}x{size[1]} feature maps; layers ran as: {shapes}"
                          + why)


# ---------------------------------------------------------------- cnn_experiments: the first try, controlled variants


def check_unpadded(name: str, model: Any, *, kernel_size: int = 5, filters: int = 32,
                   input_shape: tuple[int, int, int] = (1, 28, 28)) -> list[LayerRun]:
    """Check ``model`` runs PrintSize, a ``kernel_size`` Conv2d of ``filters`` filters without padding, PrintSize."""
    if not isinstance(model, nn.Module):
        raise CheckFailed(f"{name} should be a torch.nn.Module (e.g. an nn.Sequential), not {type(model).__name__}")
    out, runs, error = _traced_forward(model, input_shape, 2)
    if error is not None:
        raise CheckFailed(f"{name} fails on a batch of shape {(2, *input_shape)}: {type(error).__name__}: {error}")
    convs = [run for run in runs if is_layer(run.module, "Conv2d")]
    if len(convs) != 1:
        raise CheckFailed(f"{name} should hold exactly one nn.Conv2d; {len(convs)} ran")
    conv = convs[0].module
    for setting, got, want in (("kernel_size", tuple(conv.kernel_size), (kernel_size, kernel_size)),
                               ("out_channels", conv.out_channels, filters), ("stride", tuple(conv.stride), (1, 1))):
        if got != want:
            raise CheckFailed(f"the Conv2d of {name} has {setting}={got}; use {want} here")
    if tuple(conv.padding) != (0, 0):
        raise CheckFailed(f"the Conv2d of {name} has padding={conv.padding}: leave the padding out here (0, the "
                          "default), to see what the convolution alone does to the size")
    order = [run for run in runs if is_layer(run.module, ("Conv2d", "PrintSize"))]
    kinds = [_kind(run.module) for run in order]
    if "PrintSize" not in kinds[:kinds.index("Conv2d")] or "PrintSize" not in kinds[kinds.index("Conv2d") + 1:]:
        raise CheckFailed(f"{name} should have a PrintSize() before and one after its Conv2d (the layers ran as: "
                          f"{', '.join(kinds)})")
    return runs


def _plain(runs: Sequence[LayerRun], extra: Kinds) -> list[tuple[str, str, str]]:
    """The layers that matter for a comparison: kind, settings and path, without PrintSize, Identity and ``extra``."""
    weighted = ("Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "BatchNorm1d")
    return [(_kind(run.module), run.module.extra_repr() if is_layer(run.module, weighted) else "", run.name)
            for run in runs if not is_layer(run.module, ("PrintSize", "Identity")) and not is_layer(run.module, extra)]


def check_same_layers(name: str, runs: Sequence[LayerRun], reference: str, reference_runs: Sequence[LayerRun],
                      extra: Kinds) -> None:
    """Check ``name`` is ``reference`` with layers of ``extra`` added: a comparison that changes one thing only."""
    check_uses(name, runs, extra)
    mine, theirs = _plain(runs, extra), _plain(reference_runs, extra)
    if [layer[:2] for layer in mine] == [layer[:2] for layer in theirs]:
        return
    where = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a[:2] != b[:2]), min(len(mine), len(theirs)))

    def show(model: str, layers: list[tuple[str, str, str]]) -> str:  # by its own name: the student's index
        return f"nn.{layers[where][0]}({layers[where][1]}) at {_display(model, layers[where][2])}" \
            if where < len(layers) else "nothing more"

    raise CheckFailed(_tagged(f"{name} should be {reference} with {_names(extra)} added and nothing else changed, "
                             f"so that the comparison shows what {_names(extra)} does; leaving out {_names(extra)}, "
                             f"{name} has {show(name, mine)} where {reference} has {show(reference, theirs)}",
                             "comparison-changes-more"))


# ---------------------------------------------------------------- cnn_experiments: shift_images

class ShiftCase(NamedTuple):
    """Images of ``shape`` (N, C, H, W) with values drawn from ``seed``, to move ``dy`` rows down and ``dx`` columns right."""

    shape: tuple[int, int, int, int]
    dy: int
    dx: int
    seed: int = 0

    def values(self) -> list:
        """The images as nested lists (two decimals; about a third of the pixels 0, like a digit's background)."""
        rng = random.Random(self.seed)
        n, c, h, w = self.shape
        return [[[[round(rng.uniform(0.01, 1), 2) if rng.random() > 0.3 else 0.0 for _ in range(w)] for _ in range(h)]
                 for _ in range(c)] for _ in range(n)]

    def describe(self) -> str:
        """The case in words."""
        return f"images of shape {self.shape} moved by dy={self.dy}, dx={self.dx}"


def random_shift_cases(seed: int, count: int) -> list[ShiftCase]:
    """``count`` random cases: 1-3 images of 1-2 channels, 4-9 pixels a side, moved -3..3 pixels each way."""
    rng = random.Random(seed)
    return [ShiftCase((rng.randint(1, 3), rng.randint(1, 2), rng.randint(4, 9), rng.randint(4, 9)),
                      rng.randint(-3, 3), rng.randint(-3, 3), rng.randrange(10**6)) for _ in range(count)]


def _shift_reference(images: list, dy: int, dx: int) -> list:
    """Nested-list images (N, C, H, W) moved dy rows down and dx columns right, 0 where nothing moved in.

    Plain Python on lists, so nothing a notebook does to torch can bend it; and private: the notebook's graded
    shift_images has no public twin in the package to import instead.
    """
    def move(plane: Matrix) -> Matrix:
        height, width = len(plane), len(plane[0])
        return [[plane[i - dy][j - dx] if 0 <= i - dy < height and 0 <= j - dx < width else 0.0 for j in range(width)]
                for i in range(height)]

    return [[move(plane) for plane in image] for image in images]


def _flat_values(x: Any) -> list[float]:
    return [v for item in x for v in _flat_values(item)] if isinstance(x, list) else [float(x)]


def check_shift(fn: Callable, cases: Sequence[ShiftCase], *, name: str = "shift_images") -> None:
    """Check ``fn(images, dy, dx)`` against the course's shift on every case (and that it leaves its input alone)."""
    for case in cases:
        values = case.values()
        expected = _shift_reference(values, case.dy, case.dx)
        images = torch.tensor(values)
        before = images.tolist()  # in float32, as the function gets them
        result = _call(name, fn, (images, case.dy, case.dx), case.describe())
        if images.tolist() != before:
            raise CheckFailed(f"{name} changed the images it was given ({case.describe()}); leave them as they are "
                              "and return a new tensor (e.g. start from torch.zeros_like(images))")
        if not isinstance(result, torch.Tensor):
            raise CheckFailed(f"{name} returned {type(result).__name__} for {case.describe()}; return a torch.Tensor")
        if tuple(result.shape) != case.shape:
            raise CheckFailed(f"{name} returned shape {tuple(result.shape)} for {case.describe()}; the shape must "
                              "stay the same: pixels moved out of the picture are dropped, the uncovered ones are 0")
        _check_shifted(name, case, values, _flat_values(result.tolist()), _flat_values(expected))


def _check_shifted(name: str, case: ShiftCase, values: list, got: list[float], want: list[float]) -> None:
    """CheckFailed naming the first wrong pixel and, when it matches one, the classic mistake."""
    wrong = [i for i, (g, w) in enumerate(zip(got, want)) if abs(g - w) > 1e-6]
    if not wrong:
        return
    _, c, h, w = case.shape
    first = wrong[0]
    where = f"image {first // (c * h * w)}, channel {first // (h * w) % c}, row {first // w % h}, column {first % w}"
    why = _explain(lambda: _diagnosis().diagnose([got], [want], _diagnosis().shift_variants(values, case.dy, case.dx)))
    raise CheckFailed(f"on {case.describe()}: {len(wrong)} of {len(want)} values are wrong (counting from 0), the "
                      f"first at {where}: you have {_fmt(got[first])}, expected {_fmt(want[first])}\n"
                      f"  the case was ShiftCase{tuple(case)!r}" + why)
