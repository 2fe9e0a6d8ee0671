"""Why a check failed: the lab's classic mistakes, recognised from the student's answer itself.

Pure functions. ``convcourse.checks`` loads a private copy of this file and calls it only while it is
already raising a CheckFailed, so a diagnosis can add one sentence to a failure but never turn it
into a pass. Shape maths comes from the ``shapes`` module passed in (checks passes its private copy
of ``convcourse.shapes``), oracles are passed in as functions: nothing here imports the package.
A variant is a wrong answer worked out on purpose; a diagnosis names it only when the student's
answer matches it exactly, and stays silent otherwise.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import accumulate
from types import ModuleType
from typing import Any, NamedTuple

Matrix = list[list[float]]
TOL = 1e-4  # the tolerance checks.check_matrix uses


# The stable name of every diagnosis, with what the class report calls it. A failure message carries the name in
# brackets after its sentence ("... as it is [flipped-kernel]."), so the graded notebooks can be counted by mistake.
MISTAKES = {
    "flipped-kernel": "kernel flipped (textbook convolution)",
    "kernel-flipped-one-axis": "kernel flipped along one axis",
    "kernel-transposed": "kernel transposed",
    "matrix-product": "matrix product instead of element-wise",
    "zero-padded": "input zero-padded",
    "result-transposed": "rows and columns of the result swapped",
    "integer-output": "integer output array",
    "missing-last-row": "last row and column missing (no + 1)",
    "loops-stop-early": "loops stop one position early",
    "partial-windows": "partial windows kept (rounded up)",
    "window-averaged": "windows averaged, not maxed",
    "window-moves-one": "window moves one square at a time",
    "stride-is-size": "window moves size squares",
    "size-stride-swapped": "size and stride swapped",
    "fixed-2x2-window": "always a 2x2 window, stride 2",
    "rows-columns-count-swapped": "numbers of rows and columns swapped",
    "missing-plus-one": "+ 1 of the formula missing",
    "rounded-up": "division rounded up",
    "padding-once": "padding counted once",
    "height-width-swapped": "height and width swapped",
    "channels-last": "channels last",
    "input-channels-kept": "output keeps the input's channels",
    "exact-fit-invalid": "exact-fit kernel taken as invalid",
    "kernel-too-large": "kernel larger than the padded input",
    "channel-mismatch": "filter and input channels differ",
    "padding-ignored-in-validity": "validity judged without the padding",
    "padding-left-out": "padding left out",
    "stride-left-out": "stride left out",
    "strides-swapped": "strides of height and width swapped",
    "paddings-swapped": "paddings of height and width swapped",
    "kernel-sides-swapped": "kh and kw swapped",
    "input-sides-swapped": "input height and width swapped",
    "missing-flatten": "no nn.Flatten before nn.Linear",
    "linear-chain-mismatch": "nn.Linear sizes do not chain",
    "in-features-unpadded": "in_features assumes a padded convolution",
    "in-features-before-shrink": "in_features counts the maps before a stride or pool",
    "in-features-extra-halving": "in_features assumes one more halving",
    "in-features-channels": "in_features counts the wrong channels",
    "in-features-mismatch": "in_features does not match the flattened maps",
    "in-channels-mismatch": "in_channels / num_features do not match the channels",
    "maps-too-small": "feature maps too small for a layer",
    "size-setting": "a layer's padding or stride changes the size",
    "earlier-layer-shrinks": "an earlier layer already changed the size",
    "softmax-before-loss": "model ends in nn.Softmax",
    "activation-at-end": "model ends in an activation",
    "dropout-at-end": "model ends in dropout",
    "no-activation-between": "two weight layers without an activation",
    "eval-mode-left-on": "model left in evaluation mode",
    "comparison-changes-more": "more changed than the layer compared",
    # multi-channel convolution, unfold and the input gradient (the hand notebooks' later exercises)
    "first-channel-only": "only the first input channel used",
    "channels-averaged": "input channels averaged, not added",
    "own-channel-only": "each filter sees only its own channel",
    "filters-channels-swapped": "filters and input channels swapped",
    "weights-flattened-mixed": "weights flattened in another order than unfold's",
    "reshape-sides-swapped": "height and width swapped in the last reshape",
    "gradient-kernel-unflipped": "kernel not rotated by 180 degrees",
    "gradient-padding-short": "g padded too little (no full convolution)",
    # receptive fields
    "field-kernels-added": "kernel sizes added up",
    "field-strides-left-out": "strides left out",
    "field-stride-too-early": "a layer's own stride applied before its kernel",
    "field-kernels-multiplied": "kernel sizes multiplied",
    "field-starts-at-zero": "field started at 0, not 1",
    "field-pool-left-out": "pooling layer left out",
    # parameter counts
    "bias-per-weight": "one bias counted per weight",
    "biases-left-out": "biases left out",
    "biases-counted-without-bias": "biases counted although bias=False",
    "count-input-channels-left-out": "input channels left out of the weights",
    "bias-per-input-channel": "one bias counted per input channel",
    "counted-before-pool": "maps counted before the pool halves them",
    "counted-as-if-pooled": "maps counted as if pooled",
    "count-one-channel": "one feature map counted, not all",
    "gap-not-averaged": "maps not averaged by global pooling",
    "gap-hidden-layer-kept": "hidden Linear layer kept in the head",
    # shifted digits (cnn_experiments)
    "shift-wraps-around": "pixels wrap around (torch.roll)",
    "shift-repeats-edge": "uncovered pixels repeat the edge",
    "shift-wrong-direction": "moved the wrong way",
    "shift-dy-dx-swapped": "dy and dx swapped",
    "shift-rows-only": "only the rows move",
    "shift-columns-only": "only the columns move",
    "shift-wrong-axes": "the wrong axes moved",
    "shift-unmoved": "images returned unmoved",
}


def names_in(text: str) -> list[str]:
    """The diagnoses' stable names a message carries, in order, each once (only names in MISTAKES count)."""
    return list(dict.fromkeys(name for name in re.findall(r"\[([a-z0-9-]+)\]", text) if name in MISTAKES))


