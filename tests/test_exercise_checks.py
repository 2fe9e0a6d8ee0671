"""convcourse.exercise_checks: the later hand exercises' oracles agree with PyTorch, the solutions pass, and every
classic mistake gets its sentence through the real test cells of source/ without a hand answer in the message.

Fast: about 5 s.
"""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from free_answers import hand_answers, leaks, numbers_in
from test_diagnosis import CAUSE, failure, notebook_cell
from torch import nn

from convcourse import checks, diagnosis
from convcourse.models import ConvModel1, count_parameters

ex = checks.exercises()


def solution(assignment, grade_id, name, **namespace):
    """A function from the instructor's solution cell of a source notebook."""
    namespace = {"np": np, "F": F, **namespace}
    exec(notebook_cell(assignment, grade_id), namespace)  # noqa: S102 - the instructor's solution cell
    return namespace[name]


conv_loops = solution("manual_convolution", "mc-conv2d-naive", "conv2d_naive")
multi = solution("manual_convolution", "mc-conv2d-multi", "conv2d_multi", conv2d_naive=conv_loops)
unfold = solution("manual_convolution", "mc-conv2d-unfold", "conv2d_unfold")
input_grad = solution("manual_convolution", "mc-conv2d-input-grad", "conv2d_input_grad", conv2d_naive=conv_loops)
field = solution("output_dimensions", "od-receptive-field", "receptive_field")
conv_params = solution("output_dimensions", "od-conv-parameters", "conv_parameters")


def no_answer_in(message):
    """The message holds no graded hand answer, in any format."""
    found = leaks([("message", message)], hand_answers()[0])
    assert not found, found


# ---------------------------------------------------------------- the oracles against PyTorch


def test_multi_channel_oracle_is_pytorchs_conv2d():
    for case in ex.random_multi_cases(seed=11, count=15):
        want = F.conv2d(torch.tensor(case.x, dtype=torch.float64)[None], torch.tensor(case.w, dtype=torch.float64))[0]
        assert np.allclose(ex.conv2d_multi_reference(case.x, case.w), want.numpy())
    x, w = ex.multi_example()
    assert (len(x), len(w), len(w[0])) == (2, 2, 2)  # two channels, two filters of shape (2, kh, kw)


def test_input_gradient_oracle_is_autograds():
    for case in ex.random_grad_cases(seed=12, count=15):
        g, k = torch.tensor(case.g, dtype=torch.float64), torch.tensor(case.k, dtype=torch.float64)
        x = torch.zeros(g.shape[0] + k.shape[0] - 1, g.shape[1] + k.shape[1] - 1, dtype=torch.float64,
                        requires_grad=True)
        F.conv2d(x[None, None], k[None, None]).backward(g[None, None])
        assert np.allclose(ex.input_grad_reference(case.g, case.k), x.grad.numpy())


def measured_field(layers):
    """The receptive field measured with autograd: the input pixels one output unit's gradient reaches."""
    size = 1 + sum((k - 1) * int(np.prod([s for _, s in layers[:i]])) for i, (k, _) in enumerate(layers)) + 40
    x = torch.zeros(1, 1, 1, size, requires_grad=True)
    y = x
    for k, s in layers:
        y = F.conv2d(y, torch.ones(1, 1, 1, k), stride=(1, s))  # 1-D along the width; weights 1 reach every pixel
    y[0, 0, 0, 0].backward()
    reached = torch.nonzero(x.grad[0, 0, 0]).flatten()
    return int(reached.max() - reached.min() + 1)


def test_receptive_fields_are_what_autograd_measures():
    for layers in [list(ex.RF_STACK), *ex.random_field_cases(seed=13, count=20)]:
        assert ex._field_reference(layers)[-1] == measured_field(layers), layers


