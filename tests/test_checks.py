"""convcourse.checks: the messages the notebooks' test cells give, the oracles, and their tamper resistance.

Fast (about 5 s, most of it one subprocess that plays a hostile notebook).
"""
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

import convcourse.checks as checks
import convcourse.shapes

ROOT = Path(__file__).resolve().parents[1]


def solution(assignment, grade_id, name):
    """A function from the instructor's solution cell of a source notebook (what a correct student writes)."""
    notebook = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    namespace = {"np": np}
    exec(next(c.source for c in notebook.cells if c.id == grade_id), namespace)
    return namespace[name]


conv_loops = solution("manual_convolution", "mc-conv2d-naive", "conv2d_naive")
pool_loops = solution("manual_convolution", "mc-maxpool2d", "maxpool2d")
shape_formula = solution("output_dimensions", "od-output-shape", "output_shape")


LAB_ANSWERS = {1: (16, 24, 24), 2: (24, 30, 30), 3: (3, 16, 16), 4: (7, 4, 8), 5: (112, 256, 256), 6: None, 7: None}


# ---------------------------------------------------------------- matrices and messages


@pytest.mark.parametrize("value", [[[1, 2], [3, 4]], np.array([[1, 2], [3, 4]]), torch.tensor([[1.0, 2], [3, 4]]),
                                   [np.array([1, 2]), np.array([3, 4])], [[np.int64(1), np.float32(2)],
                                                                          [torch.tensor(3), 4]]])
def test_as_matrix_accepts_lists_arrays_and_tensors(value):
    assert checks.as_matrix("m", value) == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("value, message", [
    (5, "single number"), ([], "non-empty"), ("abc", "non-empty nested list"), ([1, 2], "row 0 of m is 1"),
    ([[1, 2], [3]], "different lengths"), ([[1, "x"]], "m[0][1] is 'x'"), ([[1, float("nan")]], "finite"),
    ([[True, 1]], "not a number"), ([[]], "empty"),
])
def test_as_matrix_says_what_is_wrong(value, message):
    with pytest.raises(checks.CheckFailed, match=message.replace("[", r"\[").replace("]", r"\]")):
        checks.as_matrix("m", value)


def test_check_matrix_names_wrong_entries_and_hides_expected_values_on_request():
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_matrix("conv_by_hand", [[1, 2], [3, 4]], [[1, 2], [0, 5]], reveal=False)
    message = str(failure.value)
    assert "2 of 4 entries" in message and "row 1, column 0: you have 3" in message and "row 1, column 1" in message
    assert "expected" not in message
    with pytest.raises(checks.CheckFailed, match="row 1, column 1: you have 4, expected 5"):
        checks.check_matrix("m", [[1, 2], [3, 4]], [[1, 2], [3, 5]])


def test_check_matrix_reports_shape_mismatch():
    with pytest.raises(checks.CheckFailed, match="has 2 rows and 3 columns; it should have 3 rows and 3 columns"):
        checks.check_matrix("m", [[1, 2, 3]] * 2, [[1, 2, 3]] * 3)


def test_check_matrix_tolerates_float_rounding_only():
    checks.check_matrix("m", [[0.1 + 0.2]], [[0.3]])
    with pytest.raises(checks.CheckFailed):
        checks.check_matrix("m", [[0.31]], [[0.3]])


# ---------------------------------------------------------------- convolution and pooling


def test_references_match_the_example_worked_by_hand():
    x, k = checks.example_input(), checks.example_kernel()
    assert (len(x), len(x[0]), len(k), len(k[0])) == (5, 5, 3, 3)
    conv = checks.conv2d_reference(x, k)
    assert conv == conv_loops(np.array(x), np.array(k)).tolist()
    assert checks.maxpool2d_reference(conv, 2, 2) == [[max(conv[0][:2] + conv[1][:2])]]


def test_correct_implementations_pass_visible_and_random_cases():
    checks.check_conv2d(conv_loops, checks.random_conv_cases(seed=1, count=30))
    checks.check_maxpool2d(pool_loops, checks.random_pool_cases(seed=1, count=30))


