"""convcourse.diagnosis through convcourse.checks: each classic mistake, worked on purpose, gets its one sentence.

The wrong solutions run through the real test cells of source/ (the reload lines aside), so the messages
asserted here are the ones a student sees. Fast: a few seconds, most of it one notebook kernel at the end.
"""
import ast
import math
import os
import re
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from torch import nn

from convcourse import checks, diagnosis, shapes
from convcourse.models import PrintSize

CAUSE = "Likely cause: "
NAME = re.compile(r" \[([a-z0-9-]+)\](?=[.,]|$)", re.M)  # a diagnosis's stable name, e.g. " [flipped-kernel]"


def plain(message):
    """``message`` without the diagnoses' stable names (the sentences are asserted apart from them)."""
    return NAME.sub("", message)

ROOT = Path(__file__).resolve().parents[1]


def notebook_cell(assignment, grade_id):
    """The source of a cell of a source notebook, by its nbgrader grade_id."""
    notebook = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    return next(c.source for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def named(message):
    """``message``, once every diagnosis in it is seen to carry its stable name (the class report counts those)."""
    unnamed = [line for line in message.splitlines() if line.lstrip().startswith("Likely cause")
               and not diagnosis.names_in(line)]
    assert not unnamed, f"a diagnosis without its name in MISTAKES: {unnamed}"
    return message


def failure(assignment, grade_id, **names):
    """The message of a source notebook's test cell run on ``names`` ('' when it passes); checks is not reloaded."""
    source = "\n".join(line for line in notebook_cell(assignment, grade_id).splitlines()
                       if not line.startswith(("import importlib", "checks = importlib.reload")))
    try:
        exec(source, {"checks": checks, "print": lambda *a: None, **names})  # noqa: S102 - the course's own cell
    except checks.CheckFailed as error:
        return named(str(error))
    return ""


def solution(assignment, grade_id, name):
    namespace = {"np": np, "nn": nn, "PrintSize": PrintSize}
    exec(notebook_cell(assignment, grade_id), namespace)  # noqa: S102 - the instructor's solution cell
    return namespace[name]


conv_loops = solution("manual_convolution", "mc-conv2d-naive", "conv2d_naive")
pool_loops = solution("manual_convolution", "mc-maxpool2d", "maxpool2d")
shape_formula = solution("output_dimensions", "od-output-shape", "output_shape")


# ---------------------------------------------------------------- conv2d_naive, worked wrong on purpose


def conv(x, k, *, kernel=lambda k: k, product=lambda patch, k: np.sum(patch * k), pad=False, swap=False, short=0,
         early=0, out=None):
    """conv2d_naive as a student writes it, with one mistake switched on."""
    x, k = np.asarray(x), kernel(np.asarray(k, dtype=float))
    kh, kw = k.shape
    if pad:
        x = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2)))
    result = np.zeros((x.shape[0] - kh + 1 - short, x.shape[1] - kw + 1 - short)) if out is None else out(x, kh, kw)
    for i in range(result.shape[0] - early):
        for j in range(result.shape[1] - early):
            result[i, j] = product(x[j:j + kh, i:i + kw] if swap else x[i:i + kh, j:j + kw], k)
    return result


CONV_MISTAKES = {
    "flipped": ({"kernel": lambda k: k[::-1, ::-1]}, "the result equals the cross-correlation with the flipped kernel"),
    "upside down": ({"kernel": lambda k: k[::-1]}, "the kernel is flipped upside down or left to right"),
    "transposed kernel": ({"kernel": lambda k: k.T}, "the kernel is transposed"),
    "matrix product": ({"product": lambda patch, k: np.sum(patch @ k)}, "each entry sums a matrix product"),
    "padded": ({"pad": True}, "the input is zero-padded"),
    "swapped i, j": ({"swap": True}, "rows and columns are swapped: output[i, j] comes from x[i:i + kh, j:j + kw]"),
    "no + 1": ({"short": 1}, "the last row and column are missing: the output has H - kh + 1 rows"),
    "loops stop early": ({"early": 1}, "the last row and column are still 0: the loops stop one position early"),
    "integer array": ({"out": lambda x, kh, kw: np.zeros_like(x)[:x.shape[0] - kh + 1, :x.shape[1] - kw + 1]},
                      "the fractional parts are cut off"),
}


