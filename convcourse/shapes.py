"""Output-shape arithmetic for Conv2d, MaxPool2d and AvgPool2d, matching PyTorch exactly.

One dimension: H_out = floor((H + 2p - d(k - 1) - 1) / s) + 1. Everything here is plain Python
(no torch import), so the widgets and notebooks can call it instantly. Invalid configurations
raise `ShapeError` with a message that names the rule that broke.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence, Union

__all__ = [
    "ShapeError",
    "conv_output_size",
    "conv2d_output_shape",
    "pool2d_output_shape",
    "conv2d_parameter_count",
    "formula",
    "receptive_fields",
    "Conv2dSpec",
    "Pool2dSpec",
    "LinearSpec",
    "LayerShape",
    "trace_shapes",
    "format_trace",
]

IntOrPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], str]
Shape3 = tuple[int, int, int]
_DIMS = ("height", "width")


class ShapeError(ValueError):
    """An impossible layer configuration; the message says which rule broke."""


# ----------------------------------------------------------------------------- argument checks


def _is_int(value: object) -> bool:
    # Integral admits numpy integers (widgets and sliders may hand those over); bool is no size.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """An int or a (height, width) pair of ints, as PyTorch accepts them."""
    if _is_int(value):
        return (int(value), int(value))  # type: ignore[arg-type]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    raise ShapeError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")


def _positive(values: tuple[int, ...], name: str) -> None:
    if any(v <= 0 for v in values):
        raise ShapeError(f"non-positive size: {name} must be positive, got {_show(values)}")


def _show(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))


def _input_shape(input_shape: Sequence[int]) -> Shape3:
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3 and all(_is_int(v) for v in input_shape)):
        raise ShapeError(f"input_shape must be (channels, height, width) ints, got {input_shape!r}")
    c, h, w = (int(v) for v in input_shape)
    if min(c, h, w) <= 0:
        raise ShapeError(f"non-positive size: input_shape (C, H, W) must be positive, got {tuple(input_shape)}")
    return (c, h, w)


def _conv_padding(padding: Padding, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]):
    """Resolve PyTorch's "valid"/"same" strings to the total padding per dimension (left+right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ShapeError(f"padding='same' needs stride 1 (PyTorch refuses strided 'same'), got stride {_show(stride)}")
            # PyTorch pads d(k-1) in total, the odd pixel on the right/bottom: the size is kept.
            return tuple(d * (k - 1) for k, d in zip(kernel, dilation))
        raise ShapeError(f"padding string must be 'valid' or 'same', got {padding!r}")
    pad = _pair(padding, "padding")
    if min(pad) < 0:
        raise ShapeError(f"negative padding: padding must be >= 0, got {_show(pad)}")
    return (2 * pad[0], 2 * pad[1])


