"""Interactive instruments for the course: the shape calculator (one layer or a stack) and the
convolution visualiser. All shape maths and error reasons come from `convcourse.shapes`.

In JupyterLab they are ipywidgets; anywhere else (no ipywidgets, no frontend, nbconvert) they
display as a full text rendering of the same result.
"""

from __future__ import annotations

import html
from typing import Any

from . import widgetkit as kit
from .convviz import (
    EDGE_KERNEL,
    EXAMPLE_INPUT,
    EXAMPLE_KERNEL,
    GIF_INPUT,
    GIF_KERNEL,
    ConvPlan,
    ConvStep,
    Number,
    as_grid,
    plan_convolution,
    render_html,
    render_text,
)
from .layerstack import CONV_MODEL_2, LayerStack
from .shapes import ShapeError, conv2d_output_shape, conv2d_parameter_count, formula, pool2d_output_shape

__all__ = ["ShapeCalculator", "LayerStack", "ConvVisualiser", "EXAMPLE_INPUT", "EXAMPLE_KERNEL", "GIF_INPUT",
           "GIF_KERNEL", "EDGE_KERNEL", "CONV_MODEL_2", "single_layer_report"]

_PAIRS = ("kernel", "stride", "padding", "dilation")
_POOL_KINDS = ("none", "max", "avg")


