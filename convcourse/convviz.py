"""Convolution stepping maths and rendering: a kernel sliding over a padded input, as HTML and text.

Pure functions; the widget around them is `convcourse.widgets.ConvVisualiser`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

from . import widgetkit as kit
from .shapes import conv_output_size

Number = Union[int, float]

# The lab's manual exercise: a 1x5x5 input and a 1x3x3 kernel of small integers. The kernel is
# deliberately not symmetric under a 180-degree turn, so a flipped ("true") convolution would give
# different numbers from PyTorch's cross-correlation.
EXAMPLE_INPUT: tuple[tuple[int, ...], ...] = (
    (1, 0, 2, 1, 0),
    (0, 1, 3, 0, 1),
    (2, 1, 0, 1, 2),
    (1, 0, 1, 2, 0),
    (0, 2, 1, 0, 1),
)
EXAMPLE_KERNEL: tuple[tuple[int, ...], ...] = (
    (1, 0, -1),
    (2, 1, 0),
    (0, -1, 1),
)

# The seed lab's animated example (the Stanford GIF): a 0/1 image and an X-shaped kernel. The
# visualiser, the worked entry and the demos of the student's functions use it, never the graded example above.
GIF_INPUT: tuple[tuple[int, ...], ...] = (
    (1, 1, 1, 0, 0),
    (0, 1, 1, 1, 0),
    (0, 0, 1, 1, 1),
    (0, 0, 1, 1, 0),
    (0, 1, 1, 0, 0),
)
GIF_KERNEL: tuple[tuple[int, ...], ...] = (
    (1, 0, 1),
    (0, 1, 0),
    (1, 0, 1),
)
# Two input channels and two filters of shape (2, 2, 2): the multi-channel exercise (graded by hand).
MULTI_INPUT: tuple[tuple[tuple[int, ...], ...], ...] = (
    ((1, 2, 0), (0, 1, 3), (2, 0, 1)),
    ((0, 1, 1), (2, 0, 1), (1, 3, 0)),
)
MULTI_FILTERS: tuple[tuple[tuple[tuple[int, ...], ...], ...], ...] = (
    (((1, 0), (0, -1)), ((2, 1), (0, 0))),
    (((0, 1), (1, 0)), ((1, -1), (0, 2))),
)
# One 2x2 patch of another two-channel input: the notebook works out filter 0 of MULTI_FILTERS on it, so the
# worked entry is not an entry of the graded output (nor either patch one of MULTI_INPUT's).
MULTI_PATCH: tuple[tuple[tuple[int, ...], ...], ...] = (
    ((3, 1), (2, 1)),
    ((1, 3), (2, 0)),
)
# A textbook edge detector (Sobel, x direction): flipping it reverses its sign, so cross-correlation
# and true convolution disagree visibly on GIF_INPUT.
EDGE_KERNEL: tuple[tuple[int, ...], ...] = (
    (1, 0, -1),
    (2, 0, -2),
    (1, 0, -1),
)


@dataclass(frozen=True)
class Tap:
    """One kernel weight over one cell of the padded input."""

    row: int
    col: int
    value: Number
    weight: Number

    @property
    def product(self) -> Number:
        """The input value times the kernel weight."""
        return self.value * self.weight


@dataclass(frozen=True)
class ConvStep:
    """One output cell: where the kernel sits and the products that sum to the cell's value."""

    out_row: int
    out_col: int
    taps: tuple[Tap, ...]
    total: Number

    def expression(self) -> str:
        """The sum written out, e.g. ``output[0, 0] = 1×1 + 0×0 + ... = -1``."""
        terms = " + ".join(f"{fmt(t.value, True)}×{fmt(t.weight, True)}" for t in self.taps)
        return f"output[{self.out_row}, {self.out_col}] = {terms} = {fmt(self.total)}"


@dataclass(frozen=True)
class ConvPlan:
    """Every step of a 2-D cross-correlation (what PyTorch's conv2d computes), in row-major order."""

    padded: tuple[tuple[Number, ...], ...]
    kernel: tuple[tuple[Number, ...], ...]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    output_size: tuple[int, int]
    steps: tuple[ConvStep, ...]

    def is_padding(self, row: int, col: int) -> bool:
        """Whether a padded-grid cell is padding rather than input."""
        (ph, pw), (h, w) = self.padding, (len(self.padded), len(self.padded[0]))
        return not (ph <= row < h - ph and pw <= col < w - pw)

    def output(self, upto: int | None = None) -> list[list[Number | None]]:
        """The output grid with the cells of steps 0..upto filled in and None elsewhere."""
        grid: list[list[Number | None]] = [[None] * self.output_size[1] for _ in range(self.output_size[0])]
        last = len(self.steps) - 1 if upto is None else upto
        for step in self.steps[: last + 1]:
            grid[step.out_row][step.out_col] = step.total
        return grid


def fmt(x: Number, bracket_negative: bool = False) -> str:
    """Short number text: integers as they are, floats with 3 significant digits."""
    text = str(x) if isinstance(x, int) else f"{x:.3g}"
    return f"({text})" if bracket_negative and x < 0 else text


def as_grid(values: Any, name: str) -> tuple[tuple[Number, ...], ...]:
    """A 2-D grid of Python numbers from nested lists, a NumPy array or a tensor of shape (H, W)."""
    if hasattr(values, "detach"):  # a torch tensor, possibly requiring grad
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values)
    except ValueError as exc:
        raise ValueError(f"{name} must be a rectangular grid of numbers: {exc}") from None
    while array.ndim > 2 and array.shape[0] == 1:  # accept (1, H, W) and (1, 1, H, W)
        array = array[0]
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D grid (height, width), got shape {array.shape}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite values")
    cast = int if np.issubdtype(array.dtype, np.integer) else float
    return tuple(tuple(cast(v) for v in row) for row in array.tolist())