def _one_dim(size: int, kernel: int, stride: int, total_pad: int, dilation: int, dim: str) -> int:
    effective = dilation * (kernel - 1) + 1
    padded = size + total_pad
    if effective > padded:
        extent = f"effective kernel {dilation}*({kernel}-1)+1 = {effective}" if dilation != 1 else f"kernel {kernel}"
        raise ShapeError(
            f"kernel larger than padded input ({dim}): {extent} > padded input {padded}"
            f" (input {size}, padding {total_pad // 2} on each side)"
        )
    return int((padded - effective) // stride + 1)


# ----------------------------------------------------------------------------- public functions


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int | str = 0, dilation: int = 1) -> int:
    """Output length along one dimension: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    for name, value in (("size", size), ("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if not _is_int(value):
            raise ShapeError(f"{name} must be an int, got {value!r}")
        _positive((value,), name)
    if not (isinstance(padding, str) or _is_int(padding)):
        raise ShapeError(f"padding must be an int, 'valid' or 'same', got {padding!r}")
    total = _conv_padding(padding, (kernel_size,) * 2, (stride,) * 2, (dilation,) * 2)[0]
    return _one_dim(size, kernel_size, stride, total, dilation, "size")


def conv2d_output_shape(
    input_shape: Sequence[int],
    out_channels: int,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    *,
    filter_channels: int | None = None,
    groups: int = 1,
) -> Shape3:
    """(C_out, H_out, W_out) of `nn.Conv2d` on a (C, H, W) input; raises ShapeError where PyTorch fails."""
    c, h, w = _input_shape(input_shape)
    if not _is_int(out_channels) or out_channels <= 0:
        raise ShapeError(f"non-positive size: out_channels (number of filters) must be a positive int, got {out_channels!r}")
    kernel, step, dil = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(dilation, "dilation")
    _positive(kernel, "kernel_size")
    _positive(step, "stride")
    _positive(dil, "dilation")
    if not _is_int(groups) or groups <= 0:
        raise ShapeError(f"groups must be a positive int, got {groups!r}")
    if c % groups:
        raise ShapeError(f"groups must divide the input channels: {c} channels are not divisible by groups={groups}")
    if out_channels % groups:
        raise ShapeError(f"groups must divide out_channels: {out_channels} is not divisible by groups={groups}")
    if filter_channels is not None:
        if not _is_int(filter_channels) or filter_channels <= 0:
            raise ShapeError(f"non-positive size: filter_channels must be a positive int, got {filter_channels!r}")
        if filter_channels * groups != c:
            need = f"{c}" if groups == 1 else f"{c}/groups = {c // groups}"
            raise ShapeError(
                f"channel mismatch between input and filters: the input has {c} channels, so each filter "
                f"needs {need} channels, but the filters have {filter_channels}"
            )
    pads = _conv_padding(padding, kernel, step, dil)
    h_out, w_out = (
        _one_dim(size, k, s, p, d, dim) for size, k, s, p, d, dim in zip((h, w), kernel, step, pads, dil, _DIMS)
    )
    return (int(out_channels), h_out, w_out)


def _pool_one_dim(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool, dim: str) -> int:
    # PyTorch's pooling_output_shape: floor (or ceil) division, and in ceil mode the last
    # window must start inside the input or its left padding.
    span = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    if out < 1:
        extent = f"effective kernel {d}*({k}-1)+1 = {d * (k - 1) + 1}" if d != 1 else f"kernel {k}"
        raise ShapeError(
            f"kernel larger than padded input ({dim}): {extent} > padded input {size + 2 * p}"
            f" (input {size}, padding {p} on each side), which gives an output {dim} of {out}"
        )
    return out


def pool2d_output_shape(
    input_shape: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    *,
    kind: str = "max",
    ceil_mode: bool = False,
) -> Shape3:
    """(C, H_out, W_out) of `nn.MaxPool2d` (kind="max") or `nn.AvgPool2d` (kind="avg"); stride defaults to kernel."""
    if kind not in ("max", "avg"):
        raise ShapeError(f"kind must be 'max' or 'avg', got {kind!r}")
    c, h, w = _input_shape(input_shape)
    kernel = _pair(kernel_size, "kernel_size")
    step = kernel if stride is None else _pair(stride, "stride")
    pad, dil = _pair(padding, "padding"), _pair(dilation, "dilation")
    _positive(kernel, "kernel_size")
    _positive(step, "stride")
    _positive(dil, "dilation")
    if kind == "avg" and dil != (1, 1):
        raise ShapeError(f"AvgPool2d has no dilation; got dilation {_show(dil)}")
    if min(pad) < 0:
        raise ShapeError(f"negative padding: padding must be >= 0, got {_show(pad)}")
    for p, k, dim in zip(pad, kernel, _DIMS):
        if p > k // 2:
            raise ShapeError(
                f"pool padding larger than half the kernel ({dim}): padding {p} > kernel {k} // 2 = {k // 2} "
                "(PyTorch requires padding <= kernel_size / 2)"
            )
    h_out, w_out = (
        _pool_one_dim(size, k, s, p, d, ceil_mode, dim)
        for size, k, s, p, d, dim in zip((h, w), kernel, step, pad, dil, _DIMS)
    )
    return (c, int(h_out), int(w_out))


def conv2d_parameter_count(
    in_channels: int, out_channels: int, kernel_size: IntOrPair, *, bias: bool = True, groups: int = 1
) -> int:
    """Weights out*(in/groups)*kh*kw, plus one bias per output channel."""
    kh, kw = _pair(kernel_size, "kernel_size")
    _positive((in_channels, out_channels, kh, kw), "channels and kernel_size")
    if not _is_int(groups) or groups <= 0 or in_channels % groups or out_channels % groups:
        raise ShapeError(f"groups={groups!r} must be a positive int dividing in_channels and out_channels")
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


def formula(size: int, kernel_size: int, stride: int = 1, padding: int | str = 0, dilation: int = 1) -> str:
    """The one-dimension formula with the numbers filled in, e.g. 'floor((28 + 2*2 - 5) / 1) + 1 = 28'."""
    out = conv_output_size(size, kernel_size, stride, padding, dilation)
    if padding == "same":
        return f"padding='same' keeps the size: {out}"
    if padding == "valid":
        padding = 0
    kernel_term = f"{kernel_size}" if dilation == 1 else f"{dilation}*({kernel_size} - 1) - 1"
    return f"floor(({size} + 2*{padding} - {kernel_term}) / {stride}) + 1 = {out}"


def receptive_fields(layers: Sequence[tuple[int, int]]) -> list[int]:
    """Receptive field (input pixels along one side) of one unit after each layer, for (kernel_size, stride) pairs.

    A layer of kernel k adds (k - 1) steps of the layers before it, each step ``jump`` input pixels
    wide: r = r + (k - 1) * jump, then jump = jump * stride. Padding moves the field, never widens it.
    """
    field, jump, fields = 1, 1, []
    for index, layer in enumerate(layers):
        if not (isinstance(layer, (tuple, list)) and len(layer) == 2 and all(_is_int(v) for v in layer)):
            raise ShapeError(f"layer {index} must be a (kernel_size, stride) pair of ints, got {layer!r}")
        kernel, stride = (int(v) for v in layer)
        _positive((kernel, stride), f"layer {index}'s kernel_size and stride")
        field, jump = field + (kernel - 1) * jump, jump * stride
        fields.append(field)
    return fields


# ----------------------------------------------------------------------------- layer stacks


@dataclass(frozen=True)
class Conv2dSpec:
    """An `nn.Conv2d` whose in_channels come from the previous layer."""

    out_channels: int
    kernel_size: IntOrPair
    stride: IntOrPair = 1
    padding: Padding = 0
    dilation: IntOrPair = 1
    groups: int = 1
    bias: bool = True

    def output_shape(self, input_shape: Sequence[int]) -> Shape3:
        """Output (C, H, W) for this input."""
        return conv2d_output_shape(
            input_shape, self.out_channels, self.kernel_size, self.stride, self.padding, self.dilation, groups=self.groups
        )

    def parameters(self, input_shape: Sequence[int]) -> int:
        """Weights plus biases."""
        return conv2d_parameter_count(input_shape[0], self.out_channels, self.kernel_size, bias=self.bias, groups=self.groups)

    def describe(self, input_shape: Sequence[int]) -> str:
        """Like PyTorch's repr, with the real in_channels."""
        extra = "".join(
            f", {name}={value!r}"
            for name, value, default in (
                ("stride", self.stride, 1), ("padding", self.padding, 0), ("dilation", self.dilation, 1),
                ("groups", self.groups, 1), ("bias", self.bias, True),
            )
            if value != default
        )
        return f"Conv2d({input_shape[0]}, {self.out_channels}, kernel_size={self.kernel_size!r}{extra})"