@pytest.mark.parametrize("mistake", CONV_MISTAKES)
def test_conv2d_naive_mistakes_are_named(mistake):
    switches, sentence = CONV_MISTAKES[mistake]
    message = failure("manual_convolution", "mc-test-conv2d-visible",
                      conv2d_naive=lambda x, k: conv(x, k, **switches))
    report, diagnosis = message.rsplit("\n", 1)
    assert "the case was" in report and diagnosis.startswith(f"  {CAUSE}{sentence}"), message


def test_the_flipped_kernel_sentence_in_full():
    message = failure("manual_convolution", "mc-test-conv2d-visible",
                      conv2d_naive=lambda x, k: conv(x, k, kernel=lambda k: k[::-1, ::-1]))
    assert message.startswith("on a 5x5 input with a 3x3 kernel: 8 of 9 entries")  # the precise report comes first
    assert message.endswith("\n  Likely cause: the result equals the cross-correlation with the flipped kernel, a "
                            "textbook convolution; PyTorch's conv2d does not flip the kernel, so multiply each patch "
                            "by k as it is [flipped-kernel].")


def test_hidden_random_cases_get_the_diagnosis_too():
    message = failure("manual_convolution", "mc-test-conv2d-hidden", conv2d_naive=lambda x, k: conv(x, k[::-1, ::-1]))
    assert message.count(CAUSE) == 1 and "flipped kernel" in message


def test_conv_by_hand_flipped_is_named_without_revealing_the_answer():
    x, k = np.array(checks.example_input()), np.array(checks.example_kernel())
    message = failure("manual_convolution", "mc-test-conv-by-hand", conv_by_hand=conv(x, k[::-1, ::-1]).tolist())
    assert "flipped kernel" in message and "expected" not in message
    right = checks.conv2d_reference(x, k)
    for revealing in (np.array(right).T.tolist(), [[float(int(v) + 0.5) for v in row] for row in right]):
        message = failure("manual_convolution", "mc-test-conv-by-hand", conv_by_hand=revealing)
        assert message and CAUSE not in message  # "transposed" or "rounded" would hand over the numbers


# ---------------------------------------------------------------- maxpool2d, worked wrong on purpose


def pool(x, size, stride, *, count=lambda n, size, stride: (n - size) // stride + 1, step=None, reduce=np.max,
         swap=False, early=0):
    """maxpool2d as a student writes it, with one mistake switched on."""
    x, step = np.asarray(x, dtype=float), stride if step is None else step(size, stride)
    rows, cols = count(x.shape[0], size, stride), count(x.shape[1], size, stride)
    result = np.zeros((cols, rows) if swap else (rows, cols))
    for i in range(result.shape[0] - early):
        for j in range(result.shape[1] - early):
            result[i, j] = reduce(x[i * step:i * step + size, j * step:j * step + size])
    return result