def plan_convolution(inp: Any, kernel: Any, stride: Any = 1, padding: Any = 0,
                     dilation: Any = 1) -> ConvPlan:
    """Work out every step of sliding ``kernel`` over ``inp``; ShapeError if the sizes don't fit."""
    grid, weights = as_grid(inp, "input"), as_grid(kernel, "kernel")
    (sh, sw), (ph, pw), (dh, dw) = kit.pair(stride, "stride"), kit.pair(padding, "padding"), \
        kit.pair(dilation, "dilation")
    (kh, kw), (h, w) = (len(weights), len(weights[0])), (len(grid), len(grid[0]))
    out_h = conv_output_size(h, kh, sh, ph, dh)  # validates every number and says which rule broke
    out_w = conv_output_size(w, kw, sw, pw, dw)
    padded = [[0] * (w + 2 * pw) for _ in range(h + 2 * ph)]
    for r, row in enumerate(grid):
        padded[r + ph][pw:pw + w] = list(row)
    steps = []
    for i in range(out_h):
        for j in range(out_w):
            taps = tuple(
                Tap(i * sh + a * dh, j * sw + b * dw, padded[i * sh + a * dh][j * sw + b * dw], weights[a][b])
                for a in range(kh) for b in range(kw)
            )
            steps.append(ConvStep(i, j, taps, sum(t.product for t in taps)))
    return ConvPlan(tuple(map(tuple, padded)), weights, (sh, sw), (ph, pw), (dh, dw), (out_h, out_w),
                    tuple(steps))


_CELL = "width:2.4em;height:2.4em;text-align:center;font-family:monospace;border:1px solid #9e9e9e;"


def _table(title: str, rows: Sequence[str]) -> str:
    return (f'<div style="margin-right:1.5em"><div style="font-weight:bold">{html.escape(title)}</div>'
            f'<table style="border-collapse:collapse">{"".join(rows)}</table></div>')


def render_html(plan: ConvPlan, index: int) -> str:
    """The padded input with the kernel over it, the kernel, the output so far and the sum."""
    step = plan.steps[index]
    weight_at = {(t.row, t.col): t.weight for t in step.taps}
    rows = []
    for r, row in enumerate(plan.padded):
        cells = []
        for c, value in enumerate(row):
            style = _CELL + ("background:#eeeeee;color:#9e9e9e;border-style:dashed;" if plan.is_padding(r, c) else "")
            label = fmt(value)
            if (r, c) in weight_at:
                style += "background:#fff3c4;" if plan.is_padding(r, c) else "background:#ffe082;color:#000;"
                label += f'<sub style="color:#c62828">×{fmt(weight_at[(r, c)])}</sub>'
            cells.append(f'<td style="{style}">{label}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    kernel_style = _CELL + "color:#c62828;"
    kernel_rows = ["<tr>" + "".join(f'<td style="{kernel_style}">{fmt(v)}</td>' for v in row) + "</tr>"
                   for row in plan.kernel]
    out_rows = []
    for r, row in enumerate(plan.output(index)):
        cells = []
        for c, value in enumerate(row):
            current = (r, c) == (step.out_row, step.out_col)
            style = _CELL + ("background:#66bb6a;font-weight:bold;" if current
                             else "background:#e8f5e9;" if value is not None else "")
            cells.append(f'<td style="{style}">{"" if value is None else fmt(value)}</td>')
        out_rows.append(f"<tr>{''.join(cells)}</tr>")
    (ph, pw), (sh, sw), (dh, dw) = plan.padding, plan.stride, plan.dilation
    title = f"input + padding ({ph}, {pw})"
    return (
        f'<div class="convcourse-viz">'
        f"<div>step {index + 1} of {len(plan.steps)}: stride ({sh}, {sw}), dilation ({dh}, {dw})</div>"
        '<div style="color:#616161">each output cell is the sum of input × weight over the yellow cells '
        "(weights in red; grey cells are zero padding)</div>"
        f'<div style="display:flex;align-items:flex-start;margin:6px 0">'
        f'{_table(title, rows)}{_table("kernel", kernel_rows)}{_table("output so far", out_rows)}</div>'
        f'<div class="convcourse-viz-sum" style="font-family:monospace">{html.escape(step.expression())}</div>'
        f"</div>"
    )


def render_text(plan: ConvPlan, index: int) -> str:
    """A plain-text rendering: the sum, the padded input with [tapped] cells, the output so far."""
    step = plan.steps[index]
    tapped = {(t.row, t.col) for t in step.taps}

    def cell(r: int, c: int, value: Number) -> str:
        label = fmt(value)
        label = f"[{label}]" if (r, c) in tapped else f"({label})" if plan.is_padding(r, c) else label
        return label.rjust(6)

    lines = [
        f"convolution step {index + 1} of {len(plan.steps)}: stride {plan.stride}, padding {plan.padding}, "
        f"dilation {plan.dilation}, output {plan.output_size[0]}x{plan.output_size[1]}",
        step.expression(),
        "padded input ([x] under the kernel, (0) padding):",
        *("".join(cell(r, c, v) for c, v in enumerate(row)) for r, row in enumerate(plan.padded)),
        "output so far (. not computed yet):",
        *("".join(("." if v is None else fmt(v)).rjust(6) for v in row) for row in plan.output(index)),
    ]
    return "\n".join(lines)