@dataclass(frozen=True)
class Pool2dSpec:
    """An `nn.MaxPool2d` (kind="max") or `nn.AvgPool2d` (kind="avg")."""

    kernel_size: IntOrPair
    stride: IntOrPair | None = None
    padding: IntOrPair = 0
    dilation: IntOrPair = 1
    kind: str = "max"
    ceil_mode: bool = False

    def output_shape(self, input_shape: Sequence[int]) -> Shape3:
        """Output (C, H, W) for this input."""
        return pool2d_output_shape(
            input_shape, self.kernel_size, self.stride, self.padding, self.dilation, kind=self.kind, ceil_mode=self.ceil_mode
        )

    def parameters(self, input_shape: Sequence[int]) -> int:
        """Pooling has no parameters."""
        return 0

    def describe(self, input_shape: Sequence[int]) -> str:
        """Like PyTorch's repr."""
        name = "MaxPool2d" if self.kind == "max" else "AvgPool2d"
        stride = self.kernel_size if self.stride is None else self.stride
        return f"{name}(kernel_size={self.kernel_size!r}, stride={stride!r}, padding={self.padding!r})"


@dataclass(frozen=True)
class LinearSpec:
    """`nn.Flatten()` then `nn.Linear(in_features, out_features)`: the classifier head."""

    out_features: int
    bias: bool = True

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int]:
        """(out_features,)."""
        if not _is_int(self.out_features) or self.out_features <= 0:
            raise ShapeError(f"non-positive size: out_features must be a positive int, got {self.out_features!r}")
        return (self.out_features,)

    def parameters(self, input_shape: Sequence[int]) -> int:
        """in_features * out_features weights plus biases."""
        in_features = 1
        for size in input_shape:
            in_features *= size
        return in_features * self.out_features + (self.out_features if self.bias else 0)

    def describe(self, input_shape: Sequence[int]) -> str:
        """Like PyTorch's repr, with the flattened in_features."""
        in_features = 1
        for size in input_shape:
            in_features *= size
        return f"Linear(in_features={in_features}, out_features={self.out_features})"