POOL_MISTAKES = {
    "ceil": ({"count": lambda n, size, stride: math.ceil((n - size) / stride) + 1}, "partial windows at the edge"),
    "every start": ({"count": lambda n, size, stride: len(range(0, n, stride))}, "partial windows at the edge"),
    "no + 1": ({"count": lambda n, size, stride: (n - size) // stride}, ("the last row and column are missing: "
               "the output has (H - size) // stride + 1 rows")),
    "average": ({"reduce": np.mean}, "each window is averaged"),
    "step 1": ({"step": lambda size, stride: 1}, "the window moves one square at a time"),
    "step size": ({"step": lambda size, stride: size, "count": lambda n, size, stride: (n - size) // size + 1},
                  "the window moves size squares at a time"),
    "swapped counts": ({"swap": True}, "the numbers of rows and columns are swapped"),
    # the visible cell starts with a 1x1 result, where a 0 left by the loops could be any slip: the next cell names it
    "loops stop early": ({"early": 1}, "the last row and column are still 0"),
}


@pytest.mark.parametrize("mistake", POOL_MISTAKES)
def test_maxpool2d_mistakes_are_named(mistake):
    switches, sentence = POOL_MISTAKES[mistake]
    message = failure("manual_convolution", "mc-test-maxpool2d-hidden" if mistake == "loops stop early" else
                      "mc-test-maxpool2d-visible", maxpool2d=lambda x, size, stride: pool(x, size, stride, **switches))
    assert message.splitlines()[-1].startswith(f"  {CAUSE}{sentence}"), message


@pytest.mark.parametrize("student, sentence", [
    (lambda x, size, stride: pool_loops(x, stride, size), ("size and stride are swapped: the signature is "
                                                           "maxpool2d(x, size, stride)")),
    (lambda x, size, stride: pool_loops(x, 2, 2), ("the window is always 2x2 with stride 2: use the size and stride "
                                                   "arguments")),
])
def test_maxpool2d_argument_mistakes_are_named(student, sentence):
    message = failure("manual_convolution", "mc-test-maxpool2d-visible", maxpool2d=student)
    assert plain(message).splitlines()[-1] == f"  {CAUSE}{sentence}.", message


def test_pool_by_hand_mistakes_are_named_without_the_answer():
    for answer, sentence in (([[5, 9], [3, 3]], "partial windows at the edge are kept"),
                             ([[2.75]], "each window is averaged")):
        message = failure("manual_convolution", "mc-test-pool-by-hand", pool_by_hand=answer)
        assert f"{CAUSE}{sentence}" in message and "expected" not in message and "5" not in message.split(CAUSE)[1]


# ---------------------------------------------------------------- output shapes, on paper and as a function


LAB = {1: (16, 24, 24), 2: (24, 30, 30), 3: None, 4: (3, 16, 16), 5: (7, 4, 8), 6: None, 7: (112, 256, 256)}


@pytest.mark.parametrize("cell, answers, sentence", [
    ("od-test-answers-1-4", {1: (16, 23, 23), 2: (24, 29, 29), 3: None, 4: (3, 15, 15)},
     "Likely cause (cases 1, 2, 4): the + 1 of the formula is missing"),
    ("od-test-answers-1-4", {**LAB, 4: (3, 31, 31)}, "Likely cause (case 4): the stride is left out"),
    ("od-test-answers-1-4", {**LAB, 1: (1, 24, 24)}, "Likely cause (case 1): the output has the input's channels"),
    ("od-test-answers-1-4", {**LAB, 1: (24, 24, 16)}, "Likely cause (case 1): the channels come last"),
    ("od-test-answers-5-7", {**LAB, 5: (7, 5, 9)}, "Likely cause (case 5): the division is rounded up"),
    ("od-test-answers-5-7", {**LAB, 5: (7, 8, 4)}, "height and width are swapped"),
    ("od-test-answers-5-7", {**LAB, 7: (112, 254, 254)}, "Likely cause (case 7): the padding is left out"),
    ("od-test-answers-5-7", {**LAB, 7: (112, 255, 255)}, ("Likely cause (case 7): either the + 1 of the formula is "
     "missing (it counts the kernel's first position), or the padding is counted once (it is added on both sides")),
])
def test_shape_answer_mistakes_are_named_without_the_answer(cell, answers, sentence):
    message = failure("output_dimensions", cell, answers=answers)
    assert sentence in plain(message), message
    assert not any(str(shape) in message for shape in LAB.values() if shape)  # no right answer printed


def test_invalid_cases_are_not_given_away():
    """Each test cell holds one case no Conv2d computes; a shape written for it is "not right", nothing more."""
    for cell, answers, told in (("od-test-answers-1-4", {**LAB, 3: (8, 30, 30)}, "1 of 4 answers"),
                                ("od-test-answers-5-7", {**LAB, 6: (2, 0, 0)}, "1 of 3 answers")):
        message = failure("output_dimensions", cell, answers=answers)
        assert told in message and CAUSE not in message and "None" not in message, message


def formula(slip):
    """output_shape as a student writes it, with one slip."""
    def output_shape(input_shape, num_filters, filter_shape, stride=(1, 1), padding=(0, 0)):
        (c, h, w), (fc, kh, kw), (sh, sw), (ph, pw) = input_shape, filter_shape, stride, padding
        if slip == "swapped stride":
            sh, sw = sw, sh
        if fc != c and slip != "no channel check":
            return None
        too_large = {"no size check": False, ">=": kh >= h + 2 * ph or kw >= w + 2 * pw,
                     "unpadded": kh > h or kw > w}.get(slip, kh > h + 2 * ph or kw > w + 2 * pw)
        return None if too_large else (num_filters, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    return output_shape


@pytest.mark.parametrize("slip, sentence", [
    ("no size check", "the kernel is larger than the padded input (it fits nowhere, so return None)"),
    ("no channel check", ("the filters' channels (filter_shape[0]) differ from the input's (no Conv2d can compute it: "
                         "return None)")),
    (">=", ("a kernel exactly as large as the padded input is taken as invalid (it fits once, size 1: only k > H + 2p "
           "is invalid)")),
    ("unpadded", "the kernel is compared with the input without its padding (it fits when k <= H + 2p)"),
    ("swapped stride", "the strides of height and width are swapped (stride is (sh, sw))"),
])
def test_output_shape_function_mistakes_are_named(slip, sentence):
    message = failure("output_dimensions", "od-test-function-hidden", output_shape=formula(slip))
    if slip == ">=":  # the notebook's cases never have k == H + 2p: a case of that kind, on its own
        with pytest.raises(checks.CheckFailed) as error:
            checks.check_output_shape_function(formula(slip), [checks.ShapeCase((1, 5, 5), 2, (1, 5, 5))])
        message = str(error.value)
    assert "the right answer is" in message and plain(message).splitlines()[-1] == f"  {CAUSE}{sentence}.", message


def test_ambiguous_and_unknown_answers_are_not_guessed():
    variants = [diagnosis.Variant((1, 2, 3), "a"), diagnosis.Variant((1, 2, 3), "b"),
                diagnosis.Variant((1, 2, 4), "c")]
    assert diagnosis.diagnose((1, 2, 3), (9, 9, 9), variants) == "either a, or b"
    assert diagnosis.diagnose((1, 2, 3), (9, 9, 9), variants * 2 + [variants[0]._replace(mistake="d")]) is None
    assert diagnosis.diagnose((5, 5, 5), (9, 9, 9), variants) is None
    assert diagnosis.diagnose((1, 2, 4), (1, 2, 4), variants) is None  # a variant equal to the answer is no mistake


# ---------------------------------------------------------------- models


def net(*layers):
    return nn.Sequential(*layers)


def classifier_failure(model, *more):
    try:
        runs = checks.check_classifier("conv_model", model)
        for check in more:
            check(runs)
    except checks.CheckFailed as error:
        return named(str(error))
    return ""


def test_the_unpadded_convolution_of_the_issue_is_explained_with_the_students_numbers():
    model = net(PrintSize(enabled=False), nn.Conv2d(1, 32, 5), nn.ReLU(), PrintSize(enabled=False), nn.Flatten(),
                nn.Linear(32 * 28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))
    assert plain(classifier_failure(model)) == (
        "conv_model fails on a batch of shape (2, 1, 28, 28): RuntimeError: mat1 and mat2 shapes cannot be multiplied "
        "(2x18432 and 25088x128)\n  Likely cause: the 5x5 Conv2d at conv_model[1] has padding=0 and shrinks 28 to 24 "
        "(floor((28 + 2*0 - 5) / 1) + 1 = 24), so conv_model[5] (nn.Linear, in_features=25088) receives "
        "32 × 24 × 24 = 18432 values per image; the padding that solves H_out = H in the formula keeps 28.")


@pytest.mark.parametrize("model, sentence", [
    (net(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.Linear(32 * 28 * 28, 10)),
     "conv_model[2] (nn.Linear) receives feature maps of shape (2, 32, 28, 28): put nn.Flatten() before it"),
    (net(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.Flatten(),
         nn.Linear(32 * 28 * 28, 10)),
     "conv_model[2] is built for in_channels=32 but receives 16 channels (from conv_model[0], whose out_channels=16)"),
    (net(nn.Conv2d(3, 8, 5, padding=2), nn.Flatten(), nn.Linear(8 * 28 * 28, 10)),
     "conv_model[0] is built for in_channels=3 but receives 1 channel (the images have 1)"),
    (net(nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(32), nn.Flatten(), nn.Linear(16 * 28 * 28, 10)),
     "conv_model[1] is built for num_features=32 but receives 16 channels"),
    (net(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 28 * 28, 10)),
     ("the 2x2 MaxPool2d at conv_model[2] has stride=2 and shrinks 28 to 14 (floor((28 + 2*0 - 2) / 2) + 1 = 14), so "
     "conv_model[4] (nn.Linear, in_features=6272) receives 8 × 14 × 14 = 1568 values per image: in_features must "
     "count the maps after it")),
    (net(nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 28 * 28, 10)),
     "the 5x5 Conv2d at conv_model[0] has stride=2, padding=2 and shrinks 28 to 14"),
    (net(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)),
     ("conv_model[4] (nn.Linear, in_features=392) receives 8 × 14 × 14 = 1568 values per image, but in_features = "
     "8 × 7 × 7 = 392 expects the maps halved once more")),
    (net(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(28 * 28, 10)),
     ("conv_model[3] (nn.Linear, in_features=784) receives 8 × 28 × 28 = 6272 values per image, but in_features = "
     "1 × 28 × 28 = 784 counts 1 channel, not 8")),
    (net(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(128, 10)),
     "conv_model[3] has in_features=128 but follows conv_model[1], which gives out_features=64"),
])
def test_shape_mismatches_name_layer_shape_and_cause(model, sentence):
    message = classifier_failure(model)
    assert message.splitlines()[-1].startswith(f"  {CAUSE}{sentence}"), message
    assert "PrintSize()" not in message  # the diagnosis replaces the generic hint


