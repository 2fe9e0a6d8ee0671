"""The lab's networks and the Assignment 2 variants, with the flatten size derived from `in_shape`.

Every model takes keyword `in_shape=(1, 28, 28)`, `num_classes=10` and `verbose=True`. The
conv models keep `PrintSize` modules where the lab has them; `verbose=False` makes those
modules silent (they stay in place, so layer indices and `state_dict` keys do not change).
The classifier's input size comes from a dry forward pass over a zero image, so changing a
kernel, padding, stride or pooling never breaks the first `nn.Linear`.
"""

from __future__ import annotations

from copy import deepcopy
from functools import partial
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "PrintSize",
    "Model",
    "ConvModel1",
    "ConvModel2",
    "DeepMLP",
    "ConvModelStride",
    "ConvModelReg",
    "VARIANTS",
    "VARIANT_NOTES",
    "count_parameters",
    "fresh_copy",
    "layer_shapes",
    "without_layers",
]


class PrintSize(nn.Module):
    """Prints the shape of the tensor passing through, once, on the first forward pass."""

    def __init__(self, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        self.first = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.enabled and self.first:
            print(f"Size: {x.size()}")
            self.first = False
        return x

    def extra_repr(self) -> str:
        return "" if self.enabled else "enabled=False"


def _check_in_shape(in_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(in_shape)
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise ValueError(f"in_shape must be (channels, height, width) positive ints, got {in_shape!r}")
    return shape  # type: ignore[return-value]


def _output_size(features: nn.Module, in_shape: tuple[int, int, int], owner: str) -> int:
    """Number of values `features` outputs for one image: a silent dry run that leaves no state."""
    printers = [m for m in features.modules() if isinstance(m, PrintSize)]
    saved = [m.enabled for m in printers]
    was_training = features.training
    for m in printers:
        m.enabled = False  # the real first forward pass should still print
    features.eval()  # BatchNorm must not update its running statistics on a zero image
    try:
        with torch.no_grad():
            out = features(torch.zeros(1, *in_shape))
    except RuntimeError as err:
        raise ValueError(f"{owner}: the convolution/pooling layers do not fit in_shape={in_shape}: {err}") from None
    finally:
        features.train(was_training)
        for m, enabled in zip(printers, saved):
            m.enabled = enabled
    return out[0].numel()


def _head(in_features: int, num_classes: int, hidden: int = 128, dropout_p: float = 0.0) -> nn.Sequential:
    """Flatten -> Linear(in, 128) -> ReLU -> Linear(128, classes), with optional dropout like the lab."""
    drop = (lambda: nn.Dropout(p=dropout_p)) if dropout_p > 0 else None
    layers: list[nn.Module] = [nn.Flatten()]
    layers += [drop()] if drop else []
    layers += [nn.Linear(in_features, hidden), nn.ReLU()]
    layers += [drop()] if drop else []
    layers += [nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


class _FeaturesClassifier(nn.Module):
    """`features` then `classifier`: the layout of every model below except the MLP."""

    features: nn.Sequential
    classifier: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Model(nn.Module):
    """The lab's baseline MLP: Flatten -> 784-128-128-classes with ReLU (`verbose` is accepted, unused)."""

    def __init__(self, *, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, hidden: int = 128,
                 verbose: bool = True) -> None:
        super().__init__()
        c, h, w = _check_in_shape(in_shape)
        self.net = nn.Sequential(
            nn.Flatten(),  # (N, C, H, W) -> (N, C*H*W)
            nn.Linear(c * h * w, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvModel1(_FeaturesClassifier):
    """Assignment 2.1: one Conv2d (+ ReLU, + optional 2x2 max pool) before the MLP head."""

    def __init__(self, num_filters: int = 32, kernel_size: int = 5, padding: int = 2, pool: bool = True, *,
                 in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, verbose: bool = True) -> None:
        super().__init__()
        shape = _check_in_shape(in_shape)
        self.features = nn.Sequential(
            PrintSize(verbose),
            nn.Conv2d(shape[0], num_filters, kernel_size=kernel_size, stride=1, padding=padding),
            nn.ReLU(),
            PrintSize(verbose),
            # Identity keeps the layer indices the same with and without pooling.
            nn.MaxPool2d(kernel_size=2, stride=2) if pool else nn.Identity(),
            PrintSize(verbose),
        )
        self.classifier = _head(_output_size(self.features, shape, "ConvModel1"), num_classes)


class ConvModel2(_FeaturesClassifier):
    """Assignment 2.2: two stacked Conv2d layers, then a 2x2 max pool and the MLP head."""

    def __init__(self, f1: int = 32, f2: int = 64, k1: int = 5, k2: int = 3, p1: int = 2, p2: int = 1, *,
                 in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, verbose: bool = True) -> None:
        super().__init__()
        shape = _check_in_shape(in_shape)
        self.features = nn.Sequential(
            PrintSize(verbose),
            nn.Conv2d(shape[0], f1, kernel_size=k1, stride=1, padding=p1),
            nn.ReLU(),
            nn.Conv2d(f1, f2, kernel_size=k2, stride=1, padding=p2),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            PrintSize(verbose),
        )
        self.classifier = _head(_output_size(self.features, shape, "ConvModel2"), num_classes)


class DeepMLP(_FeaturesClassifier):
    """Assignment 2.3: ConvModel2 with its two convolutions replaced by Linear layers (h1, h2 units)."""

    def __init__(self, h1: int = 512, h2: int = 512, *, in_shape: Sequence[int] = (1, 28, 28),
                 num_classes: int = 10, verbose: bool = True) -> None:
        super().__init__()
        c, h, w = _check_in_shape(in_shape)
        self.features = nn.Sequential(
            PrintSize(verbose),
            nn.Flatten(),
            nn.Linear(c * h * w, h1),
            nn.ReLU(),
            nn.Linear(h1, h2),
            nn.ReLU(),
            PrintSize(verbose),
        )
        self.classifier = _head(h2, num_classes)


class ConvModelStride(_FeaturesClassifier):
    """Assignment 2.4: ConvModel2 where the second conv has stride 2 instead of a max pool."""

    def __init__(self, f1: int = 32, f2: int = 64, k1: int = 5, k2: int = 3, p1: int = 2, p2: int = 1,
                 stride: int = 2, *, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                 verbose: bool = True) -> None:
        super().__init__()
        shape = _check_in_shape(in_shape)
        self.features = nn.Sequential(
            PrintSize(verbose),
            nn.Conv2d(shape[0], f1, kernel_size=k1, stride=1, padding=p1),
            nn.ReLU(),
            nn.Conv2d(f1, f2, kernel_size=k2, stride=stride, padding=p2),
            nn.ReLU(),
            PrintSize(verbose),
        )
        self.classifier = _head(_output_size(self.features, shape, "ConvModelStride"), num_classes)


class ConvModelReg(_FeaturesClassifier):
    """Assignments 2.5/2.6: ConvModel2 with BatchNorm after each conv and Dropout in the head.

    `batchnorm=False` gives the dropout-only variant (BatchNorm replaced by Identity);
    `dropout_p=0` drops the Dropout layers.
    """

    def __init__(self, f1: int = 32, f2: int = 64, dropout_p: float = 0.3, batchnorm: bool = True, *,
                 in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, verbose: bool = True) -> None:
        super().__init__()
        if not 0.0 <= dropout_p < 1.0:
            raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p!r}")
        shape = _check_in_shape(in_shape)
        norm = nn.BatchNorm2d if batchnorm else (lambda _channels: nn.Identity())
        self.features = nn.Sequential(
            nn.Conv2d(shape[0], f1, kernel_size=5, padding=2),
            norm(f1),
            nn.ReLU(),
            nn.Conv2d(f1, f2, kernel_size=3, padding=1),
            norm(f2),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = _head(_output_size(self.features, shape, "ConvModelReg"), num_classes, dropout_p=dropout_p)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases; BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def fresh_copy(model: nn.Module, *, seed: int | None = None) -> nn.Module:
    """The same architecture with new random weights: a copy of ``model`` whose layers are all initialised anew.

    ``seed`` makes the new weights reproducible without touching the caller's random state.
    """
    copy = deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for module in copy.modules():
            if hasattr(module, "reset_parameters"):  # Conv2d, Linear, BatchNorm (its running statistics too)
                module.reset_parameters()
    return copy


def without_layers(model: nn.Module, kinds: type | tuple[type, ...]) -> nn.Module:
    """A copy of ``model`` in which every layer of ``kinds`` (e.g. nn.BatchNorm2d) is an ``nn.Identity``.

    Every other weight is copied as it is, so an untrained model and its copy differ only by those layers.
    """
    copy = deepcopy(model)
    replaced = 0
    for parent in list(copy.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kinds):
                setattr(parent, name, nn.Identity())
                replaced += 1
    if not replaced:
        names = kinds.__name__ if isinstance(kinds, type) else " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{type(model).__name__} has no {names} layer to leave out")
    return copy


def layer_shapes(model: nn.Module, in_shape: Sequence[int] = (1, 28, 28)) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, module, output shape without the batch dimension) of every leaf module, in call order."""
    shape = _check_in_shape(in_shape)
    rows: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    names = {m: n for n, m in model.named_modules()}
    leaves = [m for m in model.modules() if not list(m.children()) and not isinstance(m, PrintSize)]
    hooks = [m.register_forward_hook(lambda m, i, o: rows.append((names[m], m, tuple(o.shape[1:])))) for m in leaves]
    try:
        _output_size(model, shape, type(model).__name__)
    finally:
        for h in hooks:
            h.remove()
    return rows


# Assignment 2's table: name -> factory. Every factory accepts the keywords in_shape,
# num_classes and verbose, plus its class's own arguments.
VARIANTS: dict[str, Callable[..., nn.Module]] = {
    "mlp": Model,
    "conv1": ConvModel1,
    "conv2": ConvModel2,
    "deep_mlp": DeepMLP,
    "conv_stride": ConvModelStride,
    "conv_dropout": partial(ConvModelReg, batchnorm=False),
    "conv_bn": ConvModelReg,
}

VARIANT_NOTES: dict[str, str] = {
    "mlp": "baseline: MLP 784-128-128-10",
    "conv1": "2.1: one 5x5 conv (32 filters, padding 2) + 2x2 max pool before the MLP head",
    "conv2": "2.2: two stacked convs (32 5x5, 64 3x3) + 2x2 max pool",
    "deep_mlp": "2.3: conv2 with its convs replaced by Linear layers (512, 512)",
    "conv_stride": "2.4: conv2 with a stride-2 second conv instead of the max pool",
    "conv_dropout": "2.5: conv2 with Dropout(0.3) in the head",
    "conv_bn": "2.6: conv2 with BatchNorm after each conv and Dropout(0.3) in the head",
}
