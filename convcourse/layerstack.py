"""Layer-stack mode of the shape calculator: PyTorch-style layer lines in, every shape and count out.

Students write (or paste) the layers as they would in ``nn.Sequential``, one per line, e.g.
``Conv2d(1, 32, kernel_size=5, padding=2)``; ``in_channels`` and ``in_features`` are checked
against what the previous layer really produces, which is where most shape bugs live.
"""

from __future__ import annotations

import ast
import html
import inspect
import operator
from dataclasses import dataclass
from typing import Any, Union

from . import widgetkit as kit
from .shapes import Conv2dSpec, LayerShape, LinearSpec, Pool2dSpec, ShapeError, format_trace, trace_shapes

# The lab's ConvModel2 for a (1, 28, 28) MNIST image, head included.
CONV_MODEL_2 = """\
Conv2d(1, 32, kernel_size=5, padding=2)
ReLU()
Conv2d(32, 64, kernel_size=3, padding=1)
ReLU()
MaxPool2d(2, 2)
Flatten()
Linear(64 * 14 * 14, 128)
ReLU()
Linear(128, 10)
"""

# Layers that keep the shape and hold no parameters: accepted and passed over.
PASS_THROUGH = {"ReLU", "LeakyReLU", "GELU", "ELU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
                "Dropout", "Dropout2d", "Identity", "Flatten", "PrintSize"}


def _conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
            padding_mode="zeros"): ...
def _maxpool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False): ...
def _avgpool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None): ...
def _linear(in_features, out_features, bias=True): ...


# PyTorch's own constructor signatures, so a wrong argument gets Python's usual clear message.
_SIGNATURES = {name: inspect.signature(f) for name, f in
               (("Conv2d", _conv2d), ("MaxPool2d", _maxpool2d), ("AvgPool2d", _avgpool2d), ("Linear", _linear))}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}

LayerSpec = Union[Conv2dSpec, Pool2dSpec, LinearSpec]


@dataclass(frozen=True)
class ParsedLayer:
    """One layer line: its number, its text, the shape spec and the input size it declares."""

    line: int
    source: str
    spec: LayerSpec
    declared_in: int | None  # Conv2d's in_channels or Linear's in_features


def _literal(node: ast.AST) -> Any:
    """A literal, a tuple of them, or integer arithmetic such as ``64 * 14 * 14``."""
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _literal(node.left), _literal(node.right)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right)):
            raise ValueError("arithmetic is only allowed on whole numbers")
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"arguments must be numbers, tuples, True/False/None, strings or whole-number "
                         f"arithmetic, got {ast.unparse(node)!r}") from None


def parse_layer(line_no: int, source: str) -> ParsedLayer | None:
    """Parse one line; None for blank, comment or shape-keeping lines; ValueError saying what is wrong."""
    text = source.split("#", 1)[0].strip().rstrip(",")
    if not text:
        return None
    where = f"line {line_no} ({text})"
    try:
        call = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise ValueError(f"{where}: not a layer; write it as in PyTorch, e.g. Conv2d(1, 32, kernel_size=5)") from None
    func = call.func if isinstance(call, ast.Call) else None
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name in PASS_THROUGH:
        return None
    if name not in _SIGNATURES:
        raise ValueError(f"{where}: unknown layer {name or text!r}; the stack understands "
                         f"{', '.join(_SIGNATURES)} (and skips {', '.join(sorted(PASS_THROUGH))})")
    try:
        args = [_literal(a) for a in call.args]
        kwargs = {k.arg: _literal(k.value) for k in call.keywords if k.arg}
        bound = _SIGNATURES[name].bind(*args, **kwargs)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    bound.apply_defaults()
    a = bound.arguments
    if name == "Conv2d":
        spec: LayerSpec = Conv2dSpec(a["out_channels"], a["kernel_size"], a["stride"], a["padding"],
                                     a["dilation"], a["groups"], a["bias"])
        return ParsedLayer(line_no, text, spec, a["in_channels"])
    if name == "Linear":
        return ParsedLayer(line_no, text, LinearSpec(a["out_features"], a["bias"]), a["in_features"])
    spec = Pool2dSpec(a["kernel_size"], a["stride"], a["padding"], a.get("dilation", 1),
                      "max" if name == "MaxPool2d" else "avg", a["ceil_mode"])
    return ParsedLayer(line_no, text, spec, None)


def parse_layers(text: str) -> list[ParsedLayer]:
    """Parse every line of a layer stack."""
    parsed = (parse_layer(n, line) for n, line in enumerate(text.splitlines(), start=1))
    return [layer for layer in parsed if layer is not None]