def test_random_cases_are_reproducible_and_varied():
    cases = checks.random_conv_cases(seed=7, count=40)
    assert cases == checks.random_conv_cases(seed=7, count=40)
    assert any(len(c.x) != len(c.x[0]) for c in cases) and any(len(c.k) != len(c.k[0]) for c in cases)
    pools = checks.random_pool_cases(seed=7, count=40)
    assert any((len(p.x) - p.size) % p.stride for p in pools)  # the floor rule gets exercised


def test_flipped_kernel_and_integer_output_are_caught():
    with pytest.raises(checks.CheckFailed, match="entries of the result of conv2d_naive are wrong"):
        checks.check_conv2d(lambda x, k: conv_loops(x, k[::-1, ::-1]), checks.random_conv_cases(seed=2, count=5))
    with pytest.raises(checks.CheckFailed, match="on a .* input"):
        checks.check_conv2d(lambda x, k: conv_loops(x, k).astype(int), checks.random_conv_cases(seed=2, count=5))


def test_student_errors_become_clear_messages():
    def unwritten(x, k):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not written yet"):
        checks.check_conv2d(unwritten, [checks.ConvCase([[1.0]], [[1.0]])])
    with pytest.raises(checks.CheckFailed, match=r"raised ZeroDivisionError: .* on a 2x2 input with size=1"):
        checks.check_maxpool2d(lambda x, s, st: 1 / 0, [checks.PoolCase([[1, 2], [3, 4]], 1, 1)])
    with pytest.raises(checks.CheckFailed, match="should be a function"):
        checks.check_conv2d(42, [checks.ConvCase([[1.0]], [[1.0]])])


def test_a_student_function_that_mutates_its_input_cannot_move_the_oracle():
    def sneaky(x, k):
        x[:] = 0  # would change the expected result if the oracle ran afterwards on the same data
        return np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))

    with pytest.raises(checks.CheckFailed):
        checks.check_conv2d(sneaky, [checks.ConvCase([[1.0, 2.0], [3.0, 4.0]], [[1.0]])])


def test_a_replaced_torch_function_is_detected(monkeypatch):
    monkeypatch.setattr(torch.nn.functional, "conv2d", lambda x, w, *a, **k: torch.zeros(1, 1, 1, 1))
    with pytest.raises(checks.TamperingError, match="conv2d no longer computes"):
        checks.conv2d_reference([[1.0]], [[1.0]])
    monkeypatch.setattr(torch.nn.functional, "max_pool2d", lambda x, *a, **k: x)
    with pytest.raises(checks.TamperingError, match="max_pool2d"):
        checks.maxpool2d_reference([[1.0, 2.0]], 1, 1)


# ---------------------------------------------------------------- output shapes


def test_lab_answers_pass_and_agree_with_a_real_conv2d():
    checks.check_shape_answers(LAB_ANSWERS, list(checks.SHAPE_CASES))
    for number, case in checks.SHAPE_CASES.items():
        assert checks._expected_output_shape(case) == checks.conv2d_forward_shape(case) == LAB_ANSWERS[number]
    assert "NO" not in checks.compare_with_conv2d(LAB_ANSWERS)
    assert "NO" in checks.compare_with_conv2d({**LAB_ANSWERS, 1: (16, 28, 28)})
    as_lists = {number: list(shape) if shape else shape for number, shape in LAB_ANSWERS.items()}
    assert "NO" not in checks.compare_with_conv2d(as_lists)  # [16, 24, 24] is as right as (16, 24, 24)


def test_output_shape_is_compared_with_pytorch_on_layers_that_are_no_hand_task():
    table = checks.compare_function_with_conv2d(shape_formula)
    assert table.count("agree") == len(checks.PYTORCH_CASES) and "DIFFERENT" not in table
    assert "an error" in table and any(checks.conv2d_forward_shape(case) is None for case in checks.PYTORCH_CASES)
    as_list = checks.compare_function_with_conv2d(lambda *args: list(shape_formula(*args) or []) or None)
    assert "DIFFERENT" not in as_list
    wrong = checks.compare_function_with_conv2d(lambda *args: (1, 1, 1))
    assert wrong.count("DIFFERENT") == len(checks.PYTORCH_CASES)
    assert not set(checks.PYTORCH_CASES) & set(checks.SHAPE_CASES.values())
    with pytest.raises(checks.CheckFailed, match="not written yet"):
        checks.compare_function_with_conv2d(lambda *args: (_ for _ in ()).throw(NotImplementedError()))


