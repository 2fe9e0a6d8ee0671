"""`convcourse.train.fit` on an accelerator: it trains there, learns there, and how much faster than this CPU.

On `--device` (default cuda), with real MNIST read from `--data` (never downloaded):

1. correctness: the lab's MLP (`Model`) and `ConvModel2` each train `--epochs` epochs (default 1,
   781 steps) with `fit`; every parameter and buffer must be on the device, the `History` must
   report it (and the defaults there: no bf16 autocast, no channels-last), and validation and test
   accuracy must be at least `--min-accuracy` (chance is 0.10);
2. speed: both models train `--steps` steps again (default 300), fresh, on the device and then on
   the CPU of the same machine, same seed and weights, `--repeats` times alternated (default 3);
   one validation pass of 10,000 images at the last step is included for both, as in
   `train_throughput.py`. Images/s = steps x 64 / wall time; medians and their ratio.
   An untimed 5-step warm-up per model and device runs first (CUDA context, cuDNN, kernels).

    python3 benchmarks/fit_device.py --data /work/shared/data              # on a machine with a GPU
    .venv/bin/python benchmarks/fit_device.py --data /work/shared/data --device cpu --epochs 1

Prints the GPU's name, torch/CUDA/cuDNN versions and CPU threads, one line per run, and last
`fit_device device=<type>:<name> mlp_acc=<a> conv_acc=<a> ... speedup_vs_cpu mlp=<x> conv=<y>`.
Exit status 2 when the device or the data is missing, 1 when a check fails (`FAIL:` lines say which).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn

from convcourse import hardware
from convcourse.budget import BUDGET_ENV
from convcourse.data import MNISTCorruptError, MNISTData, MNISTMissingError, load_mnist, resolve_root
from convcourse.evaluation import evaluate
from convcourse.models import ConvModel2, Model
from convcourse.train import History, fit

FACTORIES = {"mlp": lambda: Model(), "conv": lambda: ConvModel2(verbose=False)}
FAILURES: list[str] = []


def check(ok: bool, what: str) -> None:
    """Record a failed check (the run goes on, so every failure is reported)."""
    if not ok:
        FAILURES.append(what)
        print(f"FAIL: {what}", flush=True)


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine() or "cpu"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_fit(name: str, data: MNISTData, dev: torch.device, *, epochs: int = 1, steps: int | None = None,
            seed: int = 0) -> tuple[nn.Module, History, float]:
    """(model, history, images/s measured around the call) of one seeded `fit` on `dev`."""
    torch.manual_seed(seed)
    model = FACTORIES[name]()
    sync(dev)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # fit's "capped at N of M steps" line, expected with --steps
        history = fit(model, data, epochs=epochs, max_steps=steps, validate_every=steps or 500, device=dev,
                      seed=seed, progress=False)
    sync(dev)
    return model, history, history.steps_run * history.batch_size / (time.perf_counter() - start)


def check_placement(name: str, model: nn.Module, history: History, dev: torch.device) -> None:
    """Parameters, buffers and the history all say `dev`; the device's defaults were taken."""
    tensors = list(model.parameters()) + list(model.buffers())
    wrong = sorted({str(t.device) for t in tensors if t.device.type != dev.type})
    check(not wrong, f"{name}: every parameter/buffer on {dev.type} (found {wrong})")
    check(torch.device(history.device).type == dev.type, f"{name}: History.device {history.device!r} is {dev.type}")
    check(history.bf16 is hardware.bf16_default(dev), f"{name}: History.bf16={history.bf16} is the {dev.type} default")
    if dev.type == "cuda":
        check(not history.bf16 and not history.channels_last, f"{name}: fp32 NCHW on cuda (bf16={history.bf16}, "
              f"channels_last={history.channels_last})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="folder holding MNIST/raw (default: $CONVCOURSE_DATA)")
    parser.add_argument("--device", default="cuda", help="device to check: cuda, cuda:1, mps or cpu (default cuda)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs for the accuracy check (781 steps each)")
    parser.add_argument("--steps", type=int, default=300, help="steps per timed run, on the device and on the CPU")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model and device (median reported)")
    parser.add_argument("--min-accuracy", type=float, default=0.90, help="validation/test accuracy required")
    args = parser.parse_args()
    if min(args.epochs, args.steps, args.repeats) < 1:
        parser.error("--epochs, --steps and --repeats must be positive")
    if os.environ.pop(BUDGET_ENV, None) is not None:
        print(f"note: {BUDGET_ENV} ignored here: every run has an explicit length")
    try:
        dev = hardware.resolve_device(args.device)
    except ValueError as error:
        cuda = f"CUDA build {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        parser.exit(2, f"error: {error} (torch {torch.__version__}, {cuda}, "
                       f"torch.cuda.is_available()={torch.cuda.is_available()}): nothing was trained "
                       "(--device cpu runs it here)\n")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())  # History then names the same device
    try:
        data = load_mnist(str(resolve_root(args.data)), download=False, dataset="mnist")
    except (MNISTMissingError, MNISTCorruptError) as error:
        parser.exit(2, f"error: {error}\n")

    name = device_name(dev)
    print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}, "
          f"{torch.get_num_threads()} CPU threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"device {dev}: {name}" + (f", {torch.cuda.get_device_properties(dev).total_memory / 2**30:.0f} GiB, "
                                     f"compute capability {'.'.join(map(str, torch.cuda.get_device_capability(dev)))}"
                                     if dev.type == "cuda" else ""))
    print(f"data: real MNIST from {data.root} ({len(data.train)} train, {len(data.valid)} valid, {len(data.test)} test)",
          flush=True)
    cpu = torch.device("cpu")
    start = time.perf_counter()

    # 1. correctness: full epochs on the device
    acc = {}
    for key in FACTORIES:
        model, history, ips = run_fit(key, data, dev, epochs=args.epochs)
        check_placement(key, model, history, dev)
        test = evaluate(model, data.test)  # on the model's device
        acc[key] = history.final_valid_accuracy
        print(f"{key:4s} on {dev}: {history.steps_run} steps ({args.epochs} epoch{'s' * (args.epochs != 1)}) in "
              f"{history.wall_time:.1f} s, {ips:,.0f} img/s, valid acc {acc[key]:.4f}, test acc {test.accuracy:.4f} "
              f"(History: device={history.device} bf16={history.bf16} channels_last={history.channels_last})", flush=True)
        check(history.steps_run == history.planned_steps == args.epochs * (len(data.train) // 64),
              f"{key}: ran all {history.planned_steps} planned steps (ran {history.steps_run})")
        check(acc[key] >= args.min_accuracy, f"{key}: validation accuracy {acc[key]:.4f} >= {args.min_accuracy}")
        check(test.accuracy >= args.min_accuracy, f"{key}: test accuracy {test.accuracy:.4f} >= {args.min_accuracy}")
        check(history.valid_loss[-1] < history.valid_loss[0] or len(history.valid_loss) == 1,
              f"{key}: validation loss fell ({history.valid_loss[0]:.4f} -> {history.valid_loss[-1]:.4f})")

    # 2. speed: the same steps, seed and model on the device, then on this machine's CPU
    for key in FACTORIES:  # warm-up, not timed
        for where in dict.fromkeys([dev, cpu]):
            run_fit(key, data, where, steps=5)
    ips_dev, ips_cpu = {}, {}
    for key in FACTORIES:
        runs_dev, runs_cpu = [], []
        for rep in range(args.repeats):  # alternated, so drift in the machine's load hits both
            model, history, ips = run_fit(key, data, dev, steps=args.steps, seed=rep)
            check_placement(f"{key} (timed)", model, history, dev)
            _, cpu_history, cpu_ips = run_fit(key, data, cpu, steps=args.steps, seed=rep)
            runs_dev.append(ips)
            runs_cpu.append(cpu_ips)
            print(f"{key:4s} repeat {rep}, {args.steps} steps: {dev} {ips:,.0f} img/s (valid acc "
                  f"{history.final_valid_accuracy:.4f}), cpu {cpu_ips:,.0f} img/s (valid acc "
                  f"{cpu_history.final_valid_accuracy:.4f}, bf16={cpu_history.bf16})", flush=True)
        ips_dev[key], ips_cpu[key] = statistics.median(runs_dev), statistics.median(runs_cpu)
        print(f"{key:4s} median: {dev} {ips_dev[key]:,.0f} img/s, cpu {ips_cpu[key]:,.0f} img/s, "
              f"ratio {ips_dev[key] / ips_cpu[key]:.1f}x", flush=True)
    print(f"total {time.perf_counter() - start:.1f} s")
    if dev.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**20:.0f} MiB")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) FAILED: " + "; ".join(FAILURES))
    print(f"fit_device device={dev.type}:{name.replace(' ', '_')} ok={not FAILURES} mlp_acc={acc['mlp']:.4f} "
          f"conv_acc={acc['conv']:.4f} img_per_s mlp={ips_dev['mlp']:.0f} conv={ips_dev['conv']:.0f} "
          f"cpu_img_per_s mlp={ips_cpu['mlp']:.0f} conv={ips_cpu['conv']:.0f} "
          f"speedup_vs_cpu mlp={ips_dev['mlp'] / ips_cpu['mlp']:.2f} conv={ips_dev['conv'] / ips_cpu['conv']:.2f}")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
