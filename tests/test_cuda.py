"""convcourse on CUDA: device choice, fit's CUDA branches (RNG fork, device meter, copies), evaluation.

Skipped where `torch.cuda.is_available()` is false; `benchmarks/fit_device.py` is the full-MNIST check.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from convcourse import hardware
from convcourse.budget import BUDGET_ENV
from convcourse.data import MNISTData, Split
from convcourse.evaluation import evaluate, predict
from convcourse.models import ConvModel2, ConvModelReg, Model
from convcourse.train import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")

STEPS_PER_EPOCH = 1297 // 64  # the digits stand-in (tiny_data): 20 steps per epoch


@pytest.fixture(autouse=True)
def _no_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root conftest sets the notebooks' budget; these tests choose their own lengths."""
    monkeypatch.delenv(BUDGET_ENV, raising=False)


def small_conv() -> nn.Module:
    """ConvModelReg with few filters: convolutions, BatchNorm (buffers) and Dropout (random) on the GPU."""
    return ConvModelReg(f1=4, f2=8, verbose=False)


def dropout_mlp() -> nn.Module:
    """Only matrix products and dropout: reproducible on a GPU run after run (no cuDNN algorithm choice)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))


def on_cuda(model: nn.Module) -> bool:
    return all(t.device.type == "cuda" for t in [*model.parameters(), *model.buffers()])


def test_cuda_is_chosen_and_resolved() -> None:
    assert hardware.default_device() == torch.device("cuda")
    assert hardware.resolve_device(None) == torch.device("cuda")
    assert hardware.resolve_device("cuda") == torch.device("cuda")
    assert hardware.resolve_device("cuda:0") == torch.device("cuda", 0)
    assert hardware.resolve_device(torch.device("cuda", 0)) == torch.device("cuda", 0)


def test_cuda_defaults_are_fp32_nchw_and_plain_adam() -> None:
    cuda = torch.device("cuda")
    assert hardware.bf16_default(cuda) is False
    assert hardware.channels_last_default(cuda, False) is False
    assert hardware.channels_last_default(cuda, True) is False
    assert hardware.eval_batch_size(cuda) == hardware.EVAL_BATCH
    optimizer = hardware.adam(Model().to(cuda), 1e-3, cuda)
    assert isinstance(optimizer, torch.optim.Adam)
    assert not optimizer.defaults.get("fused")  # fused Adam is chosen on the CPU only


@pytest.mark.parametrize("device", [None, "cuda", "cuda:0"])
def test_fit_trains_on_cuda_and_learns(tiny_data, device, capsys) -> None:
    torch.manual_seed(0)
    model = Model()
    history = fit(model, tiny_data, epochs=3, validate_every=20, device=device, progress=False)
    assert on_cuda(model)
    assert torch.device(history.device).type == "cuda"
    assert history.device == ("cuda:0" if device == "cuda:0" else "cuda")
    assert history.bf16 is False and history.channels_last is False
    assert history.steps == [20, 40, 60] and history.steps_run == 3 * STEPS_PER_EPOCH
    assert history.valid_accuracy[-1] > 0.6  # chance is 0.1
    assert history.valid_loss[-1] < history.valid_loss[0]
    assert history.train_accuracy[-1] > history.train_accuracy[0]
    assert all(isinstance(v, float) for v in history.train_loss + history.valid_accuracy)  # read back to the host
    assert history.wall_time > 0 and history.images_per_second > 0
    assert tiny_data.train.images.device.type == "cpu"  # fit copies the data, the caller's stays put
    assert capsys.readouterr().out == ""


def test_conv_model_with_batchnorm_and_dropout_on_cuda(tiny_data) -> None:
    torch.manual_seed(0)
    model = small_conv()
    history = fit(model, tiny_data, epochs=4, validate_every=40, device="cuda", progress=False)
    assert on_cuda(model)  # BatchNorm's running statistics (buffers) moved too
    assert model.features[1].num_batches_tracked.item() == 4 * STEPS_PER_EPOCH
    assert history.valid_accuracy[-1] > 0.5
    assert history.valid_loss[-1] < history.valid_loss[0]
    assert model.training  # fit leaves the model in training mode after validating


def test_fit_leaves_the_callers_cpu_and_cuda_random_state_alone(tiny_data) -> None:
    for device in ("cuda", "cuda:0"):  # fork_rng's device list: current_device() when the index is None
        model = small_conv()
        torch.manual_seed(123)
        expected_cpu, expected_cuda = torch.rand(3), torch.rand(3, device="cuda")
        torch.manual_seed(123)
        fit(model, tiny_data, epochs=1, max_steps=3, device=device, progress=False)  # dropout draws on the GPU
        assert torch.equal(torch.rand(3), expected_cpu)
        assert torch.equal(torch.rand(3, device="cuda"), expected_cuda)


@pytest.mark.parametrize(
    ("build", "rel"),
    [(dropout_mlp, 1e-5),  # matrix products and dropout masks from the seeded CUDA generator: repeatable
     (small_conv, 1e-3)],  # cuDNN's convolution backward may sum in another order: a few digits, as fit says
    ids=["mlp", "conv"],
)
def test_same_seed_same_history_on_cuda(tiny_data, build, rel) -> None:
    def run(seed: int) -> list[float]:
        torch.manual_seed(0)
        history = fit(build(), tiny_data, epochs=1, validate_every=4, max_steps=12, seed=seed,
                      device="cuda", progress=False)
        return history.train_loss + history.valid_loss

    first, again, other = run(3), run(3), run(4)
    assert first == pytest.approx(again, rel=rel, abs=1e-6)
    assert first != pytest.approx(other, rel=1e-3)


def test_bf16_and_channels_last_on_request(tiny_data) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    torch.manual_seed(0)
    model = ConvModel2(f1=8, f2=16, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the "emulated and slow" warning is for CPUs only
        history = fit(model, tiny_data, epochs=3, validate_every=20, device="cuda", bf16=True, channels_last=True,
                      progress=False)
    assert history.bf16 and history.channels_last
    assert on_cuda(model) and hardware.is_channels_last(model)
    assert model.features[1].weight.dtype == torch.float32  # autocast: the weights stay float32
    assert history.valid_accuracy[-1] > 0.5
    fp32 = evaluate(model, tiny_data.valid)  # evaluate scores in float32; fit validated under bf16 autocast
    assert fp32.accuracy == pytest.approx(history.valid_accuracy[-1], abs=0.05)


def test_data_already_on_the_gpu(tiny_data) -> None:
    splits = [Split(s.images.cuda(), s.targets.cuda()) for s in (tiny_data.train, tiny_data.valid, tiny_data.test)]
    gpu_data = MNISTData(*splits, source=tiny_data.source)
    torch.manual_seed(0)
    model = Model()
    history = fit(model, gpu_data, epochs=2, device="cuda", progress=False)
    assert history.valid_accuracy[-1] > 0.5 and on_cuda(model)
    assert predict(model, gpu_data.valid).device.type == "cpu"


def test_evaluate_and_predict_follow_the_model_to_cuda(tiny_data) -> None:
    torch.manual_seed(0)
    model = Model()
    fit(model, tiny_data, epochs=2, device="cuda", progress=False)
    cpu_model = Model()
    cpu_model.load_state_dict({name: t.cpu() for name, t in model.state_dict().items()})
    cpu_result = evaluate(cpu_model, tiny_data.valid)
    result = evaluate(model, tiny_data.valid)  # device None: the model's own, CPU tensors copied over
    assert next(model.parameters()).is_cuda
    assert result.accuracy == pytest.approx(cpu_result.accuracy, abs=0.01)
    assert result.loss == pytest.approx(cpu_result.loss, rel=1e-3)
    preds = predict(model, tiny_data.valid)
    assert preds.device.type == "cpu" and preds.dtype == torch.int64 and len(preds) == len(tiny_data.valid)
    assert (preds == tiny_data.valid.targets).float().mean().item() == pytest.approx(result.accuracy)
    # pinned host memory: the non_blocking copies in evaluation are then truly asynchronous
    pinned = Split(tiny_data.valid.images.pin_memory(), tiny_data.valid.targets.pin_memory())
    for batch_size in (None, 7):
        again = evaluate(model, pinned, batch_size=batch_size)
        assert again.accuracy == pytest.approx(result.accuracy, abs=0.01)  # other batch sizes: other GEMM kernels
        assert again.loss == pytest.approx(result.loss, rel=1e-3)
    moved = Model()
    evaluate(moved, tiny_data.valid, device="cuda")  # device given: a CPU model is moved there
    assert on_cuda(moved)


def test_real_data_on_cuda(data) -> None:
    """The session's dataset (real MNIST where found): ConvModel2 for 200 steps beats chance by far."""
    torch.manual_seed(0)
    model = ConvModel2(verbose=False)
    history = fit(model, data, epochs=10, max_steps=200, validate_every=100, device="cuda", progress=False)
    assert history.steps_run == 200 and on_cuda(model)
    assert history.valid_accuracy[-1] > 0.9, (data.source, history.valid_accuracy)
    assert evaluate(model, data.test).accuracy > 0.9