def test_shape_oracle_agrees_with_pytorch_on_random_cases():
    cases = checks.random_shape_cases(seed=3, count=40)
    assert any(checks._expected_output_shape(c) is None for c in cases)  # invalid ones are included
    assert any(checks._expected_output_shape(c) is not None for c in cases)
    for case in cases:
        assert checks._expected_output_shape(case) == checks.conv2d_forward_shape(case), case


def test_the_notebooks_cases_are_the_old_ones_with_the_invalid_ones_among_the_others():
    """PAPER_CASES (today's numbering) holds the layers SHAPE_CASES (the old notebooks' numbering) does, and the
    layers no Conv2d can compute are neither last nor next to each other, so their place gives nothing away."""
    assert sorted(checks.PAPER_CASES.values()) == sorted(checks.SHAPE_CASES.values())
    assert list(checks.PAPER_CASES) == list(checks.SHAPE_CASES) == list(range(1, 8))
    invalid = [n for n, case in checks.PAPER_CASES.items() if checks._expected_output_shape(case) is None]
    assert len(invalid) == 2 and max(invalid) < len(checks.PAPER_CASES) and invalid[1] - invalid[0] > 1, invalid
    today = {n: LAB_ANSWERS[old] for n, case in checks.PAPER_CASES.items()
             for old, same in checks.SHAPE_CASES.items() if same == case}
    checks.check_shape_answers(today, list(checks.PAPER_CASES), checks.PAPER_CASES)
    with pytest.raises(checks.CheckFailed, match="4 of 7 answers"):  # the old numbering is not today's
        checks.check_shape_answers(LAB_ANSWERS, list(checks.PAPER_CASES), checks.PAPER_CASES)


def test_shape_answer_messages_name_each_problem_without_the_answer():
    wrong = {1: (16, 24.0, 24), 2: (24, 31, 31), 3: [3, 16, 16], 6: (8, 30, 30), 4: "7, 4, 8"}
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_shape_answers(wrong, [1, 2, 3, 4, 5, 6])
    message = str(failure.value)
    assert "5 of 6 answers" in message and "24.0 is a float" in message and "case 2: (24, 31, 31) is not right" in message
    assert "case 5: no answer" in message and "case 4: answers[4] is '7, 4, 8'" in message
    assert "(24, 30, 30)" not in message and "cannot be computed" not in message  # no answers given away
    with pytest.raises(checks.CheckFailed, match="should be a dict"):
        checks.check_shape_answers([(16, 24, 24)], [1])


def test_output_shape_function_checks():
    checks.check_output_shape_function(shape_formula, checks.random_shape_cases(seed=4, count=60))

    def ignores_padding(input_shape, num_filters, filter_shape, stride=(1, 1), padding=(0, 0)):
        return shape_formula(input_shape, num_filters, filter_shape, stride, (0, 0))

    with pytest.raises(checks.CheckFailed, match="output_shape gives"):
        checks.check_output_shape_function(ignores_padding, list(checks.SHAPE_CASES.values()))


def test_shape_oracle_uses_a_private_copy(monkeypatch):
    monkeypatch.setattr(convcourse.shapes, "conv2d_output_shape", lambda *a, **k: (1, 1, 1))
    assert checks._expected_output_shape(checks.SHAPE_CASES[1]) == (16, 24, 24)
    private = checks.private_module("shapes")
    assert private is not convcourse.shapes and private.__name__ not in sys.modules
    with pytest.raises(FileNotFoundError, match="no module 'nope'"):
        checks.private_module("nope")


# ---------------------------------------------------------------- models


def conv_net(padding=2, pool=False, stride=1):
    size = (28 + 2 * padding - 5) // stride + 1
    size = size // 2 if pool else size
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=stride, padding=padding), nn.ReLU(),
                         *([nn.MaxPool2d(2)] if pool else []), nn.Flatten(), nn.Linear(4 * size * size, 10))


def test_model_checks_accept_the_intended_architectures():
    layers = checks.check_classifier("m", conv_net())
    checks.check_uses("m", layers, "Conv2d")
    checks.check_keeps_size("m", layers)
    checks.check_halves("p", checks.check_classifier("p", conv_net(pool=True)), by="pool")
    checks.check_halves("s", checks.check_classifier("s", conv_net(stride=2)), by="stride")


