"""convcourse.train: learning, history fields, the step budget, seeding, evaluation, bad input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from convcourse import hardware
from convcourse.budget import BUDGET_ENV, EVAL_IMAGES
from convcourse.data import Split
from convcourse.evaluation import Evaluation, evaluate, predict
from convcourse.models import ConvModelReg, Model, count_parameters
from convcourse.train import curve_table, fit, plan_steps

# 1,297 digits training images at batch 64: 20 steps per epoch.
STEPS_PER_EPOCH = 1297 // 64


@pytest.fixture(autouse=True)
def _no_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` sets the budget for the notebooks; these tests set it themselves."""
    monkeypatch.delenv(BUDGET_ENV, raising=False)


def small_conv() -> nn.Module:
    """ConvModelReg with few filters: BatchNorm and Dropout (random) at a fraction of the cost."""
    return ConvModelReg(f1=4, f2=8, verbose=False)


def test_fit_learns_and_fills_the_history(tiny_data, capsys) -> None:
    torch.manual_seed(0)
    model = Model()
    history = fit(model, tiny_data, epochs=3, validate_every=20, progress=False)
    assert history.steps == [20, 40, 60]
    for name in ("train_accuracy", "train_loss", "valid_accuracy", "valid_loss", "times"):
        assert len(getattr(history, name)) == 3, name
    assert history.valid_accuracy[-1] > 0.6  # chance is 0.1
    assert history.valid_loss[-1] < history.valid_loss[0]
    assert history.train_accuracy[-1] > history.train_accuracy[0]
    assert history.steps_run == history.planned_steps == 3 * STEPS_PER_EPOCH
    assert not history.capped
    assert history.device == "cpu" or torch.cuda.is_available() or torch.backends.mps.is_available()
    assert history.parameters == count_parameters(model)
    assert history.wall_time > 0 and history.images_per_second == pytest.approx(60 * 64 / history.wall_time)
    assert history.final_valid_accuracy == history.valid_accuracy[-1]
    assert capsys.readouterr().out == ""  # progress=False and no cap: silent


def test_history_frame_and_summary(tiny_data) -> None:
    history = fit(Model(), tiny_data, epochs=1, validate_every=10, progress=False)
    frame = history.to_frame()
    assert list(frame.columns) == ["step", "time", "split", "accuracy", "loss"]
    assert len(frame) == 2 * len(history.steps)
    assert frame[frame.split == "validation"].accuracy.tolist() == history.valid_accuracy
    assert history.summary()["valid_accuracy"] == history.final_valid_accuracy
    assert history.as_dict()["steps"] == history.steps


def test_final_validation_when_last_step_is_not_a_multiple(tiny_data) -> None:
    history = fit(Model(), tiny_data, epochs=2, validate_every=25, progress=False)
    assert history.steps == [25, 2 * STEPS_PER_EPOCH]
    assert fit(Model(), tiny_data, epochs=1, validate_every=None, progress=False).steps == [STEPS_PER_EPOCH]


def test_progress_bar_writes_validation_lines(tiny_data, capsys) -> None:
    fit(Model(), tiny_data, epochs=1, validate_every=10, progress=True)
    captured = capsys.readouterr()
    assert "step    10/20" in captured.out and "valid acc" in captured.out
    assert "Model" in captured.err  # tqdm's text bar in a terminal / CI log


def test_budget_env_caps_and_says_so(tiny_data, capsys, monkeypatch) -> None:
    monkeypatch.setenv(BUDGET_ENV, "7")
    history = fit(Model(), tiny_data, epochs=3, progress=False)
    assert history.capped and history.steps_run == 7 and history.steps == [7]
    assert history.planned_steps == 3 * STEPS_PER_EPOCH
    out = capsys.readouterr().out
    assert f"{BUDGET_ENV}=7" in out and "CAPPED at 7 of 60 steps" in out


def test_budget_larger_than_the_run_changes_nothing(tiny_data, capsys, monkeypatch) -> None:
    monkeypatch.setenv(BUDGET_ENV, "1000")
    history = fit(Model(), tiny_data, epochs=1, progress=False)
    assert not history.capped and history.steps_run == STEPS_PER_EPOCH
    assert "CAPPED" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env", "max_steps", "expected", "why"),
    [(None, 5, 5, "max_steps"), ("10", 5, 5, "max_steps"), ("3", 5, 3, f"{BUDGET_ENV}=3"),
     ("4", None, 4, f"{BUDGET_ENV}=4"), (None, 500, 60, ""), (None, None, 60, "")],
)
def test_the_smaller_cap_wins(monkeypatch, env, max_steps, expected, why) -> None:
    if env is not None:
        monkeypatch.setenv(BUDGET_ENV, env)
    assert plan_steps(1297, 3, 64, max_steps) == (60, expected, why)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5"])