def test_a_mismatch_without_a_known_cause_still_gets_the_facts():
    message = classifier_failure(net(nn.Conv2d(1, 8, 5, padding=2), nn.Flatten(), nn.Linear(1000, 10)))
    assert plain(message).endswith("\n  Why: conv_model[2] (nn.Linear, in_features=1000) receives 8 × 28 × 28 = 6272 "
                            "values per image (the flattened output of conv_model[0]); nn.Linear(6272, ...) would "
                            "accept them.")
    message = classifier_failure(net(nn.Conv2d(1, 8, 5), *[nn.MaxPool2d(2)] * 4, nn.Conv2d(8, 8, 5)))
    assert "Why: conv_model[5] receives 1x1 feature maps, too small for it: kernel larger than padded input" in message


@pytest.mark.parametrize("model, check, sentence", [
    (net(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 24 * 24, 10)), checks.check_keeps_size,
     ("the 5x5 Conv2d at conv_model[0] has padding=0 and shrinks 28 to 24 (floor((28 + 2*0 - 5) / 1) + 1 = 24); "
     "the padding that solves H_out = H in the formula keeps 28.")),
    (net(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 12 * 12, 10)),
     lambda name, runs: checks.check_halves(name, runs, by="pool"),
     "the padding that solves H_out = H in the formula keeps 28, so the MaxPool2d at conv_model[2] gets 24x24 maps."),
    (net(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(8 * 27 * 27, 10)),
     lambda name, runs: checks.check_halves(name, runs, by="pool"),
     ("the 2x2 MaxPool2d at conv_model[2] has stride=1 and shrinks 28 to 27 (floor((28 + 2*0 - 2) / 1) + 1 = 27); "
     "stride=2 gives 14.")),
    (net(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 12 * 12, 10)),
     lambda name, runs: checks.check_halves(name, runs, by="stride"), ("shrinks 28 to 12 (floor((28 + 2*0 - 5) / 2) "
     "+ 1 = 12); padding=2 gives 14.")),
    (net(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 28 * 28, 10)),
     lambda name, runs: checks.check_halves(name, runs, by="stride"), "stride=2, padding=2 gives 14."),
])
def test_size_checks_name_the_setting_that_fixes_them(model, check, sentence):
    message = classifier_failure(model, lambda runs: check("conv_model", runs))
    assert message.splitlines()[-1].startswith(f"  {CAUSE}") and plain(message).endswith(sentence), message