def single_layer_report(v: dict[str, Any]) -> tuple[list[str], tuple[int, int, int]]:
    """Lines describing one Conv2d (+ optional pooling) and the final shape; ShapeError if invalid."""
    shape_in = (v["channels"], v["height"], v["width"])
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = ((v[f"{n}_h"], v[f"{n}_w"]) for n in _PAIRS)
    out = conv2d_output_shape(shape_in, v["filters"], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    params = conv2d_parameter_count(v["channels"], v["filters"], (kh, kw), bias=v["bias"])
    biases = f" + {v['filters']} biases" if v["bias"] else ""
    lines = [
        f"Conv2d({v['channels']}, {v['filters']}, kernel_size=({kh}, {kw}), stride=({sh}, {sw}), "
        f"padding=({ph}, {pw}), dilation=({dh}, {dw}), bias={v['bias']})",
        f"{v['filters']} filters of size ({v['channels']}, {kh}, {kw}) on an input of shape {shape_in}",
        f"H_out = {formula(v['height'], kh, sh, ph, dh)}",
        f"W_out = {formula(v['width'], kw, sw, pw, dw)}",
        f"parameters: {v['filters']}×{v['channels']}×{kh}×{kw} weights{biases} = {params:,}",
    ]
    if v["pool"] != "none":
        k, s = v["pool_kernel"], v["pool_stride"]
        pooled = pool2d_output_shape(out, k, s, kind=v["pool"])
        name = "MaxPool2d" if v["pool"] == "max" else "AvgPool2d"
        lines += [
            f"conv output shape: {out}",
            f"{name}(kernel_size={k}, stride={s}): no parameters",
            # Unpadded, undilated pooling follows the same formula as a convolution.
            f"H_out = {formula(out[1], k, s)}",
            f"W_out = {formula(out[2], k, s)}",
        ]
        out = pooled
    lines.append(f"output shape: {out}")
    return lines, out


def _lines_html(lines: list[str], css: str) -> str:
    body = "".join(
        f'<div class="convcourse-calc-shape" style="font-weight:bold">{html.escape(line)}</div>'
        if line.startswith("output shape") else f"<div>{html.escape(line)}</div>"
        for line in lines
    )
    return f'<div class="{css}" style="font-family:monospace;line-height:1.5">{body}</div>'


class ShapeCalculator(kit.Instrument):
    """One Conv2d (+ optional pooling): output shape, formulas with numbers, parameter count.

    Drive it from Python with ``calc.set(kernel=3, padding=1)`` and read ``calc.result_text``,
    ``calc.output_shape`` or ``calc.error``; ``calc.stack`` is the layer-stack tab.
    """

    # The defaults are the lab's first conv layer (32 filters of 5x5 on MNIST), not output_dimensions' graded case 1
    # (16 filters): a calculator started bare shows no graded answer.
    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), filters: int = 32, kernel: Any = 5,
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, *, bias: bool = True,
                 pool: str | None = None, pool_kernel: int = 2, pool_stride: int = 2) -> None:
        # Lower bounds are 0 on purpose: a typed 0 (or a negative number, which the box clamps to 0)
        # then shows which rule it breaks instead of silently becoming 1.
        spec = [("channels", 4096, "input C"), ("height", 4096, "input H"), ("width", 4096, "input W"),
                ("filters", 4096, "filters")]
        spec += [(f"{n}_{d}", 64, f"{n} {d.upper()}") for n in _PAIRS for d in "hw"]
        spec += [("pool_kernel", 64, "pool kernel"), ("pool_stride", 64, "pool stride")]
        self.controls = {name: kit.int_input(1, 0, high, label, f"convcourse-{name}") for name, high, label in spec}
        self.controls["bias"] = kit.checkbox(True, "bias", "convcourse-bias")
        self.controls["pool"] = kit.dropdown(_POOL_KINDS, "none", "pooling", "convcourse-pool")
        self.stack = LayerStack()
        self.output_shape: tuple[int, int, int] | None = None
        self.error: str | None = None
        self.result_text = self.result_html = ""
        self._holding = False
        if kit.HAVE_WIDGETS:
            self._build_widget()
        self.set(input=input_shape, filters=filters, kernel=kernel, stride=stride, padding=padding,
                 dilation=dilation, bias=bias, pool=pool, pool_kernel=pool_kernel, pool_stride=pool_stride)

    def _build_widget(self) -> None:
        w, c = kit.widgets, self.controls
        self.view = w.HTML()
        row = lambda *names: w.HBox([c[n] for n in names])  # noqa: E731 - a local layout shorthand
        form = w.VBox([
            row("channels", "height", "width"), row("filters", "bias"),
            *(row(f"{n}_h", f"{n}_w") for n in _PAIRS),
            row("pool", "pool_kernel", "pool_stride"),
        ])
        single = w.VBox([form, self.view])
        self.widget = w.Tab(children=[single, self.stack.widget], titles=("one layer", "layer stack"))
        for control in c.values():
            control.observe(self._on_change, names="value")

    def _on_change(self, _change: Any = None) -> None:
        if not self._holding:
            self._refresh()

    def _refresh(self) -> None:
        """Recompute the result; a broken configuration shows its reason, never a traceback."""
        try:
            lines, self.output_shape = single_layer_report(self.values)
            self.error = None
            self.result_text = "\n".join(lines)
            self.result_html = _lines_html(lines, "convcourse-calc-result")
        except Exception as exc:  # noqa: BLE001 - an exception in a widget callback would vanish
            self.output_shape = None
            self.error = str(exc) if isinstance(exc, ShapeError) else f"{type(exc).__name__}: {exc}"
            self.result_text = f"Not a valid configuration: {self.error}"
            self.result_html = kit.error_html(self.error).replace(
                'class="convcourse-error"', 'class="convcourse-error convcourse-calc-result"')
        if kit.HAVE_WIDGETS:
            self.view.value = self.result_html

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values: Any) -> "ShapeCalculator":
        """Set controls by name (``kernel=3`` or ``kernel=(3, 5)`` sets both of a pair; ``input=(C, H, W)``)."""
        updates: dict[str, Any] = {}
        for name, value in values.items():
            if name == "input":
                updates.update(kit.input_updates(value))
            elif name in _PAIRS:
                updates.update(zip((f"{name}_h", f"{name}_w"), kit.pair(value, name)))
            elif name in self.controls:
                updates[name] = value
            else:
                known = ", ".join(["input", *_PAIRS, *self.controls])
                raise TypeError(f"unknown setting {name!r}; the calculator has: {known}")
        checked = {name: self._check(name, value) for name, value in updates.items()}
        self._holding = True  # one refresh for the whole batch, not one per control
        try:
            for name, value in checked.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self._refresh()
        return self

    def _check(self, name: str, value: Any) -> Any:
        if name == "bias":
            if not isinstance(value, bool):
                raise TypeError(f"bias must be True or False, got {value!r}")
            return value
        if name == "pool":
            value = "none" if value is None else value
            if value not in _POOL_KINDS:
                raise ValueError(f"pool must be None, 'max' or 'avg', got {value!r}")
            return value
        return kit.check_int(name, value, self.controls[name])

    def text(self) -> str:
        """The single-layer result and the layer stack, as plain text."""
        return f"Shape calculator (one layer):\n{self.result_text}\n\n{self.stack.text()}"