LayerSpec = Union[Conv2dSpec, Pool2dSpec, LinearSpec]


@dataclass(frozen=True)
class LayerShape:
    """One traced layer: what goes in, what comes out, how many parameters it holds."""

    index: int
    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    parameters: int


def trace_shapes(input_shape: Sequence[int], layers: Sequence[LayerSpec]) -> list[LayerShape]:
    """Follow a (C, H, W) input through `layers`; a ShapeError names the layer that fails."""
    shape: tuple[int, ...] = _input_shape(input_shape)
    rows = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, (Conv2dSpec, Pool2dSpec, LinearSpec)):
            raise ShapeError(f"layer {index}: expected Conv2dSpec, Pool2dSpec or LinearSpec, got {layer!r}")
        if len(shape) != 3 and not isinstance(layer, LinearSpec):
            raise ShapeError(f"layer {index}: {type(layer).__name__} needs a (C, H, W) input, got {shape}")
        try:
            out = layer.output_shape(shape)
        except ShapeError as err:
            raise ShapeError(f"layer {index} ({layer.describe(shape)}) on input {shape}: {err}") from None
        rows.append(LayerShape(index, layer.describe(shape), shape, tuple(out), layer.parameters(shape)))
        shape = tuple(out)
    return rows


def format_trace(rows: Sequence[LayerShape]) -> str:
    """A plain-text table of a trace, with the total parameter count."""
    width = max([len(r.name) for r in rows] + [5])
    lines = [f"{'layer':<{width}}  {'output shape':<16} {'parameters':>10}"]
    lines += [f"{r.name:<{width}}  {str(r.output_shape):<16} {r.parameters:>10,}" for r in rows]
    lines.append(f"{'total':<{width}}  {'':<16} {sum(r.parameters for r in rows):>10,}")
    return "\n".join(lines)