def test_parameter_answers_are_the_models_real_counts():
    answers = ex._parameter_answers()
    assert answers["linear"] == count_parameters(ConvModel1(verbose=False).classifier[1])
    assert answers["linear_no_pool"] == count_parameters(ConvModel1(pool=False, verbose=False).classifier[1])
    model = ConvModel1(verbose=False)
    gap = nn.Sequential(model.features[:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    assert gap(torch.zeros(2, 1, 28, 28)).shape == (2, 10)  # the head the question describes works on the maps
    assert answers["gap_head"] == count_parameters(gap[-1])
    assert count_parameters(model.features) == 832  # the conv layer the notebook's prose works out
    for case in ex.random_count_cases(seed=14, count=20):
        layer = nn.Conv2d(case.in_channels, case.out_channels, case.kernel_size, bias=case.bias)
        assert conv_params(*case) == count_parameters(layer)


# ---------------------------------------------------------------- the solutions pass, hidden cases included


def test_solutions_pass_random_cases():
    ex.check_conv2d_multi(multi, ex.random_multi_cases(seed=1, count=20))
    ex.check_conv2d_unfold(unfold, ex.random_batch_cases(seed=2, count=20))
    ex.check_conv2d_input_grad(input_grad, ex.random_grad_cases(seed=3, count=20))
    ex.check_receptive_field(field, ex.random_field_cases(seed=4, count=40))
    ex.check_conv_parameters(conv_params, ex.random_count_cases(seed=5, count=40))
    for grade_id, names in {"mc-test-conv2d-multi-hidden": {"conv2d_multi": multi},
                            "mc-test-conv2d-unfold-hidden": {"conv2d_unfold": unfold},
                            "mc-test-conv2d-input-grad-hidden": {"conv2d_input_grad": input_grad}}.items():
        assert not failure("manual_convolution", grade_id, **names), grade_id
    for grade_id, names in {"od-test-receptive-field-hidden": {"receptive_field": field},
                            "od-test-conv-parameters-hidden": {"conv_parameters": conv_params}}.items():
        assert not failure("output_dimensions", grade_id, **names), grade_id


def test_unfold_must_not_call_conv2d():
    message = failure("manual_convolution", "mc-test-conv2d-unfold", conv2d_unfold=lambda x, w: F.conv2d(x, w))
    assert "calls PyTorch's conv2d; compute the convolution with F.unfold" in message
    assert F.conv2d(torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1)).item() == 1  # restored afterwards


# ---------------------------------------------------------------- classic mistakes, named without the answer


def only_first_channel(x, w):
    return np.array([conv_loops(x[0], f[0]) for f in w])


def own_channel(x, w):
    return np.array([conv_loops(x[o], w[o][o]) for o in range(len(w))])


def swapped_filters(x, w):
    return np.array([sum(conv_loops(x[c], w[c][o]) for c in range(len(x))) for o in range(len(w))])


def mixed_weights(x, w):
    n, c_out, (_, _, kh, kw) = x.shape[0], w.shape[0], w.shape
    out = w.permute(0, 2, 3, 1).reshape(c_out, -1) @ F.unfold(x, (kh, kw))
    return out.reshape(n, c_out, x.shape[2] - kh + 1, x.shape[3] - kw + 1)


def swapped_reshape(x, w):
    n, c_out, (_, _, kh, kw) = x.shape[0], w.shape[0], w.shape
    return (w.reshape(c_out, -1) @ F.unfold(x, (kh, kw))).reshape(n, c_out, x.shape[3] - kw + 1, x.shape[2] - kh + 1)


def unflipped_grad(g, k):
    return conv_loops(np.pad(g, ((k.shape[0] - 1,) * 2, (k.shape[1] - 1,) * 2)), k)


@pytest.mark.parametrize("assignment, cell, names, sentence, tags", [
    ("manual_convolution", "mc-test-multi-by-hand", {"multi_by_hand": [[[0, -1], [0, 0]], [[2, 1], [3, 3]]]},
     "only the first input channel is used", ["first-channel-only"]),
    ("manual_convolution", "mc-test-multi-by-hand", {"multi_by_hand": [[[0, -1], [0, 0]], [[-1, 2], [8, -1]]]},
     "each filter sees only the input channel of its own number", ["own-channel-only"]),
    ("manual_convolution", "mc-test-multi-by-hand",
     {"multi_by_hand": [[[0.5, 1], [2, 0.5]], [[0.5, 1.5], [5.5, 1]]]}, "the channels are averaged", ["channels-averaged"]),
    ("manual_convolution", "mc-test-conv2d-multi", {"conv2d_multi": only_first_channel},
     "only the first input channel is used", ["first-channel-only"]),
    ("manual_convolution", "mc-test-conv2d-unfold", {"conv2d_unfold": lambda x, w: unfold(x, w.flip(-1, -2))},
     "the kernels are flipped", ["flipped-kernel"]),
    ("manual_convolution", "mc-test-conv2d-unfold", {"conv2d_unfold": mixed_weights},
     "the weights are flattened in another order than unfold's patches", ["weights-flattened-mixed"]),
    ("manual_convolution", "mc-test-conv2d-unfold", {"conv2d_unfold": swapped_reshape},
     "height and width are swapped in the last reshape", ["reshape-sides-swapped"]),
    ("manual_convolution", "mc-test-conv2d-input-grad", {"conv2d_input_grad": unflipped_grad},
     "the kernel is not flipped", ["gradient-kernel-unflipped"]),
    ("manual_convolution", "mc-test-conv2d-input-grad", {"conv2d_input_grad": lambda g, k: conv_loops(g, k[::-1, ::-1])},
     "returns an array of shape (0, 0); dL/dx has the input's shape (H_out + kh - 1, W_out + kw - 1) = (4, 4)",
     ["gradient-padding-short"]),
    ("manual_convolution", "mc-test-conv2d-input-grad",
     {"conv2d_input_grad": lambda g, k: conv_loops(np.pad(g, 1), k[::-1, ::-1])}, "g is padded by (k - 1) // 2",
     ["gradient-padding-short"]),
    ("output_dimensions", "od-test-fields-by-hand", {"fields_by_hand": [5, 8, 10, 13]}, "the kernel sizes are added up",
     ["field-kernels-added"]),
    ("output_dimensions", "od-test-fields-by-hand", {"fields_by_hand": [5, 7, 8, 10]}, "the strides are left out",
     ["field-strides-left-out"]),
    ("output_dimensions", "od-test-fields-by-hand", {"fields_by_hand": [5, 7, 9, 13]},
     "each layer's own stride is applied before its kernel", ["field-stride-too-early"]),
    ("output_dimensions", "od-test-fields-by-hand", {"fields_by_hand": [4, 6, 7, 11]}, "the field starts at 0",
     ["field-starts-at-zero"]),
    ("output_dimensions", "od-test-fields-by-hand", {"fields_by_hand": [5, 7, 7, 9]}, "the pooling layer is left out",
     ["field-pool-left-out"]),
    ("output_dimensions", "od-test-receptive-field", {"receptive_field": lambda layers: 1 + sum(k - 1 for k, _ in layers)},
     "the strides are left out", ["field-strides-left-out"]),
    # 11 on the first visible stack is also the early-stride slip's answer: the other stacks tell them apart
    ("output_dimensions", "od-test-receptive-field", {"receptive_field": lambda layers: sum(k for k, _ in layers)},
     "the kernel sizes are added up", ["field-kernels-added"]),
    ("output_dimensions", "od-test-param-counts",
     {"param_counts": {"linear": 802816, "linear_no_pool": 3211264, "gap_head": 62730}},
     "Likely cause (linear): the biases are left out", ["biases-left-out", "gap-not-averaged"]),
    ("output_dimensions", "od-test-conv-parameters",
     {"conv_parameters": lambda i, o, k, bias=True: o * k[0] * k[1] + o * bias}, "the input channels are left out",
     ["count-input-channels-left-out"]),
    ("output_dimensions", "od-test-conv-parameters",
     {"conv_parameters": lambda i, o, k, bias=True: o * i * k[0] * k[1] + o}, "bias=False means the layer has none",
     ["biases-counted-without-bias"]),
])
def test_classic_mistakes_are_named_without_a_hand_answer(assignment, cell, names, sentence, tags):
    message = failure(assignment, cell, **names)
    assert "Likely cause" in message and sentence in message, message
    assert diagnosis.names_in(message) == tags  # the names the class report counts
    no_answer_in(message)


def test_mistakes_that_need_their_own_cases_are_named():
    square = [case for case in ex.random_multi_cases(seed=1103, count=20) if len(case.x) == len(case.w) > 1]
    with pytest.raises(checks.CheckFailed, match="filters and channels are swapped"):
        ex.check_conv2d_multi(swapped_filters, square)
    # a count that is another question's answer is the student's own number: named, but not checked for leaks
    message = failure("output_dimensions", "od-test-param-counts",
                      param_counts={"linear": 3211392, "linear_no_pool": 3211392, "gap_head": 330})
    assert message.endswith("Likely cause (linear): the maps are counted before the 2x2 max pool halves their height "
                            "and width: count what leaves the pool [counted-before-pool].")


def _given_away(message, answers, own):
    """Numbers in ``message`` that are a right count or the values reaching its Linear layer, or multiply to one
    ("32 x 14 x 14"); the student's own numbers (``own``) are theirs to see."""
    reaching = [(answers[key] - out) // out for key, out in (("linear", 128), ("linear_no_pool", 128), ("gap_head", 10))]
    secret = {*answers.values(), *reaching} - set(own)
    products = [math.prod(int(n) for n in re.split(r"\s*[x×*]\s*", group))
                for group in re.findall(r"\d+(?:\s*[x×*]\s*\d+)+", message.replace(",", ""))]
    return sorted({n for n in [*numbers_in(message)[0], *products] if n in secret})


def test_parameter_count_hints_give_no_count_away():
    """Every classic wrong count, through the real test cell: its hint names the slip, and no number in the message
    is a right count, the number of values that reach the Linear layer, or a product that makes one."""
    answers, named = ex._parameter_answers(), 0
    assert _given_away("32 x 14 x 14 values reach the Linear(6272, 128) of 802,944", answers, []) == [32, 6272, 802944]
    for key, variants in ex._count_mistakes().items():
        for variant in variants:
            counts = {**dict.fromkeys(answers, 1), key: variant.answer}
            message = failure("output_dimensions", "od-test-param-counts", param_counts=counts)
            named += variant.mistake in message
            assert not _given_away(message, answers, counts.values()), message
    assert named == sum(map(len, ex._count_mistakes().values()))  # each slip is named, none gives its count away


@pytest.mark.parametrize("cell, names, text", [
    ("mc-test-multi-by-hand", {"multi_by_hand": [[1, 2], [4, 1]]}, "multi_by_hand is one matrix (rows, columns); it "
     "should be a list of feature maps, one per output channel (channels, rows, columns)"),
    ("mc-test-conv2d-multi", {"conv2d_multi": lambda x, w: multi(x, w)[0]}, "the result of conv2d_multi is one matrix"),
])
def test_a_single_matrix_for_feature_maps_is_said_plainly(cell, names, text):
    message = failure("manual_convolution", cell, **names)
    assert text in message and "every row must itself be a list" not in message, message


def test_hand_answers_are_never_printed_by_their_checks():
    for cell, names in (("mc-test-multi-by-hand", {"multi_by_hand": [[[9, 9], [9, 9]], [[9, 9], [9, 9]]]}),
                        ("mc-test-conv-by-hand", {"conv_by_hand": [[0] * 3] * 3}),
                        ("mc-test-pool-by-hand", {"pool_by_hand": [[0]]})):
        message = failure("manual_convolution", cell, **names)
        assert message and "expected" not in message, message
        no_answer_in(message)
    for cell, names in (("od-test-fields-by-hand", {"fields_by_hand": [1, 1, 1, 1]}),
                        ("od-test-param-counts", {"param_counts": {"linear": 1, "linear_no_pool": 1, "gap_head": 1}}),
                        ("od-test-function-visible", {"output_shape": lambda *a, **k: (1, 1, 1)})):
        message = failure("output_dimensions", cell, **names)
        assert message, cell
        no_answer_in(message)


def test_the_visible_function_tests_give_no_hand_answer_away():
    """A wrong conv2d_naive, maxpool2d or output_shape fails on cases whose expected values are no hand answer."""
    wrong = {"mc-test-conv2d-visible": {"conv2d_naive": lambda x, k: conv_loops(x, k) + 1},
             "mc-test-maxpool2d-visible": {"maxpool2d": lambda x, size, stride: np.zeros((1, 1))},
             "mc-test-conv2d-multi": {"conv2d_multi": lambda x, w: multi(x, w) + 1},
             "mc-test-conv2d-unfold": {"conv2d_unfold": lambda x, w: unfold(x, w) + 1},
             "mc-test-conv2d-input-grad": {"conv2d_input_grad": lambda g, k: input_grad(g, k) + 1}}
    for cell, names in wrong.items():
        message = failure("manual_convolution", cell, **names)
        assert "expected" in message, message  # function tests do show expected values, of other numbers
        no_answer_in(message)
    for slip in ("no + 1", "padding once"):
        def output_shape(input_shape, num_filters, filter_shape, stride=(1, 1), padding=(0, 0), slip=slip):
            (c, h, w), (fc, kh, kw), (sh, sw), (ph, pw) = input_shape, filter_shape, stride, padding
            if fc != c or kh > h + 2 * ph or kw > w + 2 * pw:
                return None
            sides, one = 1 if slip == "padding once" else 2, 1 if slip == "no + 1" else 0
            return num_filters, (h + sides * ph - kh) // sh + 1 - one, (w + sides * pw - kw) // sw + 1 - one
        message = failure("output_dimensions", "od-test-function-visible", output_shape=output_shape)
        assert "that is not right" in message and CAUSE in message, message
        no_answer_in(message)
