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
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any, NamedTuple

Matrix = list[list[float]]
TOL = 1e-4  # the tolerance checks.check_matrix uses


class Variant(NamedTuple):
    """A classic wrong answer, and the clause that names the mistake and its fix."""

    answer: Any  # a Matrix, a (C, H, W) tuple, or None
    mistake: str
    reveals: bool = False  # naming it would hand over the expected values (skipped where they are hidden)


def same(a: Any, b: Any, tol: float = TOL) -> bool:
    """Whether two answers agree: matrices entry by entry within ``tol``, anything else exactly."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(len(r) == len(s) and all(abs(g - w) <= tol * (1 + abs(w)) for g, w in zip(r, s))
                                        for r, s in zip(a, b))
    return not isinstance(a, list) and not isinstance(b, list) and a == b


def diagnose(got: Any, expected: Any, variants: Sequence[Variant], *, reveal: bool = True, tol: float = TOL
             ) -> str | None:
    """The mistake that produces ``got``; None when no variant, or more than two, match (never a guess)."""
    mistakes = list(dict.fromkeys(v.mistake for v in variants if (reveal or not v.reveals)
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
    found = [Variant(_transpose(want), f"rows and columns are swapped: output[i, j] comes from {patch}", True),
             Variant([[float(int(v)) for v in row] for row in want], "the fractional parts are cut off: the output "
                     "array holds integers (np.zeros_like(x) copies an integer x's dtype); create it as floats, "
                     "e.g. np.zeros((rows, cols))", True),
             # [] for a 1-row result: checks passes [] when the answer is an empty array one row and column short
             Variant([row[:-1] for row in want[:-1]], f"the last row and column are missing: the output has {count} "
                     "(the + 1 counts the first position)")]
    if len(want) > 1 and len(want[0]) > 1 and any(v for row in want[:-1] for v in row[:-1]):  # else any 0s match
        found.append(Variant([row[:-1] + [0.0] for row in want[:-1]] + [[0.0] * len(want[0])], "the last row and "
                             "column are still 0: the loops stop one position early; loop over range(out.shape[0]) "
                             "and range(out.shape[1])"))
    return found


def conv_variants(x: Matrix, k: Matrix, conv: Callable[[Matrix, Matrix], Matrix]) -> list[Variant]:
    """What conv2d_naive (or conv_by_hand) gives after each classic mistake; ``conv`` is the trusted oracle."""
    kh, kw = len(k), len(k[0])
    found = [Variant(conv(x, _flip(k)), "the result equals the cross-correlation with the flipped kernel, a "
                     "textbook convolution; PyTorch's conv2d does not flip the kernel, so multiply each patch by k "
                     "as it is")]
    found += [Variant(conv(x, _flip(k, rows, not rows)), "the kernel is flipped upside down or left to right: "
                      "k[a, b] multiplies x[i + a, j + b]") for rows in (True, False)]
    if kh == kw:  # a square kernel can be transposed, or multiplied as a matrix
        found.append(Variant(conv(x, _transpose(k)), "the kernel is transposed: k[a, b] multiplies x[i + a, j + b]"))
        found.append(Variant([[sum(a * b for prow in patch for kcol in zip(*k) for a, b in zip(prow, kcol))
                               for patch in _patches(x, kh, kw, i)] for i in range(len(x) - kh + 1)],
                             "each entry sums a matrix product (patch @ k or np.dot); it is the sum of the "
                             "element-wise products, np.sum(patch * k)"))
    if kh > 1 or kw > 1:
        found.append(Variant(conv(_pad(x, (kh - 1) // 2, (kw - 1) // 2), k), "the input is zero-padded; here there "
                             "is no padding, so the output has H - kh + 1 rows and W - kw + 1 columns"))
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
    found = [Variant(pooled(count=lambda n, s, st: -(-(n - s) // st) + 1), partial),
             Variant(pooled(count=lambda n, s, st: len(range(0, n, st))), partial),
             Variant(pooled(reduce=lambda v: sum(v) / len(v)), "each window is averaged; max pooling keeps the "
                     "largest value, .max()"),
             Variant(pooled(stride=1), moved), Variant(pooled(step=1), moved),
             Variant(pooled(stride=size), "the window moves size squares at a time; it should move stride squares"),
             Variant(pooled(size=stride, stride=size), "size and stride are swapped: the signature is "
                     "maxpool2d(x, size, stride)"),
             Variant(pooled(2, 2), "the window is always 2x2 with stride 2: use the size and stride arguments"),
             Variant(pooled(swap=True), "the numbers of rows and columns are swapped: rows come from x.shape[0] "
                     "(the height), columns from x.shape[1]")]
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
                                 True))
        if fc != c:
            found.append(Variant(oracle(case._replace(filter_shape=(c, kh, kw))), "the filters' channels "
                                 "(filter_shape[0]) differ from the input's (no Conv2d can compute it: return None)",
                                 True))
        return found
    _, ho, wo = want
    found = [Variant((n, ho - 1, wo - 1), "the + 1 of the formula is missing (it counts the kernel's first position)"),
             Variant(dims(ceil=True), "the division is rounded up (the formula rounds down with //: an incomplete "
                     "last step does not count)"),
             Variant(dims(sides=1), "the padding is counted once (it is added on both sides: H + 2p)"),
             Variant((n, wo, ho), "height and width are swapped (the answer is (channels, height, width))"),
             Variant((ho, wo, n), "the channels come last (the answer is (channels, height, width))"),
             Variant((c, ho, wo), "the output has the input's channels (it has one channel per filter: num_filters)")]
    if kh == h + 2 * ph or kw == w + 2 * pw:
        found.append(Variant(None, "a kernel exactly as large as the padded input is taken as invalid (it fits "
                             "once, size 1: only k > H + 2p is invalid)", True))
    swaps = (("padding", (0, 0), "the padding is left out (the padded input is H + 2p: p zeros on each side)"),
             ("stride", (1, 1), "the stride is left out (divide H + 2p - k by it, with //, before adding 1)"),
             ("stride", (sw, sh), "the strides of height and width are swapped (stride is (sh, sw))"),
             ("padding", (pw, ph), "the paddings of height and width are swapped (padding is (ph, pw))"),
             ("filter_shape", (fc, kw, kh), "kh and kw are swapped (filter_shape is (C, kh, kw))"),
             ("input_shape", (c, w, h), "the input's height and width are swapped (input_shape is (C, H, W))"))
    for field, value, mistake in swaps:
        answer = oracle(case._replace(**{field: value}))
        if answer is None and field == "padding" and value == (0, 0):  # the validity test forgets the padding
            found.append(Variant(None, "the kernel is compared with the input without its padding (it fits when "
                                 "k <= H + 2p)", True))
        elif answer is not None:
            found.append(Variant(answer, mistake))
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


def explain_target(layer: Layer, target: tuple[int, int], shapes: ModuleType) -> str:
    """What ``layer`` does to the size and, when one exists, the setting that gives ``target`` instead."""
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
            fix = ", ".join(f"{key}={value}" for key, value in changes.items())
            verb = "keeps" if tuple(target) == tuple(layer.input_shape[-2:]) else "gives"
            return f"{_change(layer, shapes)}; {fix} {verb} {target[0]}"
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
        return f"{explain_target(earlier, start, shapes)}, so the {kind} at {layer.name} gets {size} maps"
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
        return (f"Likely cause: {failed.name} (nn.Linear) receives feature maps of shape {got}: put nn.Flatten() "
                f"before it, which makes {_product(got[1:])} values per image.")
    maps = next((lay for lay in reversed(before) if lay.output_shape and len(lay.output_shape) != 2), None)
    if maps is None or len(maps.output_shape) != 4 or math.prod(maps.output_shape[1:]) != got[-1]:
        previous = next((lay for lay in reversed(before) if lay.kind == "Linear"), None)  # Linear after Linear
        if previous is None or previous.module.out_features != got[-1]:
            return None
        return (f"Likely cause: {failed.name} has in_features={need} but follows {previous.name}, which gives "
                f"out_features={got[-1]} values per image: they must be equal.")
    facts = (f"{failed.name} (nn.Linear, in_features={need}) receives {_product(maps.output_shape[1:])} values "
             "per image")
    cause = _linear_cause(before, need, maps.output_shape[1:], facts, shapes)
    return f"Likely cause: {cause}." if cause else \
        f"Why: {facts} (the flattened output of {maps.name}); nn.Linear({got[-1]}, ...) would accept them."


def _linear_cause(before: Sequence[Layer], need: int, maps: tuple[int, ...], facts: str, shapes: ModuleType
                  ) -> str | None:
    """The one change to the layers before that makes ``need`` values, re-traced with shapes; None if none does."""
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
            return f"{_change(layer, shapes)}, so {facts}; padding={(k - 1) // 2} keeps {before_size}"
        undone = [replace(spec, stride=1)] if layer.kind == "Conv2d" else []
        if _one(layer.module.stride) != 1 and values(specs[:i] + undone + specs[i + 1:]) == need:
            return f"{_change(layer, shapes)}, so {facts}: in_features must count the maps after it"
    c, h, w = maps
    if need == c * (h // 2) * (w // 2):
        return f"{facts}, but in_features = {_product((c, h // 2, w // 2))} expects the maps halved once more"
    channels = need // (h * w)
    if need == channels * h * w and channels != c:
        return f"{facts}, but in_features = {_product((channels, h, w))} counts {channels} channel" + \
            f"{'s' * (channels != 1)}, not {c}"
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
        return (f"Likely cause: {failed.name} is built for {setting}={wanted} but receives {got[1]} channel"
                f"{'s' * (got[1] != 1)} ({origin}): {setting} must be the number of channels that reach it.")
    try:
        if len(got) == 4 and failed.kind in _SPATIAL:
            _spec(failed, shapes).output_shape(got[1:])
    except shapes.ShapeError as error:
        return f"Why: {failed.name} receives {got[2]}x{got[3]} feature maps, too small for it: {error}."
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
                     "training gets slower; end with the last nn.Linear and use softmax only to read probabilities")
    elif last.kind in _ACTIVATIONS:
        found.append(f"{model} ends in nn.{last.kind} ({last.name}): the loss expects raw class scores (logits) and "
                     "applies log-softmax itself, so end with the last nn.Linear")
    elif last.kind.startswith("Dropout"):
        found.append(f"{model} ends in nn.{last.kind} ({last.name}): it zeroes class scores at random while "
                     "training; put dropout before a Linear layer, not after the last one")
    weight = None  # the last Linear/Conv2d with nothing non-linear after it so far
    for layer in layers:
        if layer.kind in ("Linear", "Conv2d") and weight is not None:
            found.append(f"{weight.name} and {layer.name} (nn.{weight.kind}, nn.{layer.kind}) have no activation "
                         "between them, so together they are one linear map: the extra layer adds parameters but no "
                         "depth; put an nn.ReLU() between them")
        weight = layer if layer.kind in ("Linear", "Conv2d") else weight if layer.kind in _LINEAR_ISH else None
    frozen = sorted({lay.kind for lay in layers if lay.kind.startswith(("Dropout", "BatchNorm"))
                     and not lay.module.training})
    if frozen:
        found.append(f"{model} is in evaluation mode ({model}.eval() was called), so its {' and '.join(frozen)} "
                     f"layers act as at test time; fit switches to training mode itself, but call {model}.train() "
                     "before training it any other way")
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
                     "(torch.roll wraps around); the uncovered rows and columns should be 0, the background"),
             Variant(moved((_ROWS, dy), (_COLS, dx), fill="edge"), "the uncovered pixels repeat the edge row or "
                     "column (replicate padding); they should be 0, the background"),
             Variant(moved((_ROWS, -dy), (_COLS, -dx)), "the digit moves the wrong way: a positive dy moves it down "
                     "(row i goes to row i + dy), a positive dx to the right"),
             Variant(moved((_ROWS, dx), (_COLS, dy)), "dy and dx are swapped: dy moves the rows (axis 2, the "
                     "height), dx the columns (axis 3, the width)"),
             Variant(moved((_ROWS, dy)), "only the rows move: the shift by dx is missing"),
             Variant(moved((_COLS, dx)), "only the columns move: the shift by dy is missing")]
    for first in (0, 1):  # (N, C) or (C, H) taken for the image's axes
        found += [Variant(moved((first, dy), (first + 1, dx)), axes),
                  Variant(moved((first, dy), (first + 1, dx), fill="wrap"), axes + ", and torch.roll wraps "
                          "around where the uncovered pixels should be 0")]
    # All zeros or the input itself say nothing about how they came about: only the plain statement is kept.
    unchanged = flat(images)
    return [v for v in found if any(v.answer[0]) and v.answer != unchanged] + \
        [Variant(unchanged, "the images come back unmoved (is the shifted tensor the one returned?)")]
