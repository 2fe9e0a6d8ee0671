"""The shape calculator, layer stack and convolution visualiser, driven from Python and checked
against `convcourse.shapes` and PyTorch itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from IPython.core.interactiveshell import InteractiveShell
from torch import nn

from convcourse import shapes
from convcourse.models import ConvModel2, count_parameters
from convcourse.widgets import (
    CONV_MODEL_2,
    EDGE_KERNEL,
    EXAMPLE_INPUT,
    EXAMPLE_KERNEL,
    GIF_INPUT,
    GIF_KERNEL,
    ConvVisualiser,
    LayerStack,
    ShapeCalculator,
)

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# (C, H, W), filters, kernel, stride, padding, dilation, pooling: the lab's five questions, then
# pairs, dilation and pooling.
CONFIGS = [
    ((1, 28, 28), 16, 5, 1, 0, 1, None),
    ((2, 32, 32), 24, 3, 1, 0, 1, None),
    ((10, 32, 32), 3, 2, 2, 0, 1, None),
    ((11, 8, 16), 7, 3, 2, 1, 1, None),
    ((128, 256, 256), 112, 3, 1, 1, 1, None),
    ((3, 17, 23), 5, (3, 5), (2, 1), (0, 2), (2, 1), None),
    ((1, 28, 28), 32, 5, 1, 2, 1, ("max", 2, 2)),
    ((4, 15, 11), 6, 3, (1, 2), 1, 1, ("avg", 3, 2)),
]


def torch_forward_shape(in_shape, filters, kernel, stride, padding, dilation, pool, bias=True):
    """Shape and parameter count from a real nn.Conv2d (+ pool) forward pass."""
    big = in_shape[0] * in_shape[1] * in_shape[2] > 1_000_000
    device = "meta" if big else "cpu"  # the meta device runs PyTorch's own shape logic without the FLOPs
    layers = [nn.Conv2d(in_shape[0], filters, kernel, stride, padding, dilation, bias=bias, device=device)]
    if pool:
        kind, k, s = pool
        layers.append(nn.MaxPool2d(k, s) if kind == "max" else nn.AvgPool2d(k, s))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        out = model(torch.zeros(1, *in_shape, device=device))
    return tuple(out.shape[1:]), sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("in_shape, filters, kernel, stride, padding, dilation, pool", CONFIGS)
def test_calculator_matches_a_real_conv2d(in_shape, filters, kernel, stride, padding, dilation, pool):
    calc = ShapeCalculator()
    settings = dict(input=in_shape, filters=filters, kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    if pool:
        settings.update(pool=pool[0], pool_kernel=pool[1], pool_stride=pool[2])
    calc.set(**settings)
    expected_shape, expected_params = torch_forward_shape(in_shape, filters, kernel, stride, padding, dilation, pool)
    assert calc.error is None
    assert calc.output_shape == expected_shape
    assert f"output shape: {expected_shape}" in calc.result_text
    assert f"output shape: {expected_shape}" in calc.result_html
    assert f"= {expected_params:,}" in calc.result_text
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    assert f"H_out = {shapes.formula(in_shape[1], kh, sh, ph, dh)}" in calc.result_text
    assert f"W_out = {shapes.formula(in_shape[2], kw, sw, pw, dw)}" in calc.result_text


def test_bias_off_changes_the_count_like_pytorch():
    calc = ShapeCalculator().set(input=(3, 10, 10), filters=8, kernel=3, bias=False)
    _, params = torch_forward_shape((3, 10, 10), 8, 3, 1, 0, 1, None, bias=False)
    assert f"= {params:,}" in calc.result_text and "biases" not in calc.result_text


@pytest.mark.parametrize("settings", [
    dict(input=(1, 5, 5), kernel=7),                           # kernel larger than the input
    dict(input=(1, 28, 28), kernel=3, dilation=14),            # dilated kernel too large
    dict(input=(1, 4, 4), kernel=3, pool="max", pool_kernel=3, pool_stride=1),  # pool larger than conv output
])
def test_invalid_configuration_shows_the_shapes_reason_and_pytorch_agrees(settings):
    calc = ShapeCalculator().set(**settings)
    v = calc.values
    with pytest.raises(shapes.ShapeError) as reason:
        out = shapes.conv2d_output_shape((v["channels"], v["height"], v["width"]), v["filters"],
                                         (v["kernel_h"], v["kernel_w"]), dilation=(v["dilation_h"], v["dilation_w"]))
        shapes.pool2d_output_shape(out, v["pool_kernel"], v["pool_stride"], kind=v["pool"])
    assert calc.output_shape is None
    assert calc.error == str(reason.value)
    assert str(reason.value) in calc.result_text and "Traceback" not in calc.result_text
    assert "convcourse-error" in calc.result_html
    pool = (v["pool"], v["pool_kernel"], v["pool_stride"]) if v["pool"] != "none" else None
    with pytest.raises(RuntimeError):
        torch_forward_shape((v["channels"], v["height"], v["width"]), v["filters"], (v["kernel_h"], v["kernel_w"]),
                            1, 0, (v["dilation_h"], v["dilation_w"]), pool)


def _reason(call, *args, **kwargs) -> str:
    """The ShapeError message convcourse.shapes gives for a configuration."""
    with pytest.raises(shapes.ShapeError) as reason:
        call(*args, **kwargs)
    return str(reason.value)


def test_a_value_typed_in_the_browser_never_raises_and_explains_itself():
    calc = ShapeCalculator()
    # What the frontend does: it writes the control's value; BoundedIntText clamps a negative to 0.
    calc.controls["stride_w"].value = -4
    assert calc.controls["stride_w"].value == 0
    assert calc.error == _reason(shapes.conv2d_output_shape, (1, 28, 28), 32, 5, stride=(1, 0))
    calc.controls["stride_w"].value = 1
    calc.controls["channels"].value = 0
    assert calc.error == _reason(shapes.conv2d_output_shape, (0, 28, 28), 32, 5)
    calc.controls["channels"].value = 3
    assert calc.error is None and calc.output_shape == (32, 24, 24)


def test_python_api_rejects_bad_values_with_specific_messages():
    calc = ShapeCalculator()
    with pytest.raises(ValueError, match=r"kernel_h must be between 0 and 64.*got -1"):
        calc.set(kernel=-1)
    with pytest.raises(TypeError, match="unknown setting 'kernal'"):
        calc.set(kernal=3)
    with pytest.raises(TypeError, match="must be a whole number"):
        calc.set(stride=1.5)
    with pytest.raises(ValueError, match="pool must be None, 'max' or 'avg'"):
        calc.set(pool="min")
    assert calc.output_shape == (32, 24, 24)  # a rejected call changed nothing


def test_display_gives_the_widget_and_an_informative_plain_text():
    calc = ShapeCalculator().set(kernel=3)
    data, _ = InteractiveShell.instance().display_formatter.format(calc)
    assert WIDGET_MIME in data
    assert "output shape: (32, 26, 26)" in data["text/plain"]
    assert "Layer stack on input (1, 28, 28)" in data["text/plain"]
    viz_data, _ = InteractiveShell.instance().display_formatter.format(ConvVisualiser())
    assert WIDGET_MIME in viz_data and "output[0, 0] = " in viz_data["text/plain"]


def test_without_ipywidgets_everything_prints_as_text():
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"  # makes `import ipywidgets` fail
        "from convcourse.widgets import ShapeCalculator, ConvVisualiser\n"
        "calc = ShapeCalculator().set(kernel=3, padding=1)\n"
        "print(calc._repr_mimebundle_()); print(ConvVisualiser().set(step=8).text())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "output shape: (32, 28, 28)" in result.stdout and "ipywidgets is not available" in result.stdout
    assert WIDGET_MIME not in result.stdout
    assert "step 9 of 9" in result.stdout


def test_layer_stack_preset_is_the_lab_convmodel2():
    stack = LayerStack()
    model = ConvModel2(verbose=False)
    torch_shapes = [tuple(o.shape[1:]) for o in _outputs_of(model, (nn.Conv2d, nn.MaxPool2d, nn.Linear))]
    assert [row.output_shape for row in stack.rows] == torch_shapes
    assert sum(row.parameters for row in stack.rows) == count_parameters(model)
    assert stack.rows == shapes.trace_shapes((1, 28, 28), [
        shapes.Conv2dSpec(32, 5, padding=2), shapes.Conv2dSpec(64, 3, padding=1), shapes.Pool2dSpec(2, 2),
        shapes.LinearSpec(128), shapes.LinearSpec(10)])
    assert f"{count_parameters(model):,}" in stack.result_html


def _outputs_of(model: nn.Module, kinds: tuple[type, ...]) -> list[torch.Tensor]:
    outputs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outputs.append(o)) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    return outputs


@pytest.mark.parametrize("layers, message", [
    ("Conv2d(3, 8, 3)", "in_channels is 3, but the input to this layer is (1, 28, 28)"),
    ("Conv2d(1, 8, 3)\nLinear(100, 10)", "in_features is 100, but the input to this layer is (8, 26, 26)"),
    ("Conv2d(1, 8, 29)", "line 1: "),
    ("Conv2d(1, 8, kernal_size=3)", "missing a required argument: 'kernel_size'"),
    ("BatchNorm2d(8)", "unknown layer 'BatchNorm2d'"),
    ("# nothing\n\n", "the stack is empty"),
])
def test_layer_stack_errors_name_the_line_and_pytorch_fails_too(layers, message):
    stack = LayerStack().set(layers=layers)
    assert stack.output_shape is None and message in stack.error
    if layers.startswith(("Conv2d(3", "Conv2d(1, 8, 3)", "Conv2d(1, 8, 29")):
        model = nn.Sequential(*(eval(f"nn.{line}") for line in layers.splitlines()), )  # noqa: S307 - test literals
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 1, 28, 28))


def test_layer_stack_accepts_arithmetic_and_skips_activations():
    stack = LayerStack().set(input=(3, 32, 32), layers="nn.Conv2d(3, 6, 5)\nnn.ReLU()\nAvgPool2d(2)\nFlatten()\n"
                                                       "Linear(6 * 14 * 14, 10)  # head")
    assert stack.error is None and stack.output_shape == (10,)
    assert [r.output_shape for r in stack.rows] == [(6, 28, 28), (6, 14, 14), (10,)]


VIZ_CONFIGS = [dict(), dict(stride=2), dict(padding=1), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
               dict(dilation=2, padding=2)]


@pytest.mark.parametrize("config", VIZ_CONFIGS)
def test_visualiser_equals_pytorch_conv2d_at_every_step(config):
    viz = ConvVisualiser(stride=config.get("stride", 1), padding=config.get("padding", 0),
                         dilation=config.get("dilation", 1))
    image = torch.tensor(GIF_INPUT, dtype=torch.float32)[None, None]  # the default: the seed lab's animation
    kernel = torch.tensor(GIF_KERNEL, dtype=torch.float32)[None, None]
    expected = F.conv2d(image, kernel, **config)[0, 0]
    assert viz.n_steps == expected.numel()
    for index in range(viz.n_steps):
        viz.step = index
        step = viz.current
        assert (step.out_row, step.out_col) == divmod(index, expected.shape[1])
        assert step.total == expected[step.out_row, step.out_col].item()
        assert sum(t.product for t in step.taps) == step.total
        so_far = torch.tensor([[float("nan") if v is None else v for v in row] for row in viz.output_so_far()])
        done = ~torch.isnan(so_far)
        assert int(done.sum()) == index + 1
        assert torch.equal(so_far[done], expected[done])
        assert f"step {index + 1} of {viz.n_steps}" in viz.html
        assert step.expression() in viz.html


@pytest.mark.parametrize("grid, kernel", [(EXAMPLE_INPUT, EXAMPLE_KERNEL), (GIF_INPUT, EDGE_KERNEL)])
def test_visualiser_is_cross_correlation_not_flipped_convolution(grid, kernel):
    viz = ConvVisualiser(grid, kernel)
    image, weights = torch.tensor(grid, dtype=torch.float32)[None, None], torch.tensor(kernel, dtype=torch.float32)
    flipped = F.conv2d(image, weights.flip(0, 1)[None, None])[0, 0]
    assert viz.plan.output() != flipped.int().tolist()
    assert viz.plan.output() == F.conv2d(image, weights[None, None])[0, 0].int().tolist()


def test_the_animation_is_the_seed_labs_gif_and_not_the_graded_example():
    viz = ConvVisualiser()
    assert viz.plan.padded == GIF_INPUT and viz.plan.kernel == GIF_KERNEL
    assert viz.plan.output() == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]  # the GIF's convolved feature, as the seed shows it


def test_visualiser_on_float_tensors_and_through_its_controls():
    torch.manual_seed(0)
    image, kernel = torch.randn(1, 1, 6, 7), torch.randn(1, 1, 2, 3)
    viz = ConvVisualiser(image, kernel)
    viz.controls["stride_w"].value = 2  # as the frontend would
    expected = F.conv2d(image, kernel, stride=(1, 2))[0, 0]
    assert torch.allclose(torch.tensor(viz.plan.output()), expected, atol=1e-5)
    viz.controls["dilation_h"].value = 0
    assert viz.n_steps == 0 and viz.error == _reason(shapes.conv_output_size, 6, 2, 1, 0, 0)
    assert "convcourse-error" in viz.html
    assert "not a valid configuration" in viz.text()
    viz.set(dilation=1, step=3)
    assert viz.step == 3 and viz.error is None


def test_visualiser_rejects_bad_input_clearly():
    with pytest.raises(ValueError, match=r"input must be a non-empty 2-D grid.*\(2, 3, 3\)"):
        ConvVisualiser([[[1] * 3] * 3] * 2)
    with pytest.raises(ValueError, match="kernel holds NaN"):
        ConvVisualiser(EXAMPLE_INPUT, [[float("nan")]])
    with pytest.raises(ValueError, match="step must be between 0 and 8"):
        ConvVisualiser().set(step=9)
    with pytest.raises(TypeError, match="unknown setting 'strides'"):
        ConvVisualiser().set(strides=2)


def test_example_constants_are_the_lab_shapes():
    for grid in (EXAMPLE_INPUT, GIF_INPUT):
        assert len(grid) == 5 and all(len(row) == 5 for row in grid)
    for kernel in (EXAMPLE_KERNEL, GIF_KERNEL, EDGE_KERNEL):
        assert len(kernel) == 3 and all(len(row) == 3 for row in kernel)
    assert all(isinstance(v, int) for row in EXAMPLE_INPUT + EXAMPLE_KERNEL + GIF_INPUT + GIF_KERNEL for v in row)
    assert GIF_INPUT != EXAMPLE_INPUT and GIF_KERNEL != EXAMPLE_KERNEL


def test_conv_model_2_preset_text_is_valid_pytorch():
    model = nn.Sequential(*(eval(f"nn.{line}") for line in CONV_MODEL_2.splitlines() if line))  # noqa: S307
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_a_bare_calculator_shows_no_graded_answer():
    from convcourse import checks

    answers = {checks._expected_output_shape(case) for case in checks.PAPER_CASES.values()}
    assert ShapeCalculator().output_shape not in answers
