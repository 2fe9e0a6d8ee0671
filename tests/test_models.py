"""convcourse.models: output shapes, hand-computed parameter counts, PrintSize, derived flatten size."""

import pytest
import torch
from torch import nn

from convcourse.models import (
    VARIANT_NOTES,
    VARIANTS,
    ConvModel1,
    ConvModel2,
    ConvModelReg,
    ConvModelStride,
    Model,
    PrintSize,
    count_parameters,
    fresh_copy,
    layer_shapes,
    without_layers,
)
from convcourse.shapes import Conv2dSpec, LinearSpec, Pool2dSpec, trace_shapes


def linear(i, o):
    return i * o + o


def conv(i, o, k):
    return o * i * k * k + o


HEAD_28 = linear(64 * 14 * 14, 128) + linear(128, 10)  # conv2-style head after a 2x2 pool of 28x28
# Parameter counts worked out by hand for the default 1x28x28 input and 10 classes.
EXPECTED = {
    "mlp": linear(784, 128) + linear(128, 128) + linear(128, 10),  # 118,282
    "conv1": conv(1, 32, 5) + linear(32 * 14 * 14, 128) + linear(128, 10),  # 805,066
    "conv2": conv(1, 32, 5) + conv(32, 64, 3) + HEAD_28,  # 1,626,378
    "deep_mlp": linear(784, 512) + linear(512, 512) + linear(512, 128) + linear(128, 10),  # 731,530
    "conv_stride": conv(1, 32, 5) + conv(32, 64, 3) + HEAD_28,  # stride 2 gives 14x14 too
    "conv_dropout": conv(1, 32, 5) + conv(32, 64, 3) + HEAD_28,
    "conv_bn": conv(1, 32, 5) + 2 * 32 + conv(32, 64, 3) + 2 * 64 + HEAD_28,  # BatchNorm: weight + bias
}


def test_variant_table_is_complete():
    assert set(VARIANTS) == set(EXPECTED) == set(VARIANT_NOTES)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_output_shape_and_parameter_count(name):
    model = VARIANTS[name](verbose=False)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert count_parameters(model) == EXPECTED[name]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_other_input_shapes_and_classes(name):
    model = VARIANTS[name](in_shape=(3, 32, 32), num_classes=5, verbose=False)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)


def test_flatten_size_follows_the_layers():
    # No padding and a 3x3 kernel: 28 -> 26 -> pool 13; the lab's `height // 2` would say 14.
    model = ConvModel1(kernel_size=3, padding=0, verbose=False)
    assert model.classifier[1].in_features == 32 * 13 * 13
    assert ConvModel1(pool=False, verbose=False).classifier[1].in_features == 32 * 28 * 28
    assert ConvModel2(k1=3, p1=0, k2=3, p2=0, verbose=False).classifier[1].in_features == 64 * 12 * 12
    assert ConvModelStride(stride=3, verbose=False).classifier[1].in_features == 64 * 10 * 10
    assert count_parameters(ConvModel1(pool=False, verbose=False)) == conv(1, 32, 5) + linear(32 * 784, 128) + linear(128, 10)


def test_print_size_prints_once_and_can_be_silenced(capsys):
    model = ConvModel1()
    assert capsys.readouterr().out == "", "building a model must not print"
    model(torch.zeros(2, 1, 28, 28))
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "Size: torch.Size([2, 1, 28, 28])",
        "Size: torch.Size([2, 32, 28, 28])",
        "Size: torch.Size([2, 32, 14, 14])",
    ]
    model(torch.zeros(2, 1, 28, 28))
    assert capsys.readouterr().out == ""
    quiet = ConvModel2(verbose=False)
    quiet(torch.zeros(1, 1, 28, 28))
    assert capsys.readouterr().out == ""
    assert [type(m) for m in quiet.features] == [type(m) for m in ConvModel2().features], "same layers either way"
    assert isinstance(PrintSize()(torch.ones(1)), torch.Tensor)


def test_building_leaves_no_state_behind():
    model = ConvModelReg(verbose=False)
    bn = model.features[1]
    assert isinstance(bn, nn.BatchNorm2d) and int(bn.num_batches_tracked) == 0
    assert torch.all(bn.running_mean == 0) and model.training
    plain = ConvModelReg(batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, nn.Dropout) for m in plain.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in ConvModelReg(dropout_p=0).modules())


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="in_shape"):
        Model(in_shape=(28, 28))
    with pytest.raises(ValueError, match=r"do not fit in_shape=\(1, 1, 1\)"):
        ConvModel2(in_shape=(1, 1, 1))
    with pytest.raises(ValueError, match="dropout_p"):
        ConvModelReg(dropout_p=1.5)


def test_conv_model2_trace_matches_the_real_model():
    real = layer_shapes(ConvModel2(verbose=False))
    real_shapes = [shape for name, module, shape in real if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.Linear))]
    specs = [Conv2dSpec(32, 5, padding=2), Conv2dSpec(64, 3, padding=1), Pool2dSpec(2, 2), LinearSpec(128), LinearSpec(10)]
    rows = trace_shapes((1, 28, 28), specs)
    assert [r.output_shape for r in rows] == real_shapes
    assert sum(r.parameters for r in rows) == EXPECTED["conv2"]


def test_a_conv_model_learns_the_tiny_dataset(tiny_data):
    torch.manual_seed(0)
    model = ConvModel1(num_filters=8, verbose=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = tiny_data.train.batches(64, shuffle=True, generator=torch.Generator().manual_seed(0))
    for x, y in batches:  # one epoch: 21 steps
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(tiny_data.valid.images).argmax(1) == tiny_data.valid.targets).float().mean()
    assert accuracy > 0.7, f"validation accuracy {accuracy:.2f} after one epoch on digits (chance: 0.1)"


def test_fresh_copy_has_the_same_layers_and_new_reproducible_weights():
    torch.manual_seed(0)
    model = ConvModelReg(f1=4, f2=8, verbose=False)
    model.features[1].running_mean.fill_(3.0)  # as after training
    state = torch.get_rng_state()
    first, second = fresh_copy(model, seed=1), fresh_copy(model, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random numbers are left alone
    assert [type(m) for m in first.modules()] == [type(m) for m in model.modules()]
    for a, b, old in zip(first.parameters(), second.parameters(), model.parameters()):
        assert torch.equal(a, b) and a is not old
    assert not torch.equal(first.features[0].weight, model.features[0].weight)
    assert torch.all(first.features[1].running_mean == 0)  # batch-norm statistics start over too
    assert not torch.equal(fresh_copy(model, seed=2).features[0].weight, first.features[0].weight)


def test_without_layers_keeps_every_other_weight():
    torch.manual_seed(0)
    model = ConvModelReg(f1=4, f2=8, verbose=False)
    plain = without_layers(model, nn.BatchNorm2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2  # the original is untouched
    kept = {name: p for name, p in model.named_parameters() if not name.startswith(("features.1.", "features.4."))}
    assert {name: p.tolist() for name, p in plain.named_parameters()} == {name: p.tolist() for name, p in kept.items()}
    assert count_parameters(model) - count_parameters(plain) == 2 * 4 + 2 * 8  # BatchNorm's weight and bias
    assert plain(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="has no Dropout2d or BatchNorm1d layer"):
        without_layers(plain, (nn.Dropout2d, nn.BatchNorm1d))