# ---------------------------------------------------------------- habits: a warning, no points lost


def eval_mode(model):
    return model.eval()


@pytest.mark.parametrize("model, sentence", [
    (net(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1)), ("conv_model ends in nn.Softmax (conv_model[2]), but "
     "fit's loss (cross-entropy, like nn.CrossEntropyLoss) applies log-softmax itself")),
    (net(nn.Flatten(), nn.Linear(784, 10), nn.ReLU(), PrintSize(enabled=False)), "conv_model ends in nn.ReLU"),
    (net(nn.Flatten(), nn.Linear(784, 10), nn.Sigmoid()), "conv_model ends in nn.Sigmoid"),
    (net(nn.Flatten(), nn.Linear(784, 10), nn.Dropout(0.3)), "conv_model ends in nn.Dropout"),
    (net(nn.Flatten(), nn.Linear(784, 128), nn.Dropout(0.3), nn.Linear(128, 10)),
     "conv_model[1] and conv_model[3] (nn.Linear, nn.Linear) have no activation between them"),
    (eval_mode(net(nn.Flatten(), nn.Dropout(0.3), nn.Linear(784, 10))), "conv_model is in evaluation mode"),
])
def test_habits_warn_without_failing(model, sentence, capsys):
    assert checks.check_classifier("conv_model", model)  # passes: the warning costs no points
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("HabitWarning: ")]
    assert len(lines) == 1 and sentence in lines[0] and lines[0].endswith("(a warning: no points lost)")
    assert not err  # nbgrader scores a test cell that wrote to stderr 0