def trace_stack(input_shape: tuple[int, ...], text: str) -> list[LayerShape]:
    """Shapes and parameter counts through a stack; ShapeError naming the first line that breaks."""
    layers = parse_layers(text)
    if not layers:
        raise ShapeError("the stack is empty: write one layer per line, e.g. Conv2d(1, 32, kernel_size=5)")
    rows = trace_shapes(input_shape, [])  # checks the input shape on its own, before any line
    for i, layer in enumerate(layers):
        try:
            rows = trace_shapes(input_shape, [p.spec for p in layers[: i + 1]])
        except ShapeError as exc:
            raise ShapeError(f"line {layer.line}: {exc}") from None
        got = rows[-1].input_shape
        if isinstance(layer.spec, Conv2dSpec) and layer.declared_in != got[0]:
            raise ShapeError(f"line {layer.line} ({layer.source}): in_channels is {layer.declared_in}, "
                             f"but the input to this layer is {got}, which has {got[0]} channel{'s' if got[0] != 1 else ''}")
        if isinstance(layer.spec, LinearSpec):
            features = 1
            for size in got:
                features *= size
            if layer.declared_in != features:
                raise ShapeError(f"line {layer.line} ({layer.source}): in_features is {layer.declared_in}, "
                                 f"but the input to this layer is {got}, which flattens to {features} features")
    return rows


def stack_html(rows: list[LayerShape], lines: list[int]) -> str:
    """An HTML table: line, layer, input shape, output shape, parameters, and the total."""
    cell = 'style="padding:2px 10px;text-align:{}"'
    head = "".join(f"<th {cell.format('left')}>{h}</th>" for h in ("line", "layer", "input", "output", "parameters"))
    body = "".join(
        f"<tr><td {cell.format('right')}>{n}</td><td {cell.format('left')}>{html.escape(r.name)}</td>"
        f"<td {cell.format('left')}>{r.input_shape}</td><td {cell.format('left')}><b>{r.output_shape}</b></td>"
        f"<td {cell.format('right')}>{r.parameters:,}</td></tr>"
        for n, r in zip(lines, rows)
    )
    total = f"<tr><td></td><td><b>total</b></td><td></td><td></td><td {cell.format('right')}><b>" \
            f"{sum(r.parameters for r in rows):,}</b></td></tr>"
    return (f'<table class="convcourse-stack-result" style="font-family:monospace;border-collapse:collapse">'
            f"<tr>{head}</tr>{body}{total}</table>")


class LayerStack(kit.Instrument):
    """Chain layers (one PyTorch-style line each) and see every output shape and parameter count."""

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), layers: str = CONV_MODEL_2) -> None:
        self.controls = {name: kit.int_input(1, 0, 4096, f"input {label}", f"convcourse-stack-{name}")
                         for name, label in (("channels", "C"), ("height", "H"), ("width", "W"))}
        self.controls["layers"] = kit.PlainInput(layers, description="layers")
        self.rows: list[LayerShape] = []
        self.error: str | None = None
        self.result_text = self.result_html = ""
        self._holding = False
        if kit.HAVE_WIDGETS:
            w = kit.widgets
            self.controls["layers"] = w.Textarea(
                value=layers, continuous_update=False, description="layers",
                layout=w.Layout(width="42em", height="14em"))
            self.controls["layers"].add_class("convcourse-stack-layers")
            self.view = w.HTML()
            shape_row = w.HBox([self.controls[n] for n in kit.INPUT_NAMES])
            self.widget = w.VBox([shape_row, self.controls["layers"], self.view])
            for control in self.controls.values():
                control.observe(lambda _change: None if self._holding else self._refresh(), names="value")
        self.set(input=input_shape, layers=layers)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) the stack starts from."""
        return tuple(self.controls[n].value for n in kit.INPUT_NAMES)  # type: ignore[return-value]

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The last layer's output shape, None when the stack is invalid."""
        return self.rows[-1].output_shape if self.rows and self.error is None else None

    def set(self, **values: Any) -> "LayerStack":
        """Set ``input=(C, H, W)`` and/or ``layers="..."`` (one layer per line), then recompute."""
        updates: dict[str, Any] = {}
        for name, value in values.items():
            if name == "input":
                updates.update({n: kit.check_int(n, v, self.controls[n]) for n, v in kit.input_updates(value).items()})
            elif name == "layers":
                if not isinstance(value, str):
                    raise TypeError(f"layers must be a string with one layer per line, got {type(value).__name__}")
                updates["layers"] = value
            else:
                raise TypeError(f"unknown setting {name!r}; the layer stack has: input, layers")
        self._holding = True
        try:
            for name, value in updates.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self._refresh()
        return self

    def _refresh(self) -> None:
        try:
            self.rows = trace_stack(self.input_shape, self.controls["layers"].value)
            self.error = None
            self.result_text = f"Layer stack on input {self.input_shape}:\n{format_trace(self.rows)}"
            lines = [p.line for p in parse_layers(self.controls["layers"].value)]
            self.result_html = stack_html(self.rows, lines)
        except Exception as exc:  # noqa: BLE001 - an exception in a widget callback would vanish
            self.rows = []
            self.error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.result_text = f"Layer stack: not a valid configuration: {self.error}"
            self.result_html = kit.error_html(self.error)
        if kit.HAVE_WIDGETS:
            self.view.value = self.result_html

    def text(self) -> str:
        """The traced stack (or the reason it fails) as plain text."""
        return self.result_text