class ConvVisualiser(kit.Instrument):
    """Step a kernel over an input (play/slider); stride, padding and dilation are editable controls.

    By default it shows the seed lab's animated example (GIF_INPUT, GIF_KERNEL), never the graded one.
    """

    def __init__(self, input: Any = GIF_INPUT, kernel: Any = GIF_KERNEL, *, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, interval_ms: int = 800) -> None:
        self._input, self._kernel = as_grid(input, "input"), as_grid(kernel, "kernel")
        # Lower bound 0 (not 1) on stride/dilation so a typed 0 shows the rule it breaks.
        self.controls = {}
        for name, value, high in (("stride", stride, 8), ("padding", padding, 8), ("dilation", dilation, 8)):
            for dim, v in zip("hw", kit.pair(value, name)):
                key = f"{name}_{dim}"
                self.controls[key] = kit.int_input(1, 0, high, f"{name} {dim.upper()}", f"convcourse-viz-{key}")
                self.controls[key].value = kit.check_int(key, v, self.controls[key])
        self.plan: ConvPlan | None = None
        self.error: str | None = None
        self.html = ""
        self.slider = kit.PlainInput(1, 1, 1, "step")  # 1-based, like the "step k of n" caption
        if kit.HAVE_WIDGETS:
            self._build_widget(interval_ms)
        self._rebuild()

    def _build_widget(self, interval_ms: int) -> None:
        w = kit.widgets
        self.slider = w.IntSlider(1, min=1, max=1, description="step", continuous_update=True)
        self.play = w.Play(value=1, min=1, max=1, interval=interval_ms, description="play")
        w.jslink((self.play, "value"), (self.slider, "value"))  # the browser animates without kernel round-trips
        self.view = w.HTML()
        self.view.add_class("convcourse-viz-view")
        grid = w.GridBox(list(self.controls.values()),
                         layout=w.Layout(grid_template_columns="repeat(2, max-content)", grid_gap="2px 12px"))
        self.widget = w.VBox([grid, w.HBox([self.play, self.slider]), self.view])
        for control in self.controls.values():
            control.observe(lambda _change: self._rebuild(), names="value")
        self.slider.observe(lambda _change: self._draw(), names="value")

    def _values(self, name: str) -> tuple[int, int]:
        return self.controls[f"{name}_h"].value, self.controls[f"{name}_w"].value

    def _rebuild(self) -> None:
        """Recompute every step after a stride/padding/dilation change; keep errors on screen."""
        try:
            self.plan = plan_convolution(self._input, self._kernel, self._values("stride"),
                                         self._values("padding"), self._values("dilation"))
            self.error = None
        except ValueError as exc:  # ShapeError: a configuration the student can fix
            self.plan, self.error = None, str(exc)
        last = max(self.n_steps, 1)
        for control in (self.slider, getattr(self, "play", None)):
            if control is not None:
                control.value = min(control.value, last)
                control.max = last
        self.slider.disabled = self.plan is None
        self._draw()

    def _draw(self) -> None:
        if self.plan is None:
            self.html = kit.error_html(self.error or "")
        else:
            self.html, _ = kit.safely(lambda: render_html(self.plan, self.step))
        if kit.HAVE_WIDGETS:
            self.view.value = self.html

    @property
    def step(self) -> int:
        """The current step, 0-based, in row-major order over the output."""
        return self.slider.value - 1

    @step.setter
    def step(self, index: int) -> None:
        self.set(step=index)

    @property
    def n_steps(self) -> int:
        """How many output cells there are (0 for an invalid configuration)."""
        return len(self.plan.steps) if self.plan else 0

    @property
    def current(self) -> ConvStep | None:
        """The step on screen, or None for an invalid configuration."""
        return self.plan.steps[self.step] if self.plan else None

    def output_so_far(self) -> list[list[Number | None]]:
        """The output grid up to the current step (None: not computed yet)."""
        return self.plan.output(self.step) if self.plan else []

    def set(self, **values: Any) -> "ConvVisualiser":
        """Set stride/padding/dilation (int or pair, or e.g. stride_h) and/or step, then redraw."""
        step = values.pop("step", None)
        updates = {}
        for name, value in values.items():
            keys = [f"{name}_h", f"{name}_w"] if name in ("stride", "padding", "dilation") else [name]
            if keys[0] not in self.controls:
                raise TypeError(f"unknown setting {name!r}; use stride, padding, dilation (or _h/_w) or step")
            parts = kit.pair(value, name) if len(keys) == 2 else (value,)
            updates.update({k: kit.check_int(k, v, self.controls[k]) for k, v in zip(keys, parts)})
        for key, value in updates.items():
            self.controls[key].value = value
        if not kit.HAVE_WIDGETS and updates:
            self._rebuild()
        if step is not None:
            if not 0 <= kit.check_int("step", step, None) < max(self.n_steps, 1):
                raise ValueError(f"step must be between 0 and {self.n_steps - 1}, got {step}")
            self.slider.value = step + 1
            if not kit.HAVE_WIDGETS:
                self._draw()
        return self

    def text(self) -> str:
        """The current step as text, or the reason the configuration is invalid."""
        if self.plan is None:
            return f"convolution visualiser: not a valid configuration: {self.error}"
        return render_text(self.plan, self.step)