def test_bad_budget_is_refused(monkeypatch, value) -> None:
    monkeypatch.setenv(BUDGET_ENV, value)
    with pytest.raises(ValueError, match=BUDGET_ENV):
        plan_steps(1297, 1, 64, None)


def test_same_seed_same_history_other_seed_differs(tiny_data) -> None:
    def run(seed: int) -> list[float]:  # bit for bit on the CPU; cuDNN's backward kernels may differ in the last digits
        torch.manual_seed(0)
        history = fit(small_conv(), tiny_data, epochs=1, validate_every=4, max_steps=8, seed=seed, progress=False,
                      device="cpu")
        return history.train_loss + history.valid_loss + history.train_accuracy + history.valid_accuracy

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_fit_leaves_the_callers_random_state_alone(tiny_data) -> None:
    model = small_conv()  # built first: initialising weights draws from the RNG
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, tiny_data, epochs=1, max_steps=2, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_channels_last_option(tiny_data) -> None:
    model = small_conv()
    assert fit(model, tiny_data, epochs=1, max_steps=3, channels_last=True, progress=False).channels_last
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not fit(Model(), tiny_data, epochs=1, max_steps=3, channels_last=True, progress=False).channels_last


def hand_made() -> tuple[nn.Module, Split, list[list[float]], list[int]]:
    """A linear model whose logits are (mean pixel, 0.5), and four constant images."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0].fill_(1 / 784)
        model[1].bias.copy_(torch.tensor([0.0, 0.5]))
    levels = [0.0, 1.0, 1.0, 0.25]
    images = torch.stack([torch.full((1, 28, 28), v) for v in levels])
    targets = [1, 0, 1, 1]  # predictions 1, 0, 0, 1: three right
    return model, Split(images, torch.tensor(targets)), [[v, 0.5] for v in levels], targets


@pytest.mark.parametrize("batch_size", [1024, 3])
def test_evaluate_on_a_hand_made_case(batch_size) -> None:
    model, split, logits, targets = hand_made()
    losses = [math.log(math.exp(a) + math.exp(b)) - (a, b)[t] for (a, b), t in zip(logits, targets)]
    result = evaluate(model, split, batch_size=batch_size)
    assert isinstance(result, Evaluation)
    assert result.accuracy == pytest.approx(0.75)
    assert result.loss == pytest.approx(sum(losses) / 4, rel=1e-5)
    assert predict(model, split).tolist() == [1, 0, 0, 1]
    assert model.training  # evaluate restores the mode it found


def test_budget_evaluates_on_a_prefix_and_says_so(monkeypatch, capsys) -> None:
    model, _, _, _ = hand_made()
    n = EVAL_IMAGES + 500
    # Only the images past the prefix are classified wrongly: the prefix alone scores 1.0.
    images = torch.cat([torch.full((EVAL_IMAGES, 1, 28, 28), 0.0), torch.full((500, 1, 28, 28), 1.0)])
    split = Split(images, torch.ones(n, dtype=torch.int64))
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert evaluate(model, split).accuracy == pytest.approx(EVAL_IMAGES / n)
    assert "evaluating on the first" not in capsys.readouterr().out
    monkeypatch.setenv(BUDGET_ENV, "5")
    assert evaluate(model, split).accuracy == 1.0
    assert f"evaluating on the first {EVAL_IMAGES:,} of {n:,} images" in capsys.readouterr().out


def bad_data(images: torch.Tensor, targets: torch.Tensor) -> SimpleNamespace:
    split = SimpleNamespace(images=images, targets=targets)
    return SimpleNamespace(train=split, valid=split)


def test_images_without_channel_axis_are_refused() -> None:
    data = bad_data(torch.rand(128, 28, 28), torch.zeros(128, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*\(128, 28, 28\).*unsqueeze\(1\)"):
        fit(Model(), data, progress=False)


@pytest.mark.parametrize(
    ("images", "targets", "message"),
    [
        (torch.rand(128, 1, 28, 28), torch.zeros(128), "int64"),
        (torch.rand(128, 1, 28, 28), torch.zeros(100, dtype=torch.int64), r"\(128,\)"),
        (torch.randint(0, 255, (128, 1, 28, 28), dtype=torch.uint8), torch.zeros(128, dtype=torch.int64), "floating"),
        (torch.rand(10, 1, 28, 28), torch.zeros(10, dtype=torch.int64), "fewer than one batch of 64"),
    ],
)
def test_bad_data_gets_a_specific_error(images, targets, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit(Model(), bad_data(images, targets), progress=False)


def test_a_model_that_does_not_fit_the_images_is_explained(tiny_data) -> None:
    with pytest.raises(ValueError, match=r"failed on a batch of images shaped \(64, 1, 28, 28\)"):
        fit(Model(in_shape=(1, 14, 14)), tiny_data, progress=False)
    with pytest.raises(ValueError, match="one score per class"):
        fit(Model(num_classes=5), tiny_data, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"epochs": 0}, "epochs"), ({"batch_size": 2.5}, "batch_size"), ({"lr": -1.0}, "lr"),
     ({"validate_every": 0}, "validate_every"), ({"max_steps": 0}, "max_steps"), ({"device": "gpu7"}, "device")],
)
def test_bad_arguments_are_refused(tiny_data, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit(Model(), tiny_data, progress=False, **kwargs)
    with pytest.raises(TypeError, match="nn.Module"):
        fit("not a model", tiny_data, progress=False)


def test_missing_accelerator_is_refused() -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            hardware.resolve_device("cuda")
    assert hardware.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "expected"), [({"avx2"}, False), ({"avx2", "avx512_bf16"}, True), ({"amx_bf16"}, True)]
)
def test_bf16_detection_reads_the_cpu_flags(monkeypatch, flags, expected) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(hardware, "_cpuinfo_flags", lambda: flags)
    assert hardware.cpu_native_bf16() is expected
    assert hardware.bf16_default(torch.device("cpu")) is expected
    assert hardware.bf16_default(torch.device("cuda")) is False


def test_bf16_default_follows_this_cpu(tiny_data) -> None:
    history = fit(Model(), tiny_data, epochs=1, max_steps=2, device="cpu", progress=False)
    assert history.bf16 is hardware.cpu_native_bf16()


def test_channels_last_grads_keeps_the_layout_and_the_numbers() -> None:
    torch.manual_seed(0)
    model = ConvModelReg(dropout_p=0.0).to(memory_format=torch.channels_last)  # conv, BN, max pool, Flatten
    x = torch.rand(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    pooled_grads: list[torch.Tensor] = []
    model.features[-1].register_full_backward_hook(lambda _m, _gi, grad_out: pooled_grads.append(grad_out[0]))

    def weight_grads() -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        model(x).square().sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = weight_grads()
    with hardware.channels_last_grads(model):
        kept = weight_grads()
    after = weight_grads()
    layouts = [g.is_contiguous(memory_format=torch.channels_last) and not g.is_contiguous() for g in pooled_grads]
    assert layouts == [False, True, False]  # only inside the context, and the hooks are gone afterwards
    assert all(torch.equal(a, b) for a, b in zip(plain, kept))
    assert all(torch.equal(a, b) for a, b in zip(plain, after))


def test_curve_table_puts_each_run_on_a_row_and_each_point_in_its_column(tiny_data) -> None:
    short = fit(Model(), tiny_data, epochs=1, validate_every=10, progress=False)  # points at steps 10 and 20
    longer = fit(Model(), tiny_data, epochs=2, validate_every=15, progress=False)  # 15, 30 and 40
    table = curve_table({"short": short, "longer": longer})
    assert list(table.index) == ["short", "longer"] and list(table.columns) == [10, 15, 20, 30, 40]
    assert table.loc["short", [10, 20]].tolist() == short.valid_accuracy
    assert table.loc["longer", [15, 30, 40]].tolist() == longer.valid_accuracy
    assert math.isnan(table.loc["short", 15])  # no point there: blank, not 0
    assert curve_table({"short": short}, split="train").loc["short"].tolist() == short.train_accuracy
    with pytest.raises(ValueError, match="split"):
        curve_table({"short": short}, split="test")
    with pytest.raises(TypeError, match="name -> History"):
        curve_table({})