@pytest.mark.parametrize("model, check, message", [
    (conv_net(padding=0), lambda runs: checks.check_keeps_size("m", runs), "24x24 feature maps"),
    (conv_net(pool=True), lambda runs: checks.check_halves("m", runs, by="stride"), "should not use nn.MaxPool2d"),
    (conv_net(), lambda runs: checks.check_halves("m", runs, by="pool"), "should produce 14x14"),
    (conv_net(), lambda runs: checks.check_avoids("m", runs, "Conv2d"), "should not use nn.Conv2d"),
    (conv_net(), lambda runs: checks.check_uses("m", runs, "Dropout"), "at least 1 nn.Dropout"),
])
def test_model_checks_explain_failures(model, check, message):
    with pytest.raises(checks.CheckFailed, match=message):
        check(checks.check_classifier("m", model))


class Reshapes(nn.Module):  # fails inside its own forward: nothing to diagnose
    def forward(self, x):
        return x.view(-1, 100)


def test_classifier_failures_name_the_shape():
    with pytest.raises(checks.CheckFailed, match=r"(?s)fails on a batch of shape \(2, 1, 28, 28\).*Likely cause: "
                                                 r"the 5x5 Conv2d at m\[0\] has padding=0"):
        checks.check_classifier("m", nn.Sequential(nn.Conv2d(1, 4, 5), nn.Flatten(), nn.Linear(4 * 28 * 28, 10)))
    with pytest.raises(checks.CheckFailed, match=r"(?s)fails on a batch of shape \(2, 1, 28, 28\).*PrintSize"):
        checks.check_classifier("m", Reshapes())  # without a diagnosis, the generic hint
    with pytest.raises(checks.CheckFailed, match=r"into \(2, 5\); it should give \(2, 10\)"):
        checks.check_classifier("m", nn.Sequential(nn.Flatten(), nn.Linear(784, 5)))
    with pytest.raises(checks.CheckFailed, match="should be a torch.nn.Module"):
        checks.check_classifier("m", "not a model")


def test_an_unused_layer_does_not_count():
    class Decoy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 5, padding=2)  # present, but forward never calls it
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

        def forward(self, x):
            return self.head(x)

    with pytest.raises(checks.CheckFailed, match="0 ran"):
        checks.check_uses("decoy", checks.check_classifier("decoy", Decoy()), "Conv2d")


def test_run_layers_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 10))
    model.train()
    checks.run_layers(model)
    assert model.training and all(not m._forward_hooks for m in model.modules())


# ---------------------------------------------------------------- a hostile notebook


def test_test_cells_survive_a_notebook_that_patches_the_checks():
    """Run, in a fresh interpreter, what a cheating notebook would: patch, then the test-cell preamble."""
    script = textwrap.dedent("""
        import importlib, numpy as np, torch, convcourse.checks
        # the student's cell: wrong answers plus patches meant to make every check pass
        conv_by_hand = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
        convcourse.checks.check_matrix = lambda *a, **k: None
        convcourse.checks.conv2d_reference = lambda *a, **k: conv_by_hand
        np.allclose = lambda *a, **k: True
        torch.allclose = lambda *a, **k: True
        torch.nn.functional.conv2d = lambda x, w, *a, **k: torch.zeros(1, 1, x.shape[2] - w.shape[2] + 1,
                                                                       x.shape[3] - w.shape[3] + 1)
        # the test cell
        checks = importlib.reload(convcourse.checks)
        try:
            checks.check_conv_by_hand(conv_by_hand)
        except checks.CheckFailed as failure:
            print("caught:", type(failure).__name__)
        else:
            print("NOT CAUGHT")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "caught: TamperingError"


def test_layers_are_recognised_by_what_they_are_not_by_patched_names(monkeypatch):
    class MyConv(nn.Conv2d):  # a student's subclass is still a Conv2d
        pass

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    monkeypatch.setattr(torch.nn, "Conv2d", nn.Module)  # would make every layer "a Conv2d" by isinstance
    with pytest.raises(checks.CheckFailed, match="at least 1 nn.Conv2d"):
        checks.check_uses("mlp", checks.check_classifier("mlp", mlp), "Conv2d")
    assert checks.is_layer(MyConv(1, 1, 3), "Conv2d") and not checks.is_layer(nn.Linear(1, 1), "Conv2d")