def test_a_warning_filter_cannot_turn_a_habit_into_a_failure(capsys):
    model = net(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning would be raised here, failing a check that passed
        assert checks.check_classifier("m", model)
    assert "HabitWarning: m ends in nn.Softmax" in capsys.readouterr().out  # shown all the same


# ---------------------------------------------------------------- right answers, unrelated wrong answers


CE_SOLUTIONS = {"ce-conv-model": ["conv_model"], "ce-stacked-model": ["stacked_model"], "ce-deep-mlp": ["deep_mlp"],
                "ce-downsample-models": ["pool_model", "stride_model"], "ce-dropout-model": ["dropout_model"],
                "ce-batchnorm-model": ["batchnorm_model"]}


def test_the_solutions_get_no_diagnosis_and_no_warning(capsys):
    assert not failure("manual_convolution", "mc-test-conv2d-hidden", conv2d_naive=conv_loops)
    assert not failure("manual_convolution", "mc-test-maxpool2d-hidden", maxpool2d=pool_loops)
    assert not failure("output_dimensions", "od-test-function-hidden", output_shape=shape_formula)
    for grade_id, names in CE_SOLUTIONS.items():
        for name in names:
            checks.check_classifier(name, solution("cnn_experiments", grade_id, name))
    assert "HabitWarning" not in capsys.readouterr().out


@pytest.mark.parametrize("cell, names", [
    ("mc-test-conv2d-visible", {"conv2d_naive": lambda x, k: conv_loops(x, k) + 1}),
    ("mc-test-conv2d-visible", {"conv2d_naive": lambda x, k: np.zeros((x.shape[0] - k.shape[0] + 1,
                                                                        x.shape[1] - k.shape[1] + 1))}),
    ("mc-test-maxpool2d-visible", {"maxpool2d": lambda x, size, stride: -pool_loops(-np.asarray(x), size, stride)}),
    ("mc-test-conv-by-hand", {"conv_by_hand": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}),
    ("mc-test-pool-by-hand", {"pool_by_hand": [[4]]}),
])
def test_unrelated_wrong_answers_get_no_diagnosis(cell, names):
    message = failure("manual_convolution", cell, **names)
    assert message and CAUSE not in message


def test_unrelated_wrong_shapes_and_models_get_no_diagnosis():
    message = failure("output_dimensions", "od-test-answers-1-4", answers={1: (16, 20, 21), 2: (2, 3, 4), 3: (5, 5, 5),
                                                                            4: None})
    assert "4 of 4" in message and CAUSE not in message
    message = failure("output_dimensions", "od-test-function-hidden", output_shape=lambda *a: (1, 1, 1))
    assert message and CAUSE not in message
    assert CAUSE not in classifier_failure(net(nn.Flatten(), nn.Linear(784, 5)))


# ---------------------------------------------------------------- the diagnosis cannot change a result


def test_a_broken_diagnosis_never_hides_the_failure(monkeypatch):
    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("diagnosis bug")

    monkeypatch.setattr(checks, "_diagnosis", lambda: Broken())
    message = failure("manual_convolution", "mc-test-conv2d-visible", conv2d_naive=lambda x, k: conv(x, k[::-1, ::-1]))
    assert message.startswith("on a 5x5 input") and CAUSE not in message
    assert "PrintSize()" in classifier_failure(net(nn.Conv2d(1, 8, 5), nn.Flatten(), nn.Linear(8 * 28 * 28, 10)))
    assert not classifier_failure(net(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1)))  # and no warning breaks it


def test_patching_the_public_diagnosis_module_changes_nothing(monkeypatch):
    monkeypatch.setattr(diagnosis, "diagnose", lambda *a, **k: "PATCHED")
    monkeypatch.setattr(shapes, "formula", lambda *a, **k: "PATCHED")
    message = failure("manual_convolution", "mc-test-conv2d-visible", conv2d_naive=lambda x, k: conv(x, k[::-1, ::-1]))
    assert "flipped kernel" in message and "PATCHED" not in message
    assert "PATCHED" not in classifier_failure(net(nn.Conv2d(1, 8, 5), nn.Flatten(), nn.Linear(8 * 28 * 28, 10)))


def test_run_layers_records_what_each_layer_got():
    _, runs = checks.run_layers(net(nn.Conv2d(1, 4, 5), nn.Flatten()))
    assert [(run.input_shape, run.output_shape) for run in runs] == [((2, 1, 28, 28), (2, 4, 24, 24)),
                                                                     ((2, 4, 24, 24), (2, 2304))]
    with pytest.raises(RuntimeError, match="mat1 and mat2"):
        checks.run_layers(net(nn.Flatten(), nn.Linear(10, 10)))


