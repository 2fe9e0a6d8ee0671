"""cnn_experiments' text: every number its prose and model answers state is recomputed here, and its points add up.

The models are the instructor's solution cells of source/cnn_experiments (what a correct student builds); fast.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

import convcourse.checks as checks
from convcourse.grading.demo.points import nbgrader_meta
from convcourse.models import Model, PrintSize, count_parameters
from convcourse.translation import shift_robustness

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = nbformat.read(ROOT / "source" / "cnn_experiments" / "cnn_experiments.ipynb", as_version=4)


def cell(grade_id: str) -> str:
    """A cell's text with its lines joined (a phrase may span two lines)."""
    return " ".join(next(c.source for c in NOTEBOOK.cells if c.id == grade_id).split())


def text_with(phrase: str) -> str:
    """The one markdown cell holding ``phrase``, its lines joined."""
    found = [" ".join(c.source.split()) for c in NOTEBOOK.cells if c.cell_type == "markdown" and phrase in c.source]
    assert len(found) == 1, f"{len(found)} markdown cells hold {phrase!r}"
    return found[0]


def code_with(phrase: str) -> str:
    found = [c.source for c in NOTEBOOK.cells if c.cell_type == "code" and phrase in c.source]
    assert len(found) == 1, f"{len(found)} code cells hold {phrase!r}"
    return found[0]


@pytest.fixture(scope="module")
def solution() -> dict:
    """The names the solution cells define, built from seed 0 like the notebook."""
    torch.manual_seed(0)
    namespace = {"torch": torch, "nn": nn, "PrintSize": PrintSize}
    for c in NOTEBOOK.cells:
        if c.cell_type == "code" and nbgrader_meta(c).get("solution"):
            exec(c.source, namespace)  # noqa: S102 - the instructor's own solution cells
    return namespace


def params(model: nn.Module) -> str:
    return f"{count_parameters(model):,}"


def convolution_parameters(model: nn.Module) -> int:
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters())


# ---------------------------------------------------------------- points


def graded_points(c) -> float:
    meta = nbgrader_meta(c)
    return meta.get("points", 0) if meta.get("grade") else 0


def test_every_heading_and_question_states_the_points_of_its_cells():
    """A '## heading (N points)' holds N points of graded cells until the next '## ' heading; a 'Question (..., N
    points)' is worth the answer cell right after it; together they cover every graded cell once."""
    sections, questions, total = [], [], 0.0
    for index, c in enumerate(NOTEBOOK.cells):
        total += graded_points(c)
        if c.cell_type != "markdown":
            if sections:
                sections[-1][1].append(graded_points(c))
            continue
        heading = re.match(r"## (.*)\((\d+) points?\)", c.source)
        if c.source.startswith("## "):
            sections.append((c.source.splitlines()[0], [], int(heading.group(2)) if heading else 0))
        elif sections:
            sections[-1][1].append(graded_points(c))
        question = re.search(r"\*\*Question \(manually graded, (\d+) points?\)\.\*\*", c.source)
        if question:
            answer = NOTEBOOK.cells[index + 1]
            questions.append((c.source[:40], int(question.group(1)), graded_points(answer)))
    assert sections and questions
    for title, found, stated in sections:
        assert sum(found) == stated, f"{title}: the cells hold {sum(found)} points"
    for start, stated, found in questions:
        assert stated == found, f"{start}...: the answer cell holds {found} points"
    auto = sum(graded_points(c) for c in NOTEBOOK.cells if c.cell_type == "code")
    intro = NOTEBOOK.cells[0].source
    assert f"{total:g} points: {auto:g} for code" in intro and f"{total - auto:g} for written answers" in intro
    assert sum(stated for _, _, stated in sections) == total


# ---------------------------------------------------------------- numbers in the prose


