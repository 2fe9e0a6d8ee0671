"""The machine's side of training: which device, whether bfloat16 and channels-last pay off, Adam's kernel.

Every choice here is a default that `convcourse.train.fit` takes unless told otherwise, and each
is on only where it was measured to help (see benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

__all__ = ["adam", "bf16_default", "channels_last_default", "channels_last_grads", "cpu_native_bf16", "default_device",
           "eval_batch_size", "is_channels_last", "resolve_device"]

EVAL_BATCH = 1024  # evaluation batch on accelerators
CPU_EVAL_BATCH = 256  # on the CPU: measured 1.7-2.9x faster than 1024 for ConvModel2 (cache-sized activations)


def default_device() -> torch.device:
    """CUDA if available, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device` as a torch.device (None: `default_device()`), refusing ones this machine lacks."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:0', 'mps' or None") from err
    if (dev.type == "cuda" and not torch.cuda.is_available()) or (
        dev.type == "mps" and not torch.backends.mps.is_available()
    ):
        raise ValueError(f"device {device!r} is not available on this machine: use device=None or 'cpu'")
    return dev


def _cpuinfo_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:  # not Linux
        return set()


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), per torch or /proc/cpuinfo."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(probe is not None and probe() for probe in probes):
        return True
    return bool(_cpuinfo_flags() & {"avx512_bf16", "amx_bf16"})


def bf16_default(device: torch.device) -> bool:
    """bf16 autocast is on by default only on CPUs with native bf16; elsewhere it is opt-in."""
    return device.type == "cpu" and cpu_native_bf16()


def channels_last_default(device: torch.device, bf16: bool) -> bool:
    """channels_last is on by default only together with bf16 on the CPU, where it measurably helps."""
    # oneDNN's bf16 convs and max pooling run channels-last natively: ConvModel2 measured ~14 %
    # faster steps and ~2x faster evaluation; in fp32 on an AVX2 CPU it measured within noise.
    return device.type == "cpu" and bf16


def eval_batch_size(device: torch.device) -> int:
    """Images per evaluation batch on ``device`` (the CPU prefers smaller batches)."""
    return CPU_EVAL_BATCH if device.type == "cpu" else EVAL_BATCH


def _strictly_channels_last(t: torch.Tensor) -> bool:
    """4-D and laid out channels-last, not also NCHW-contiguous (as tensors with C == 1 or H == W == 1 are)."""
    return t.ndim == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def is_channels_last(model: nn.Module) -> bool:
    """Whether some 4-D parameter of ``model`` is stored channels-last (the model was converted)."""
    return any(_strictly_channels_last(p) for p in model.parameters())


def adam(model: nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam; on the CPU the fused kernel (one pass over all parameters) where this torch has it."""
    params = list(model.parameters())
    if device.type == "cpu":
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):  # torch < 2.4: no fused Adam on the CPU
            pass
    return torch.optim.Adam(params, lr=lr)


@contextlib.contextmanager
def channels_last_grads(model: nn.Module) -> Iterator[None]:
    """While active, the gradient flowing back into each `nn.Flatten` keeps its input's channels-last layout."""
    # Flatten's backward hands a channels-last max pool an NCHW gradient, and the CPU max-pool
    # backward is ~4x slower on mixed layouts (3.6 vs 0.9 ms for ConvModel2, bf16): a 0.15 ms copy
    # back to channels-last made ConvModel2 steps 10-20 % faster, with bit-identical results.
    def to_channels_last(grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)

    def before_flatten(_module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and x.requires_grad and _strictly_channels_last(x):
            x.register_hook(to_channels_last)

    handles = [m.register_forward_pre_hook(before_flatten) for m in model.modules() if isinstance(m, nn.Flatten)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