# ---------------------------------------------------------------- in a real notebook kernel


def test_the_diagnosis_and_the_warning_reach_the_notebook_output(tmp_path, monkeypatch):
    """A flipped kernel and a softmax ending, run through the real test cells in a python3 kernel."""
    from nbgrader.utils import determine_grade
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom torch import nn\nfrom convcourse.models import PrintSize\n"
                                  "def conv2d_naive(x, k):\n    k = k[::-1, ::-1]\n"
                                  "    out = np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))\n"
                                  "    for i in range(out.shape[0]):\n        for j in range(out.shape[1]):\n"
                                  "            out[i, j] = np.sum(x[i:i + k.shape[0], j:j + k.shape[1]] * k)\n"
                                  "    return out\n"
                                  "conv_model = nn.Sequential(PrintSize(), nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), "
                                  "PrintSize(), nn.Flatten(), nn.Linear(32 * 28 * 28, 10), nn.Softmax(dim=1))"),
        nbformat.v4.new_code_cell(notebook_cell("manual_convolution", "mc-test-conv2d-visible")),
        nbformat.v4.new_code_cell(notebook_cell("cnn_experiments", "ce-test-conv-model")),
    ])
    NotebookClient(notebook, kernel_name="python3", allow_errors=True, timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    setup, conv_cell, model_cell = notebook.cells
    assert not [o for o in setup.outputs if o.output_type == "error"]
    error = next(o for o in conv_cell.outputs if o.output_type == "error")
    assert error.ename == "CheckFailed" and "Likely cause: the result equals the cross-correlation with the flipped " \
        "kernel" in error.evalue and "flipped kernel" in "\n".join(error.traceback)
    streams = {name: "".join(o.text for o in model_cell.outputs if o.output_type == "stream" and o.name == name)
               for name in ("stdout", "stderr")}
    assert "HabitWarning: conv_model ends in nn.Softmax" in streams["stdout"], model_cell.outputs
    assert "conv_model has the right architecture" in streams["stdout"] and not streams["stderr"]
    model_cell.metadata["nbgrader"] = {"grade": True, "points": 2}
    assert determine_grade(model_cell) == (2, 2)  # the warning costs no points: nbgrader scores stderr output 0


# ---------------------------------------------------------------- the stable names the class report counts


def _variant_spread():
    """Every function that builds Variants, with a spread of cases that reaches its branches."""
    ex, conv = checks.exercises(), checks.conv2d_reference
    x, k = checks.example_input(), checks.example_kernel()
    multi = [ex.MultiCase(*ex.multi_example()), *ex.random_multi_cases(0, 30)]
    return {
        "diagnosis._result_variants": lambda: diagnosis._result_variants([[1.0, 2.0], [3.5, 4.0]], "x[i, j]", "2 rows"),
        "diagnosis.conv_variants": lambda: diagnosis.conv_variants(x, k, conv) + diagnosis.conv_variants(
            [[1.0, 2.0, 3.0, 4.0]] * 3, [[1.0, 2.0]], conv),
        "diagnosis.pool_variants": lambda: [v for case in checks.random_pool_cases(0, 20) for v in diagnosis.pool_variants(
            case.x, case.size, case.stride, checks.maxpool2d_reference(case.x, case.size, case.stride))],
        "diagnosis.shape_variants": lambda: [v for case in [*checks.SHAPE_CASES.values(), *checks.random_shape_cases(0, 200)]
                                             for v in diagnosis.shape_variants(case, checks._expected_output_shape)],
        "diagnosis.multi_conv_variants": lambda: [v for case in multi for v in diagnosis.multi_conv_variants(*case, conv)],
        "diagnosis.unfold_variants": lambda: [v for case in ex.random_batch_cases(0, 30)
                                              for v in diagnosis.unfold_variants(*case, conv)],
        "diagnosis.input_grad_variants": lambda: [v for case in ex.random_grad_cases(0, 20)
                                                  for v in diagnosis.input_grad_variants(*case, conv)],
        "diagnosis.grad_shape_variants": lambda: [
            v for case in ex.random_grad_cases(0, 20)
            for v in diagnosis.grad_shape_variants(checks.shape_of(case.g), checks.shape_of(case.k))],
        "diagnosis.field_variants": lambda: diagnosis.field_variants(ex.RF_STACK, ex.RF_POOLS) + [
            v for layers in ex.random_field_cases(0, 20) for v in diagnosis.field_variants(layers)],
        "diagnosis.count_variants": lambda: [v for case in ex.random_count_cases(0, 30) for linear in (False, True)
                                             for v in diagnosis.count_variants(case.in_channels, case.out_channels,
                                                                               *case.kernel_size, case.bias, linear=linear)],
        "diagnosis.shift_variants": lambda: [v for case in checks.random_shift_cases(0, 10)
                                             for v in diagnosis.shift_variants(case.values(), case.dy, case.dx)],
        "exercise_checks._count_mistakes": lambda: [v for found in ex._count_mistakes().values() for v in found],
    }


def _variant_calls():
    """{"module.function": [Variant(...) calls]} for every top-level function in convcourse that builds a Variant."""
    found = {}
    for path in sorted((ROOT / "convcourse").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            calls = [call for call in ast.walk(node) if isinstance(call, ast.Call) and "Variant" in (
                getattr(call.func, "id", None), getattr(call.func, "attr", None))]
            if calls and isinstance(node, ast.FunctionDef):
                found[f"{path.relative_to(ROOT / 'convcourse').with_suffix('')}.{node.name}".replace("/", ".")] = calls
    return found


def test_every_function_that_builds_variants_is_covered():
    """A new diagnosis is a function building Variants: it must be in the spread, so the next test sees its names."""
    calls = _variant_calls()
    assert set(calls) == set(_variant_spread()), "add the new function and a spread of its cases to _variant_spread"
    untagged = [f"{name}, line {call.lineno}" for name, found in calls.items() for call in found
                if len(call.args) < 4 and "tag" not in {kw.arg for kw in call.keywords}]
    assert not untagged, f"Variants without a name (tag=...): {untagged}"


@pytest.mark.parametrize("maker", sorted(_variant_spread()))
def test_every_variant_carries_a_known_name(maker):
    variants = _variant_spread()[maker]()
    assert variants and all(v.tag in diagnosis.MISTAKES for v in variants), {v.tag for v in variants}
    assert all(diagnosis.names_in(v.named()) == [v.tag] and v.named().endswith(f"[{v.tag}]") for v in variants)


def test_every_name_is_used_by_a_diagnosis():
    source = (ROOT / "convcourse" / "diagnosis.py").read_text()
    users = source[source.index("\n}\n", source.index("MISTAKES = {")):] + "".join(
        (ROOT / "convcourse" / name).read_text() for name in ("checks.py", "exercise_checks.py"))
    unused = [name for name in diagnosis.MISTAKES if f'"{name}"' not in users and f"[{name}]" not in users]
    assert not unused


def test_a_likely_cause_is_written_by_the_diagnosis():
    """Outside diagnosis.py "Likely cause" only leads a sentence that diagnose or tagged gives (so it is named)."""
    for name in ("checks.py", "exercise_checks.py"):
        tree = ast.parse((ROOT / "convcourse" / name).read_text())
        parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
                text = node.value
            else:
                continue
            assert "Likely cause" not in text or text.endswith(": "), f"{name}, line {node.lineno}: {text!r}"


@pytest.mark.parametrize("message, names", [
    (lambda: failure("manual_convolution", "mc-test-conv2d-visible", conv2d_naive=lambda x, k: conv(x, k[::-1, ::-1])),
     ["flipped-kernel"]),
    (lambda: failure("output_dimensions", "od-test-answers-5-7", answers={**LAB, 7: (112, 255, 255)}),
     ["missing-plus-one", "padding-once"]),
    (lambda: classifier_failure(net(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.Linear(32 * 28 * 28, 10))),
     ["missing-flatten"]),
    (lambda: classifier_failure(net(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 24 * 24, 10)),
                                lambda runs: checks.check_keeps_size("conv_model", runs)), ["size-setting"]),
])
def test_messages_carry_the_names_of_their_diagnoses(message, names):
    assert diagnosis.names_in(message()) == names


def test_habit_warnings_carry_names_and_unknown_names_are_refused(capsys):
    checks.check_classifier("m", net(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1)))
    assert diagnosis.names_in(capsys.readouterr().out) == ["softmax-before-loss"]
    assert diagnosis.names_in("[[1, 2]] [not-a-name] [flipped-kernel]") == ["flipped-kernel"]
    with pytest.raises(KeyError, match="unknown diagnosis name"):
        diagnosis.tagged("a sentence.", "no-such-name")