def tagged(text: str, tag: str) -> str:
    """``text`` with its stable name in brackets before the final full stop: "... 28 [size-setting]."."""
    if tag not in MISTAKES:
        raise KeyError(f"unknown diagnosis name {tag!r}: add it to MISTAKES")
    return f"{text[:-1]} [{tag}]." if text.endswith(".") else f"{text} [{tag}]"


class Variant(NamedTuple):
    """A classic wrong answer, and the clause that names the mistake and its fix."""

    answer: Any  # a Matrix, a (C, H, W) tuple, or None
    mistake: str
    reveals: bool = False  # naming it would hand over the expected values (skipped where they are hidden)
    tag: str = ""  # its name in MISTAKES, which the message carries

    def named(self) -> str:
        """The clause with its stable name: "the kernel is transposed: ... [kernel-transposed]"."""
        return tagged(self.mistake, self.tag) if self.tag else self.mistake


def same(a: Any, b: Any, tol: float = TOL) -> bool:
    """Whether two answers agree: matrices entry by entry within ``tol``, anything else exactly."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(len(r) == len(s) and all(abs(g - w) <= tol * (1 + abs(w)) for g, w in zip(r, s))
                                        for r, s in zip(a, b))
    return not isinstance(a, list) and not isinstance(b, list) and a == b


def diagnose(got: Any, expected: Any, variants: Sequence[Variant], *, reveal: bool = True, tol: float = TOL
             ) -> str | None:
    """The mistake that produces ``got``; None when no variant, or more than two, match (never a guess)."""
    mistakes = list(dict.fromkeys(v.named() for v in variants if (reveal or not v.reveals)
                                  and not same(v.answer, expected, tol) and same(got, v.answer, tol)))
    if len(mistakes) == 1:
        return mistakes[0]
    return f"either {mistakes[0]}, or {mistakes[1]}" if len(mistakes) == 2 else None


# ---------------------------------------------------------------- matrices: conv2d_naive, maxpool2d, the hand work


def _transpose(m: Matrix) -> Matrix:
    return [list(row) for row in zip(*m)]


def _flip(m: Matrix, rows: bool = True, cols: bool = True) -> Matrix:
    return [row[::-1] if cols else list(row) for row in (m[::-1] if rows else m)]


def _pad(x: Matrix, ph: int, pw: int) -> Matrix:
    zeros = [[0.0] * (len(x[0]) + 2 * pw)] * ph
    return zeros + [[0.0] * pw + list(row) + [0.0] * pw for row in x] + zeros


def windows(x: Matrix, size: int, stride: int, rows: int, cols: int, reduce: Callable = max) -> Matrix | None:
    """``reduce`` of each window starting at (i * stride, j * stride), cut at the edges; None if one is empty."""
    cells = [[[v for r in x[i * stride:i * stride + size] for v in r[j * stride:j * stride + size]]
              for j in range(cols)] for i in range(rows)]
    if rows < 1 or cols < 1 or not all(cell for row in cells for cell in row):
        return None
    return [[reduce(cell) for cell in row] for row in cells]


def _result_variants(want: Matrix, patch: str, count: str) -> list[Variant]:
    """Slips in the loops around a right computation: transposed, one position short, stopped early, ints."""
    found = [Variant(_transpose(want), f"rows and columns are swapped: output[i, j] comes from {patch}", True,
                     tag="result-transposed"),
             Variant([[float(int(v)) for v in row] for row in want], "the fractional parts are cut off: the output "
                     "array holds integers (np.zeros_like(x) copies an integer x's dtype); create it as floats, "
                     "e.g. np.zeros((rows, cols))", True, tag="integer-output"),
             # [] for a 1-row result: checks passes [] when the answer is an empty array one row and column short
             Variant([row[:-1] for row in want[:-1]], f"the last row and column are missing: the output has {count} "
                     "(the + 1 counts the first position)", tag="missing-last-row")]
    if len(want) > 1 and len(want[0]) > 1 and any(v for row in want[:-1] for v in row[:-1]):  # else any 0s match
        found.append(Variant([row[:-1] + [0.0] for row in want[:-1]] + [[0.0] * len(want[0])], "the last row and "
                             "column are still 0: the loops stop one position early; loop over range(out.shape[0]) "
                             "and range(out.shape[1])", tag="loops-stop-early"))
    return found


def conv_variants(x: Matrix, k: Matrix, conv: Callable[[Matrix, Matrix], Matrix]) -> list[Variant]:
    """What conv2d_naive (or conv_by_hand) gives after each classic mistake; ``conv`` is the trusted oracle."""
    kh, kw = len(k), len(k[0])
    found = [Variant(conv(x, _flip(k)), "the result equals the cross-correlation with the flipped kernel, a "
                     "textbook convolution; PyTorch's conv2d does not flip the kernel, so multiply each patch by k "
                     "as it is", tag="flipped-kernel")]
    found += [Variant(conv(x, _flip(k, rows, not rows)), "the kernel is flipped upside down or left to right: "
                      "k[a, b] multiplies x[i + a, j + b]", tag="kernel-flipped-one-axis") for rows in (True, False)]
    if kh == kw:  # a square kernel can be transposed, or multiplied as a matrix
        found.append(Variant(conv(x, _transpose(k)), "the kernel is transposed: k[a, b] multiplies x[i + a, j + b]",
                             tag="kernel-transposed"))
        found.append(Variant([[sum(a * b for prow in patch for kcol in zip(*k) for a, b in zip(prow, kcol))
                               for patch in _patches(x, kh, kw, i)] for i in range(len(x) - kh + 1)],
                             "each entry sums a matrix product (patch @ k or np.dot); it is the sum of the "
                             "element-wise products, np.sum(patch * k)", tag="matrix-product"))
    if kh > 1 or kw > 1:
        found.append(Variant(conv(_pad(x, (kh - 1) // 2, (kw - 1) // 2), k), "the input is zero-padded; here there "
                             "is no padding, so the output has H - kh + 1 rows and W - kw + 1 columns", tag="zero-padded"))
    return found + _result_variants(conv(x, k), "x[i:i + kh, j:j + kw]", "H - kh + 1 rows and W - kw + 1 columns")


def _patches(x: Matrix, kh: int, kw: int, i: int) -> list[Matrix]:
    return [[row[j:j + kw] for row in x[i:i + kh]] for j in range(len(x[0]) - kw + 1)]


def _floor_count(n: int, size: int, stride: int) -> int:
    return (n - size) // stride + 1


def pool_variants(x: Matrix, size: int, stride: int, want: Matrix) -> list[Variant]:
    """What maxpool2d (or pool_by_hand) gives after each classic mistake; ``want`` is the oracle's answer."""
    def pooled(size: int = size, stride: int = stride, count: Callable = _floor_count, step: int | None = None,
               reduce: Callable = max, swap: bool = False) -> Matrix | None:
        rows, cols = count(len(x), size, stride), count(len(x[0]), size, stride)
        return windows(x, size, step or stride, *((cols, rows) if swap else (rows, cols)), reduce)

    partial = ("partial windows at the edge are kept (rounding up); max_pool2d drops windows that do not fit "
               "entirely inside x (the floor in (H - size) // stride + 1)")
    moved = "the window moves one square at a time; window (i, j) starts at x[i * stride, j * stride]"
    found = [Variant(pooled(count=lambda n, s, st: -(-(n - s) // st) + 1), partial, tag="partial-windows"),
             Variant(pooled(count=lambda n, s, st: len(range(0, n, st))), partial, tag="partial-windows"),
             Variant(pooled(reduce=lambda v: sum(v) / len(v)), "each window is averaged; max pooling keeps the "
                     "largest value, .max()", tag="window-averaged"),
             Variant(pooled(stride=1), moved, tag="window-moves-one"), Variant(pooled(step=1), moved, tag="window-moves-one"),
             Variant(pooled(stride=size), "the window moves size squares at a time; it should move stride squares",
                     tag="stride-is-size"),
             Variant(pooled(size=stride, stride=size), "size and stride are swapped: the signature is "
                     "maxpool2d(x, size, stride)", tag="size-stride-swapped"),
             Variant(pooled(2, 2), "the window is always 2x2 with stride 2: use the size and stride arguments",
                     tag="fixed-2x2-window"),
             Variant(pooled(swap=True), "the numbers of rows and columns are swapped: rows come from x.shape[0] "
                     "(the height), columns from x.shape[1]", tag="rows-columns-count-swapped")]
    patch = "x[i * stride:i * stride + size, j * stride:j * stride + size]"
    return [v for v in found if v.answer is not None] + \
        _result_variants(want, patch, "(H - size) // stride + 1 rows and (W - size) // stride + 1 columns")


# ---------------------------------------------------------------- output shapes on paper and in output_shape


def _formula(size: int, k: int, s: int, p: int, ceil: bool = False, sides: int = 2) -> int:
    """The size formula with one classic slip switchable on; the right answer always comes from the oracle."""
    span = size + sides * p - k
    return (-(-span // s) if ceil else span // s) + 1


def shape_variants(case: Any, oracle: Callable[[Any], tuple | None]) -> list[Variant]:
    """Wrong answers for a ShapeCase; ``oracle(case)`` gives the right (C, H, W) or None for an invalid layer."""
    want, (c, h, w), (fc, kh, kw) = oracle(case), case.input_shape, case.filter_shape
    (sh, sw), (ph, pw), n = case.stride, case.padding, case.num_filters

    def dims(**slip: Any) -> tuple[int, int, int]:
        return n, _formula(h, kh, sh, ph, **slip), _formula(w, kw, sw, pw, **slip)

    if want is None:  # only the function check shows these: the hand answers never say which layers are invalid
        found = []
        if kh > h + 2 * ph or kw > w + 2 * pw:
            found.append(Variant(dims(), "the kernel is larger than the padded input (it fits nowhere, so return None)",
                                 True, tag="kernel-too-large"))
        if fc != c:
            found.append(Variant(oracle(case._replace(filter_shape=(c, kh, kw))), "the filters' channels "
                                 "(filter_shape[0]) differ from the input's (no Conv2d can compute it: return None)",
                                 True, tag="channel-mismatch"))
        return found
    _, ho, wo = want
    found = [Variant((n, ho - 1, wo - 1), "the + 1 of the formula is missing (it counts the kernel's first position)",
                     tag="missing-plus-one"),
             Variant(dims(ceil=True), "the division is rounded up (the formula rounds down with //: an incomplete "
                     "last step does not count)", tag="rounded-up"),
             Variant(dims(sides=1), "the padding is counted once (it is added on both sides: H + 2p)", tag="padding-once"),
             Variant((n, wo, ho), "height and width are swapped (the answer is (channels, height, width))",
                     tag="height-width-swapped"),
             Variant((ho, wo, n), "the channels come last (the answer is (channels, height, width))", tag="channels-last"),
             Variant((c, ho, wo), "the output has the input's channels (it has one channel per filter: num_filters)",
                     tag="input-channels-kept")]
    if kh == h + 2 * ph or kw == w + 2 * pw:
        found.append(Variant(None, "a kernel exactly as large as the padded input is taken as invalid (it fits "
                             "once, size 1: only k > H + 2p is invalid)", True, tag="exact-fit-invalid"))
    swaps = (("padding", (0, 0), "the padding is left out (the padded input is H + 2p: p zeros on each side)",
              "padding-left-out"),
             ("stride", (1, 1), "the stride is left out (divide H + 2p - k by it, with //, before adding 1)",
              "stride-left-out"),
             ("stride", (sw, sh), "the strides of height and width are swapped (stride is (sh, sw))", "strides-swapped"),
             ("padding", (pw, ph), "the paddings of height and width are swapped (padding is (ph, pw))", "paddings-swapped"),
             ("filter_shape", (fc, kw, kh), "kh and kw are swapped (filter_shape is (C, kh, kw))", "kernel-sides-swapped"),
             ("input_shape", (c, w, h), "the input's height and width are swapped (input_shape is (C, H, W))",
              "input-sides-swapped"))
    for field, value, mistake, tag in swaps:
        answer = oracle(case._replace(**{field: value}))
        if answer is None and field == "padding" and value == (0, 0):  # the validity test forgets the padding
            found.append(Variant(None, "the kernel is compared with the input without its padding (it fits when "
                                 "k <= H + 2p)", True, tag="padding-ignored-in-validity"))
        elif answer is not None:
            found.append(Variant(answer, mistake, tag=tag))
    return found


# ---------------------------------------------------------------- later hand exercises: channels, matrices, gradients,
# receptive fields and parameter counts (convcourse.exercise_checks). Multi-channel results are compared as one
# matrix: the rows of every channel (and image) stacked.


def stack(maps: Sequence[Any]) -> Matrix:
    """Nested (..., rows, columns) lists as one matrix: the rows of every leading index, in order."""
    return [list(row) for m in maps for row in stack(m)] if maps and isinstance(maps[0][0], list) else \
        [list(row) for row in maps]


def _add(a: Matrix, b: Matrix, scale: float = 1.0) -> Matrix:
    return [[(x + y) * scale for x, y in zip(r, s)] for r, s in zip(a, b)]


def sum_maps(mats: Sequence[Matrix], scale: float = 1.0) -> Matrix:
    """The entry-by-entry sum of same-sized matrices, times ``scale``."""
    total = [[0.0] * len(mats[0][0]) for _ in mats[0]]
    for m in mats:
        total = _add(total, m)
    return [[v * scale for v in row] for row in total]


def multi_conv_variants(x: Sequence[Matrix], w: Sequence[Sequence[Matrix]], conv: Callable) -> list[Variant]:
    """Stacked (C_out, H', W') answers of the classic multi-channel slips; ``conv`` is the trusted 2-D oracle."""
    out, cin = range(len(w)), range(len(x))

    def each(kernel: Callable[[int, int], Matrix], channels: Callable[[int], Sequence[int]] = lambda o: cin,
             scale: float = 1.0) -> Matrix:
        return stack([sum_maps([conv(x[c], kernel(o, c)) for c in channels(o)], scale) for o in out])

    found = [Variant(each(lambda o, c: w[o][c], lambda o: [0]), "only the first input channel is used: filter o "
                     "adds up its kernels' results over every input channel c, conv(x[c], w[o, c])", tag="first-channel-only"),
             Variant(each(lambda o, c: w[o][c], scale=1 / len(x)), "the channels are averaged; a filter adds the "
                     "results of its kernels up (no division)", tag="channels-averaged"),
             Variant(each(lambda o, c: _flip(w[o][c])), "the kernels are flipped; PyTorch's conv2d multiplies each "
                     "patch by w[o, c] as it is", tag="flipped-kernel")]
    if len(w) == len(x):
        found += [Variant(each(lambda o, c: w[o][c], lambda o: [o]), "each filter sees only the input channel of "
                          "its own number; filter o has one kernel per input channel, w[o, c], and uses all of them",
                          tag="own-channel-only"),
                  Variant(each(lambda o, c: w[c][o]), "filters and channels are swapped: w has the shape "
                          "(C_out, C_in, kh, kw), so w[o, c] is filter o's kernel for input channel c",
                          tag="filters-channels-swapped")]
    return found


def unfold_variants(x: Sequence[Sequence[Matrix]], w: Sequence[Sequence[Matrix]], conv: Callable) -> list[Variant]:
    """Stacked (N, C_out, H', W') answers of the classic unfold-and-multiply slips; ``conv`` is the 2-D oracle."""
    def batch(kernels: Callable[[int, int], Matrix]) -> Matrix:
        return stack([[sum_maps([conv(image[c], kernels(o, c)) for c in range(len(image))]) for o in range(len(w))]
                      for image in x])

    found = [Variant(batch(lambda o, c: _flip(w[o][c])), "the kernels are flipped; the rows of w.reshape(C_out, -1) "
                     "multiply the patches as they are", tag="flipped-kernel")]
    kh, kw, cin = len(w[0][0]), len(w[0][0][0]), len(w[0])
    if kh == kw:
        found.append(Variant(batch(lambda o, c: _transpose(w[o][c])), "the kernels are transposed: the weights must "
                             "be flattened row by row, in the order unfold lists each patch", tag="kernel-transposed"))
    if cin > 1:  # weights flattened channel-last: (kh, kw, C_in) order against unfold's (C_in, kh, kw)
        flat = [[v for a in range(kh) for b in range(kw) for v in (w[o][c][a][b] for c in range(cin))]
                for o in range(len(w))]
        mixed = [[[[flat[o][(c * kh + a) * kw + b] for b in range(kw)] for a in range(kh)] for c in range(cin)]
                 for o in range(len(w))]
        found.append(Variant(batch(lambda o, c: mixed[o][c]), "the weights are flattened in another order than "
                             "unfold's patches (channel, then row, then column): use w.reshape(C_out, -1) as it is",
                             tag="weights-flattened-mixed"))
    return found


def input_grad_variants(g: Matrix, k: Matrix, conv: Callable) -> list[Variant]:
    """The gradient with respect to the input after each classic slip; the right one is conv(pad(g), flip(k))."""
    padded = _pad(g, len(k) - 1, len(k[0]) - 1)
    slips = [(k, "the kernel is not flipped: each input pixel gets g back through the kernel rotated by 180 degrees, "
              "a full convolution with k[::-1, ::-1]", "gradient-kernel-unflipped")]
    slips += [(_flip(k, rows, not rows), "the kernel is flipped along one axis only; rotate it by 180 degrees, "
               "k[::-1, ::-1]", "kernel-flipped-one-axis") for rows in (True, False)]
    if len(k) == len(k[0]):
        slips.append((_transpose(k), "the kernel is transposed instead of rotated by 180 degrees (k[::-1, ::-1])",
                      "kernel-transposed"))
    # A kernel symmetric along an axis makes two slips the same answer: only the first (the plainest) is named.
    kernels = [kernel for kernel, _, _ in slips]
    return [Variant(conv(padded, kernel), mistake, tag=tag) for i, (kernel, mistake, tag) in enumerate(slips)
            if kernel not in kernels[:i]]


def grad_shape_variants(g_shape: tuple[int, int], k_shape: tuple[int, int]) -> list[Variant]:
    """Shapes of dL/dx when g is padded too little; the right one is (H' + kh - 1, W' + kw - 1)."""
    (h, w), (kh, kw) = g_shape, k_shape
    full = ("a full convolution pads g with kh - 1 rows and kw - 1 columns of zeros on each side, so dL/dx has the "
            "input's shape")
    unpadded = (max(h - kh + 1, 0), max(w - kw + 1, 0))
    found = [Variant(unpadded, f"g is not padded: {full}", tag="gradient-padding-short")]
    kept = (h + 2 * ((kh - 1) // 2) - kh + 1, w + 2 * ((kw - 1) // 2) - kw + 1)
    if kept != unpadded:  # (k - 1) // 2 is 0 for a kernel of 2: the same slip as no padding
        found.append(Variant(kept, f"g is padded by (k - 1) // 2, which keeps its own size; {full}",
                             tag="gradient-padding-short"))
    return found


def field_variants(layers: Sequence[tuple[int, int]], pools: Sequence[int] = ()) -> list[Variant]:
    """Receptive fields after each layer, worked out with each classic slip; ``pools`` index the pooling layers."""
    def fields(start: int = 1, strides: bool = True, early: bool = False, grow: Callable | None = None,
               skip: Sequence[int] = ()) -> tuple[int, ...]:
        field, jump, found = start, 1, []
        for index, (k, s) in enumerate(layers):
            if index not in skip:
                jump = jump * s if early and strides else jump
                field = grow(field, k) if grow else field + (k - 1) * jump
                jump = jump * s if strides and not early else jump
            found.append(field)
        return tuple(found)

    found = [Variant(tuple(accumulate(k for k, _ in layers)), "the kernel sizes are added up: a layer adds "
                     "k - 1 of its input's steps to the field (r + (k - 1) * jump), not k", tag="field-kernels-added"),
             Variant(fields(strides=False), "the strides are left out: after a stride-s layer every step of a later "
                     "kernel spans s times as many input pixels (jump = jump * s)", tag="field-strides-left-out"),
             Variant(fields(early=True), "each layer's own stride is applied before its kernel: a stride widens the "
                     "steps of the layers after it, not its own", tag="field-stride-too-early"),
             Variant(fields(grow=lambda r, k: r * k), "the kernel sizes are multiplied: the field grows by "
                     "(k - 1) * jump per layer", tag="field-kernels-multiplied"),
             Variant(fields(start=0), "the field starts at 0: before any layer a unit sees 1 pixel, so r = 1 + the "
                     "sum of (k - 1) * jump", tag="field-starts-at-zero")]
    if pools:
        found.append(Variant(fields(skip=pools), "the pooling layer is left out: its 2x2 window widens the field "
                             "like a kernel, and its stride multiplies the jump", tag="field-pool-left-out"))
    return found


def count_variants(c_in: int, c_out: int, kh: int, kw: int, bias: bool = True, *, linear: bool = False
                   ) -> list[Variant]:
    """Parameter counts of a Conv2d (or, ``linear=True``, of a Linear from c_in to c_out) after each classic slip."""
    weights, biases = c_out * c_in * kh * kw, c_out if bias else 0
    each = "each output unit" if linear else "each filter (each output channel)"
    found = [Variant(weights * 2, f"one bias is counted per weight: {each} has one bias", tag="bias-per-weight"),
             Variant(weights, f"the biases are left out: {each} has one, {'out_features' if linear else 'out_channels'} "
                     "in all", tag="biases-left-out")] if bias else \
        [Variant(weights + c_out, "biases are counted, but bias=False means the layer has none",
                 tag="biases-counted-without-bias")]
    if not linear:
        found += [Variant(c_out * kh * kw + biases, "the input channels are left out: each filter has C_in x kh x kw "
                          "weights, one kernel per input channel", tag="count-input-channels-left-out")]
        if bias:
            found.append(Variant(weights + c_out * c_in, "one bias is counted per input channel: each filter has "
                                 "one bias, out_channels in all", tag="bias-per-input-channel"))
    return found


# ---------------------------------------------------------------- models: which layer, which shape, which cause


class Layer(NamedTuple):
    """One leaf layer of a forward pass: its name in the student's model, its kind, the shapes in and out."""

    name: str  # e.g. "conv_model[1]"
    kind: str  # the PyTorch/convcourse class it is: "Conv2d", "Linear", "PrintSize", ...
    module: Any
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None  # None: this layer raised


_SPATIAL = ("Conv2d", "MaxPool2d", "AvgPool2d")


def _one(value: Any) -> int | None:
    """The single number of a setting that is the same for height and width, else None."""
    pair = None if isinstance(value, str) else (value, value) if isinstance(value, int) else tuple(value)
    return int(pair[0]) if pair and len(set(pair)) == 1 else None


def _spec(layer: Layer, shapes: ModuleType) -> Any:
    m = layer.module
    if layer.kind == "Conv2d":
        return shapes.Conv2dSpec(m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups)
    return shapes.Pool2dSpec(m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1),
                             "max" if layer.kind == "MaxPool2d" else "avg", m.ceil_mode)


def _change(layer: Layer, shapes: ModuleType) -> str:
    """What a layer does to the size, with the formula: 'the 5x5 Conv2d at m[1] has padding=0 and shrinks 28 to 24'"""
    m, before, after = layer.module, layer.input_shape[-2], layer.output_shape[-2]
    k, s, p, d = (_one(getattr(m, name, 1)) for name in ("kernel_size", "stride", "padding", "dilation"))
    settings = ([f"stride={s}"] if s != 1 or layer.kind != "Conv2d" else []) + \
        ([f"padding={m.padding if p is None else p}"] if layer.kind == "Conv2d" else [])
    verb = f"keeps {before}" if after == before else f"{'shrinks' if after < before else 'grows'} {before} to {after}"
    text = f"the {f'{k}x{k} ' if k else ''}{layer.kind} at {layer.name} has {', '.join(settings)} and {verb}"
    formula = None not in (k, s, p, d) and not getattr(m, "ceil_mode", False)
    return text + (f" ({shapes.formula(before, k, s, p, d)})" if formula else "")


# output_dimensions asks students to derive the padding that keeps the size: messages point at it, never say it.
SAME_PADDING = "the padding that solves H_out = H in the formula"


def explain_target(layer: Layer, target: tuple[int, int], shapes: ModuleType) -> str:
    """What ``layer`` does to the size and, when one exists, the setting that gives ``target`` instead."""
    return tagged(_target(layer, target, shapes), "size-setting")


def _target(layer: Layer, target: tuple[int, int], shapes: ModuleType) -> str:
    kernel, stride = _one(layer.module.kernel_size) or 0, _one(layer.module.stride)
    tries = [{"stride": s, "padding": p} if s != stride else {"padding": p}
             for s in dict.fromkeys((stride, 1, 2)) for p in range(kernel)] if layer.kind == "Conv2d" else \
        [{"stride": s} for s in dict.fromkeys((kernel, 2)) if s and s != stride]
    for changes in tries:
        try:
            shape = replace(_spec(layer, shapes), **changes).output_shape(layer.input_shape[1:])[1:]
        except shapes.ShapeError:
            continue
        if tuple(shape) == tuple(target):
            keeps = tuple(target) == tuple(layer.input_shape[-2:])
            fix = ", ".join(SAME_PADDING if keeps and key == "padding" else f"{key}={value}"
                            for key, value in changes.items())
            return f"{_change(layer, shapes)}; {fix} {'keeps' if keeps else 'gives'} {target[0]}"
    return _change(layer, shapes)


def _spatial(layers: Sequence[Layer]) -> list[Layer]:
    return [lay for lay in layers if lay.kind in _SPATIAL and lay.output_shape and len(lay.input_shape) == 4]


def explain_reduction(layers: Sequence[Layer], kind: str, target: tuple[int, int], shapes: ModuleType) -> str | None:
    """Why the halving ``kind`` layer does not produce ``target``: its own settings, or an earlier layer's."""
    spatial = _spatial(layers)
    ofkind = [i for i, lay in enumerate(spatial) if lay.kind == kind]
    chosen = next((i for i in ofkind if _one(spatial[i].module.stride) == 2), ofkind[0] if ofkind else None)
    if chosen is None:
        return None
    start, layer = spatial[0].input_shape[-2:], spatial[chosen]
    earlier = next((lay for lay in spatial[:chosen] if lay.output_shape[-2:] != lay.input_shape[-2:]), None)
    if earlier is not None and layer.input_shape[-2:] != start:  # the maps were already the wrong size
        size = "x".join(map(str, layer.input_shape[-2:]))
        return tagged(f"{_target(earlier, start, shapes)}, so the {kind} at {layer.name} gets {size} maps",
                      "earlier-layer-shrinks")
    return explain_target(layer, target, shapes)


def explain_failure(layers: Sequence[Layer], shapes: ModuleType) -> str | None:
    """Why the forward pass stopped at its last layer (the one without output), in the student's numbers."""
    if not layers or layers[-1].output_shape is not None or len(layers[-1].input_shape) < 2:
        return None
    if layers[-1].kind == "Linear":
        return _linear(layers[-1], layers[:-1], shapes)
    return _maps(layers[-1], layers[:-1], shapes) if layers[-1].kind in (*_SPATIAL, "BatchNorm2d") else None


def _product(sizes: Sequence[int]) -> str:
    return f"{' × '.join(map(str, sizes))} = {math.prod(sizes)}"


def _linear(failed: Layer, before: Sequence[Layer], shapes: ModuleType) -> str | None:
    need, got = failed.module.in_features, failed.input_shape
    if len(got) == 2 and got[-1] == need:
        return None  # the sizes fit: it failed for another reason
    if len(got) > 2:
        return tagged(f"Likely cause: {failed.name} (nn.Linear) receives feature maps of shape {got}: put "
                      f"nn.Flatten() before it, which makes {_product(got[1:])} values per image.", "missing-flatten")
    maps = next((lay for lay in reversed(before) if lay.output_shape and len(lay.output_shape) != 2), None)
    if maps is None or len(maps.output_shape) != 4 or math.prod(maps.output_shape[1:]) != got[-1]:
        previous = next((lay for lay in reversed(before) if lay.kind == "Linear"), None)  # Linear after Linear
        if previous is None or previous.module.out_features != got[-1]:
            return None
        return tagged(f"Likely cause: {failed.name} has in_features={need} but follows {previous.name}, which "
                      f"gives out_features={got[-1]} values per image: they must be equal.", "linear-chain-mismatch")
    facts = (f"{failed.name} (nn.Linear, in_features={need}) receives {_product(maps.output_shape[1:])} values "
             "per image")
    cause = _linear_cause(before, need, maps.output_shape[1:], facts, shapes)
    return tagged(f"Likely cause: {cause[0]}.", cause[1]) if cause else tagged(
        f"Why: {facts} (the flattened output of {maps.name}); nn.Linear({got[-1]}, ...) would accept them.",
        "in-features-mismatch")


def _linear_cause(before: Sequence[Layer], need: int, maps: tuple[int, ...], facts: str, shapes: ModuleType
                  ) -> tuple[str, str] | None:
    """The one change to the layers before that makes ``need`` values, re-traced with shapes, and its name; None if none does."""
    spatial = _spatial(before)
    specs = [_spec(lay, shapes) for lay in spatial]

    def values(trial: list) -> int | None:
        try:
            return math.prod(shapes.trace_shapes(spatial[0].input_shape[1:], trial)[-1].output_shape) if trial else None
        except shapes.ShapeError:
            return None

    if not spatial or values(specs) != math.prod(maps):
        return None  # a layer the trace cannot follow changed the shape: say nothing rather than guess
    for i, (layer, spec) in enumerate(zip(spatial, specs)):
        k, before_size = _one(layer.module.kernel_size), layer.input_shape[-2]
        if layer.output_shape[-2:] == layer.input_shape[-2:]:
            continue
        keep = [replace(spec, padding=(k - 1) // 2)] if layer.kind == "Conv2d" and k and k % 2 else None
        if keep and _one(layer.module.padding) != (k - 1) // 2 and values(specs[:i] + keep + specs[i + 1:]) == need:
            return f"{_change(layer, shapes)}, so {facts}; {SAME_PADDING} keeps {before_size}", "in-features-unpadded"
        undone = [replace(spec, stride=1)] if layer.kind == "Conv2d" else []
        if _one(layer.module.stride) != 1 and values(specs[:i] + undone + specs[i + 1:]) == need:
            return f"{_change(layer, shapes)}, so {facts}: in_features must count the maps after it", \
                "in-features-before-shrink"
    c, h, w = maps
    if need == c * (h // 2) * (w // 2):
        return f"{facts}, but in_features = {_product((c, h // 2, w // 2))} expects the maps halved once more", \
            "in-features-extra-halving"
    channels = need // (h * w)
    if need == channels * h * w and channels != c:
        return f"{facts}, but in_features = {_product((channels, h, w))} counts {channels} channel" + \
            f"{'s' * (channels != 1)}, not {c}", "in-features-channels"
    return None


def _maps(failed: Layer, before: Sequence[Layer], shapes: ModuleType) -> str | None:
    """A Conv2d, pooling or BatchNorm2d that does not fit the feature maps reaching it."""
    m, got = failed.module, failed.input_shape
    wanted = getattr(m, "in_channels", getattr(m, "num_features", None))
    if len(got) == 4 and wanted not in (None, got[1]):
        conv = next((lay for lay in reversed(before) if lay.kind == "Conv2d" and lay.output_shape), None)
        origin = f"from {conv.name}, whose out_channels={got[1]}" if conv and conv.output_shape[1] == got[1] else \
            f"the {'maps' if before else 'images'} have {got[1]}"
        setting = "in_channels" if failed.kind == "Conv2d" else "num_features"
        return tagged(f"Likely cause: {failed.name} is built for {setting}={wanted} but receives {got[1]} channel"
                      f"{'s' * (got[1] != 1)} ({origin}): {setting} must be the number of channels that reach it.",
                      "in-channels-mismatch")
    try:
        if len(got) == 4 and failed.kind in _SPATIAL:
            _spec(failed, shapes).output_shape(got[1:])
    except shapes.ShapeError as error:
        return tagged(f"Why: {failed.name} receives {got[2]}x{got[3]} feature maps, too small for it: {error}.",
                      "maps-too-small")
    return None


# ---------------------------------------------------------------- habits: not wrong, but worth changing

_ACTIVATIONS = ("ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "GELU", "Softplus")
_LINEAR_ISH = ("PrintSize", "Identity", "Flatten", "Dropout", "Dropout2d", "BatchNorm1d", "BatchNorm2d")


def habit_warnings(model: str, layers: Sequence[Layer]) -> list[str]:
    """Sentences about habits that cost accuracy or speed without failing a check (no points are lost)."""
    found, shown = [], [lay for lay in layers if lay.kind not in ("PrintSize", "Identity")]
    last = shown[-1] if shown else Layer("", "", None, (), ())
    if last.kind == "Softmax":
        found.append(f"{model} ends in nn.Softmax ({last.name}), but fit's loss (cross-entropy, like "
                     "nn.CrossEntropyLoss) applies log-softmax itself: the extra softmax squashes the scores and "
                     "training gets slower; end with the last nn.Linear and use softmax only to read probabilities"
                     " [softmax-before-loss]")
    elif last.kind in _ACTIVATIONS:
        found.append(f"{model} ends in nn.{last.kind} ({last.name}): the loss expects raw class scores (logits) and "
                     "applies log-softmax itself, so end with the last nn.Linear [activation-at-end]")
    elif last.kind.startswith("Dropout"):
        found.append(f"{model} ends in nn.{last.kind} ({last.name}): it zeroes class scores at random while "
                     "training; put dropout before a Linear layer, not after the last one [dropout-at-end]")
    weight = None  # the last Linear/Conv2d with nothing non-linear after it so far
    for layer in layers:
        if layer.kind in ("Linear", "Conv2d") and weight is not None:
            found.append(f"{weight.name} and {layer.name} (nn.{weight.kind}, nn.{layer.kind}) have no activation "
                         "between them, so together they are one linear map: the extra layer adds parameters but no "
                         "depth; put an nn.ReLU() between them [no-activation-between]")
        weight = layer if layer.kind in ("Linear", "Conv2d") else weight if layer.kind in _LINEAR_ISH else None
    frozen = sorted({lay.kind for lay in layers if lay.kind.startswith(("Dropout", "BatchNorm"))
                     and not lay.module.training})
    if frozen:
        found.append(f"{model} is in evaluation mode ({model}.eval() was called), so its {' and '.join(frozen)} "
                     f"layers act as at test time; fit switches to training mode itself, but call {model}.train() "
                     "before training it any other way [eval-mode-left-on]")
    return found


# ---------------------------------------------------------------- cnn_experiments: padding, shifted images


def describe_change(layer: Layer, shapes: ModuleType) -> str:
    """What ``layer`` does to the size, with the formula, and no setting that fixes it (when that is the task)."""
    return _change(layer, shapes)


_ROWS, _COLS = 2, 3  # the axes of height and width in (N, C, H, W)


def _zeros_like(x: Any) -> Any:
    return [_zeros_like(v) for v in x] if isinstance(x, list) else 0.0


def _moved(x: list, axis: int, d: int, fill: str) -> list:
    """Nested lists ``x`` moved ``d`` places along ``axis``; the gap is 0 (fill "zero"), wraps ("wrap") or
    repeats the edge ("edge")."""
    if axis:
        return [_moved(v, axis - 1, d, fill) for v in x]
    n = len(x)
    sources = [i - d for i in range(n)]
    if fill == "wrap":
        return [x[j % n] for j in sources]
    if fill == "edge":
        return [x[min(max(j, 0), n - 1)] for j in sources]
    return [x[j] if 0 <= j < n else _zeros_like(x[0]) for j in sources]


def flat(x: Any) -> list[list[float]]:
    """Nested lists of numbers as one row of a matrix, the form :func:`diagnose` compares."""
    def values(v: Any) -> list[float]:
        return [w for item in v for w in values(item)] if isinstance(v, list) else [float(v)]
    return [values(x)]


def shift_variants(images: list, dy: int, dx: int) -> list[Variant]:
    """What shift_images(images, dy, dx) gives after each classic mistake; ``images`` are (N, C, H, W) nested lists."""
    def moved(*moves: tuple[int, int], fill: str = "zero") -> list[list[float]]:
        out = images
        for axis, d in moves:
            out = _moved(out, axis, d, fill)
        return flat(out)

    axes = ("the shift moves the wrong axes: images are (N, C, H, W), so rows are axis 2 (or -2) and columns "
            "axis 3 (or -1)")
    found = [Variant(moved((_ROWS, dy), (_COLS, dx), fill="wrap"), "what leaves one edge comes back at the other "
                     "(torch.roll wraps around); the uncovered rows and columns should be 0, the background",
                     tag="shift-wraps-around"),
             Variant(moved((_ROWS, dy), (_COLS, dx), fill="edge"), "the uncovered pixels repeat the edge row or "
                     "column (replicate padding); they should be 0, the background", tag="shift-repeats-edge"),
             Variant(moved((_ROWS, -dy), (_COLS, -dx)), "the digit moves the wrong way: a positive dy moves it down "
                     "(row i goes to row i + dy), a positive dx to the right", tag="shift-wrong-direction"),
             Variant(moved((_ROWS, dx), (_COLS, dy)), "dy and dx are swapped: dy moves the rows (axis 2, the "
                     "height), dx the columns (axis 3, the width)", tag="shift-dy-dx-swapped"),
             Variant(moved((_ROWS, dy)), "only the rows move: the shift by dx is missing", tag="shift-rows-only"),
             Variant(moved((_COLS, dx)), "only the columns move: the shift by dy is missing", tag="shift-columns-only")]
    for first in (0, 1):  # (N, C) or (C, H) taken for the image's axes
        found += [Variant(moved((first, dy), (first + 1, dx)), axes, tag="shift-wrong-axes"),
                  Variant(moved((first, dy), (first + 1, dx), fill="wrap"), axes + ", and torch.roll wraps "
                          "around where the uncovered pixels should be 0", tag="shift-wrong-axes")]
    # All zeros or the input itself say nothing about how they came about: only the plain statement is kept.
    unchanged = flat(images)
    return [v for v in found if any(v.answer[0]) and v.answer != unchanged] + \
        [Variant(unchanged, "the images come back unmoved (is the shifted tensor the one returned?)", tag="shift-unmoved")]
