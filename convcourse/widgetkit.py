"""Shared plumbing for the course's instruments: optional ipywidgets, bounded inputs, text fallback."""

from __future__ import annotations

import html
import numbers
from typing import Any, Callable

try:  # ipywidgets is a dependency, but the instruments must still explain themselves without it
    import ipywidgets as widgets
except ImportError:  # tests/test_widgets.py runs this path in a subprocess that hides ipywidgets
    widgets = None

HAVE_WIDGETS = widgets is not None

NO_WIDGETS_NOTE = (
    "(ipywidgets is not available here, so this is a text rendering; "
    "install ipywidgets>=8 and open the notebook in JupyterLab for the interactive version)"
)


class PlainInput:
    """Stand-in for a bounded ipywidgets input when ipywidgets is missing: holds a value."""

    def __init__(self, value: Any, min: int | None = None, max: int | None = None,
                 description: str = "") -> None:
        self.value, self.min, self.max, self.description = value, min, max, description

    def observe(self, *args: Any, **kwargs: Any) -> None:
        """Accept observers and ignore them: nothing can change the value behind our back."""


def int_input(value: int, low: int, high: int, description: str, css: str) -> Any:
    """A bounded integer box (BoundedIntText) tagged with a CSS class the browser test can find."""
    if not HAVE_WIDGETS:
        return PlainInput(value, low, high, description)
    box = widgets.BoundedIntText(
        value=value, min=low, max=high, description=description,
        style={"description_width": "initial"}, layout=widgets.Layout(width="auto"),
    )
    box.add_class(css)
    return box


def checkbox(value: bool, description: str, css: str) -> Any:
    """A tagged Checkbox, or a plain holder without ipywidgets."""
    if not HAVE_WIDGETS:
        return PlainInput(value, description=description)
    box = widgets.Checkbox(value=value, description=description, indent=False,
                           layout=widgets.Layout(width="auto"))
    box.add_class(css)
    return box


def dropdown(options: tuple[str, ...], value: str, description: str, css: str) -> Any:
    """A tagged Dropdown, or a plain holder without ipywidgets."""
    if not HAVE_WIDGETS:
        return PlainInput(value, description=description)
    box = widgets.Dropdown(options=options, value=value, description=description,
                           style={"description_width": "initial"}, layout=widgets.Layout(width="auto"))
    box.add_class(css)
    return box


def check_int(name: str, value: Any, control: Any) -> int:
    """Validate a value for a bounded control and say exactly what is wrong with a bad one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    low, high = getattr(control, "min", None), getattr(control, "max", None)
    if low is not None and value < low or high is not None and value > high:
        raise ValueError(f"{name} must be between {low} and {high} (the control's range), got {value}")
    return value


INPUT_NAMES = ("channels", "height", "width")


def input_updates(value: Any) -> dict[str, Any]:
    """``input=(C, H, W)`` as updates of the channels/height/width controls."""
    if not (isinstance(value, (tuple, list)) and len(value) == 3):
        raise ValueError(f"input must be (channels, height, width), got {value!r}")
    return dict(zip(INPUT_NAMES, value))


def pair(value: Any, name: str) -> tuple[Any, Any]:
    """Split an int-or-pair argument into (height, width), as PyTorch does."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one number or a (height, width) pair, got {value!r}")
        return value[0], value[1]
    return value, value


def error_html(message: str) -> str:
    """A visible, escaped error box for a configuration that does not work."""
    return (
        '<div class="convcourse-error" style="border-left:4px solid #c62828;padding:4px 8px;'
        f'background:#fdecea;color:#611a15"><b>Not a valid configuration:</b> {html.escape(message)}</div>'
    )


def safely(render: Callable[[], str]) -> tuple[str, str | None]:
    """Run a render callback; return (html, error) instead of letting an exception reach the frontend."""
    try:
        return render(), None
    except Exception as exc:  # noqa: BLE001 - a callback's traceback would vanish into the log console
        message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        return error_html(message), message


class Instrument:
    """Base class: displays as its widget in JupyterLab and as a full text rendering elsewhere."""

    widget: Any = None

    def text(self) -> str:
        """The plain-text rendering of the current state."""
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # ipywidgets truncates text/plain to 110 characters of the widget's repr; nbval, nbconvert
        # and terminals show text/plain, so give them the whole result instead.
        text = self.text() if HAVE_WIDGETS else f"{self.text()}\n{NO_WIDGETS_NOTE}"
        bundle = None
        if self.widget is not None and getattr(self.widget, "_repr_mimebundle_", None):
            bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        bundle = dict(bundle or {})
        bundle["text/plain"] = text
        return bundle

    def __repr__(self) -> str:
        return self.text()