def test_the_untrained_network_guesses_evenly(tiny_data):
    text = text_with("The softmax turns the ten scores")
    assert "near 1/10" in text and "$\\ln 10 \\approx 2.30$" in text and f"{math.log(10):.2f}" == "2.30"
    torch.manual_seed(0)
    model = Model()
    with torch.no_grad():
        scores = model(tiny_data.train.images[:100])
    probabilities = scores.softmax(dim=1)
    assert probabilities.min() > 0.05 and probabilities.max() < 0.2  # near 1/10 each
    loss = nn.functional.cross_entropy(scores, tiny_data.train.targets[:100]).item()
    assert abs(loss - math.log(10)) < 0.1
    assert "784 numbers" in text_with("## The baseline") and model.net[1].in_features == 784
    assert [m.out_features for m in model.net if isinstance(m, nn.Linear)][:2] == [128, 128]


def test_validation_every_100_steps():
    assert "validate_every=100" in code_with("def train(") and "every 100" in text_with("Now train it")
    assert "validating every 100 steps" in code_with("def train(")


def test_the_shrink_and_the_padding(solution):
    out = solution["first_try"](torch.zeros(2, 1, 28, 28))
    answer = cell("ce-conv-answer")
    assert f"`torch.Size({list(out.shape)})`" in answer and "32 maps of 24x24" in answer
    assert "28 - 5 + 1 = 24" in answer and 28 - 5 + 1 == out.shape[-1]
    assert "two rows and two columns are lost at each border; padding 2" in answer and (28 - 24) // 2 == 2
    conv = solution["conv_model"][1]
    assert conv.padding == (2, 2) and conv.weight[0].numel() == 25 and "only 25 weights (plus a bias)" in answer
    assert solution["conv_model"](torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_receptive_field_of_the_stacked_model(solution):
    kernels = [m.kernel_size[0] for m in solution["stacked_model"] if isinstance(m, nn.Conv2d)]
    assert kernels == [5, 3] and "16 filters of 5x5 and then 32 filters of 3x3" in text_with("## 2.2")
    field = 1 + sum(k - 1 for k in kernels)  # stride 1 everywhere: each layer adds k - 1
    assert f"sees a {field}x{field} region of the image (5 + 3 - 1)" in cell("ce-stacked-answer")
    assert "k1 + k2 - 1" in cell("ce-stacked-answer")


def test_the_deep_mlp_answer_counts_right(solution, tiny_data):
    deep, stacked, mlp = solution["deep_mlp"], solution["stacked_model"], Model()
    answer = cell("ce-deep-mlp-answer")
    assert f"the deep MLP has {params(deep)} parameters, {count_parameters(deep) / count_parameters(mlp):.1f} times " \
           f"the MLP's {params(mlp)}" in answer
    ratio = count_parameters(stacked) / count_parameters(deep)
    assert f"the stacked conv network has {params(stacked)}, {ratio:.1f} times *more* than the deep MLP" in answer
    assert f"only {convolution_parameters(stacked):,} of them are in its convolutions" in answer
    assert "784 -> 512 -> 512 -> 128 -> 10" in text_with("## 2.3")
    assert [m.out_features for m in deep if isinstance(m, nn.Linear)] == [512, 512, 128, 10]


def first_linear(model: nn.Module) -> nn.Linear:
    return next(m for m in model.modules() if isinstance(m, nn.Linear))


def test_the_downsampling_answer_counts_right(solution):
    pool, stride, conv = solution["pool_model"], solution["stride_model"], solution["conv_model"]
    answer = cell("ce-downsample-answer")
    assert f"32x14x14 = {32 * 14 * 14:,} inputs instead of 32x28x28 = {32 * 28 * 28:,}" in answer
    assert f"{params(first_linear(pool))} weights and biases instead of {params(first_linear(conv))}; the whole " \
           f"model has {params(pool)} parameters instead of {params(conv)}" in answer and params(pool) == params(stride)
    assert (32 * 28 * 28) // (32 * 14 * 14) == 4 and "cut the parameters of the first `Linear` layer by four" in answer
    for model in (pool, stride):
        assert [m for m in model if isinstance(m, nn.Flatten)]
        assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one 28x28 image through the Conv2d and Linear layers: what a training step mostly costs."""
    total = 0

    def count(layer, inputs, output):
        nonlocal total
        total += output[0].numel() * (layer.weight[0].numel() if isinstance(layer, nn.Conv2d) else layer.in_features)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    return total


def test_the_stride_model_is_the_quickest_conv_model(solution):
    assert "the quickest of your conv models to train" in text_with("### The learning rate")
    conv_models = {name: solution[name] for name in ("conv_model", "stacked_model", "pool_model", "stride_model",
                                                       "dropout_model", "batchnorm_model")}
    work = {name: multiply_adds(model) for name, model in conv_models.items()}
    assert min(work, key=work.get) == "stride_model"
    assert multiply_adds(Model()) < work["stride_model"]  # the MLPs are quicker still: hence "conv models"


def test_the_learning_rates_tried():
    settings = cell("ce-settings")
    assert "LEARNING_RATE = 1e-3" in settings and "0.001" in text_with("### The learning rate")
    assert "for lr in (LEARNING_RATE * 100, LEARNING_RATE * 10, LEARNING_RATE / 10):" in code_with("for lr in")
    assert "a hundred times larger, ten times larger and ten times smaller" in text_with("### The learning rate")
    assert "the four stride-2 runs" in text_with("### The learning rate") and "fresh_copy(stride_model" in \
        code_with("for lr in")
    answer = cell("ce-lr-answer")  # the rates it describes are the ones the cell runs, and no other
    rates = re.findall(r"(?:default|times larger,|times smaller,) (\d\.\d+)", answer)
    assert sorted(float(rate) for rate in rates) == sorted([1e-3, 1e-3 * 100, 1e-3 * 10, 1e-3 / 10])
    assert "1.0" not in answer


def test_dropout_and_batch_norm_are_what_the_text_says(solution):
    drops = [m.p for m in solution["dropout_model"] if isinstance(m, nn.Dropout)]
    assert drops == [0.3, 0.3] and "nn.Dropout(p=0.3)" in text_with("## 2.5")
    assert "sets each of its inputs to zero independently with probability `p`" in text_with("## 2.5")
    torch.manual_seed(0)
    dropped = nn.Dropout(0.3)(torch.ones(4, 10_000))
    assert [abs((row == 0).float().mean().item() - 0.3) < 0.02 for row in dropped] == [True] * 4  # each row: ~p
    assert dropped.unique().tolist() == pytest.approx([0.0, 1 / 0.7])  # the rest scaled up by 1 / (1 - p)
    question = text_with("Quote the three numbers printed")
    assert "Is `dropout_model`'s accuracy on the training batches further below" in question and "Why is" not in question
    assert cell("ce-dropout-answer").startswith("*Model answer.* Yes.")
    assert "missing 30% of its units" in cell("ce-dropout-answer")
    assert "train_images = Split(data.train.images[:10_000]" in code_with("train_images") and \
        "10,000 training images" in text_with("a third number")
    sizes = [solution["batchnorm_model"][:i](torch.zeros(2, 1, 28, 28)).shape[-1]
             for i, m in enumerate(solution["batchnorm_model"], 1) if isinstance(m, nn.MaxPool2d)]
    assert sizes == [14, 7] and "(28x28 -> 14x14 -> 7x7)" in text_with("## 2.6")
    norm = nn.BatchNorm2d(3)
    x = torch.rand(4, 3, 5, 6) * 7 + 2
    y = norm(x)  # training mode: the statistics of each channel over N, H and W
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(norm.running_mean, 0.1 * x.mean(dim=(0, 2, 3)))  # running averages, used in evaluation
    assert "scales and shifts it with two learned numbers per channel (gamma and beta, the layer's `weight` and " \
           "`bias`)" in text_with("## 2.6")
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([2.0, 3.0, 4.0]))
        norm.bias.copy_(torch.tensor([-1.0, 0.0, 1.0]))
    assert norm.weight.shape == norm.bias.shape == (3,)
    assert torch.allclose(norm(x), y * norm.weight[:, None, None] + norm.bias[:, None, None], atol=1e-5)
    assert "over the whole batch and every position of the map (the N, H and W axes)" in text_with("## 2.6")


def test_the_loss_takes_raw_scores_and_a_softmax_at_the_end_is_named(capsys):
    text = text_with("takes the raw scores and applies the (log-)softmax itself")
    assert "every model in this notebook ends with its last `nn.Linear`, without an `nn.Softmax`" in text
    assert "`nn.functional.cross_entropy`, which `fit` uses" in text
    assert "nn.functional.cross_entropy(logits" in (ROOT / "convcourse" / "train.py").read_text()
    scores, targets = torch.randn(5, 10), torch.arange(5)
    assert torch.allclose(nn.functional.cross_entropy(scores, targets),
                          nn.functional.nll_loss(scores.log_softmax(dim=1), targets))
    assert torch.allclose(nn.CrossEntropyLoss()(scores, targets), nn.functional.cross_entropy(scores, targets))
    assert "`HabitWarning`" in text
    checks.check_classifier("m", nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1)))
    assert "HabitWarning" in capsys.readouterr().out


def test_training_prints_the_time_the_downsampling_question_asks_for():
    assert 'trained in {runs[name].wall_time:.0f} s' in code_with("def train(")
    question = text_with("What does each way of downsampling keep")
    assert "training time (the line printed under each training run)" in question and "table at the end" not in question


def test_pooling_keeps_a_stroke_that_moves_within_its_block():
    """What 2.4 says and 2.7 measures: a 1-pixel move within a 2x2 block leaves the max-pooled output as it was."""
    claim = text_with("## 2.4")
    assert "a stroke that moves by a pixel but stays within its block gives the same output" in claim
    assert "some tolerance to small shifts, which 2.7 measures" in claim
    assert "2.4 said that max pooling gives some tolerance to small shifts" in text_with("## 2.7")
    pool = nn.MaxPool2d(2, 2)

    def stroke_at(row: int, col: int) -> torch.Tensor:
        image = torch.zeros(1, 1, 4, 4)
        image[0, 0, row, col] = 1.0
        return pool(image)

    assert torch.equal(stroke_at(0, 0), stroke_at(1, 1)) and torch.equal(stroke_at(0, 0), stroke_at(0, 1))
    assert not torch.equal(stroke_at(1, 1), stroke_at(2, 1))  # across a block's border it shows


def test_conv_model_is_checked_for_the_32_filters_shown():
    assert "filters=32" in cell("ce-test-conv-model") and "the 32 filters of `conv_model`" in \
        text_with("## Inside a trained network")
    assert "an `nn.Conv2d` with 32 filters of size 5x5 on the image" in text_with("Now build `conv_model`")


def test_no_cell_a_student_reads_is_long():
    """The markdown a student reads (model answers are the grader's) stays short enough to read at once."""
    words = {c.id: len([word for word in c.source.split() if re.search(r"\w", word)]) for c in NOTEBOOK.cells
             if c.cell_type == "markdown" and not nbgrader_meta(c).get("grade")}  # a table's | is no word
    assert max(words.values()) <= 200, {name: n for name, n in words.items() if n > 200}


def test_the_shift_distances(solution):
    assert shift_robustness.__kwdefaults__["distances"] == (0, 1, 2, 3)
    assert "by 1, 2 and 3 pixels" in text_with("## 2.7") and "at 0 and at 2 pixels" in text_with("Which network loses")
    assert "32 filters" in text_with("## Inside a trained network")
    assert solution["conv_model"][1].out_channels == 32
