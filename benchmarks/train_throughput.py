"""Training throughput: the lab's own loop against `convcourse.train.fit`, same process, data and machine.

The lab loop is reproduced as the lab writes it: torchvision's MNIST with `ToTensor`, `Subset`
50,000/10,000, `DataLoader(batch_size=64, shuffle=True, drop_last=True)`, Adam 1e-3,
`sklearn.metrics.accuracy_score` on every batch, and a validation pass with a batch-64 loader.
Both loops train the same architecture from the same initial weights for the same number of
steps at batch 64, and both include exactly one full validation pass (at the last step): the
lab validates every `validation_every_steps`, set here to the step count, and `fit` gets
`validate_every` equal to it. Images/s = steps * 64 / seconds, validation included for both.

    .venv/bin/python benchmarks/train_throughput.py --data /work/shared/data

Last line: `speedup mlp=<x> conv2=<y>`, the ratio of the medians over the repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from torch import nn, optim
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from convcourse.budget import BUDGET_ENV
from convcourse.data import MNISTCorruptError, MNISTMissingError, load_mnist, resolve_root
from convcourse.models import ConvModel2, Model
from convcourse.train import fit

FACTORIES = {"mlp": lambda: Model(), "conv2": lambda: ConvModel2(verbose=False)}


def lab_datasets(root: str) -> tuple[Subset, Subset]:
    """The lab's train and validation subsets of torchvision's MNIST (ToTensor per image)."""
    full = datasets.MNIST(root=root, train=True, download=False, transform=transforms.ToTensor())
    return Subset(full, range(50000)), Subset(full, range(50000, 60000))


def lab_loop(model: nn.Module, train_dataset: Subset, validation_dataset: Subset, steps: int,
             batch_size: int = 64, validation_every_steps: int = 500) -> float:
    """The lab's training cell, stopped after `steps` steps; returns the final validation accuracy."""
    train_loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    validation_loader = DataLoader(validation_dataset, batch_size=batch_size, shuffle=False, drop_last=False)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    step = 0
    model.train()
    train_accuracies, validation_accuracies = [], []
    while step < steps:  # the lab's `for epoch in range(num_epochs)`, cut at `steps`
        train_accuracies_batches = []
        for inputs, targets in train_loader:
            output = model(inputs)
            loss = loss_fn(output, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            predictions = output.max(1)[1]
            train_accuracies_batches.append(accuracy_score(targets, predictions))
            if step % validation_every_steps == 0:
                train_accuracies.append(np.mean(train_accuracies_batches))
                train_accuracies_batches = []
                validation_accuracies_batches = []
                with torch.no_grad():
                    model.eval()
                    for inputs, targets in validation_loader:
                        output = model(inputs)
                        loss = loss_fn(output, targets)
                        predictions = output.max(1)[1]
                        validation_accuracies_batches.append(accuracy_score(targets, predictions) * len(inputs))
                    model.train()
                validation_accuracies.append(np.sum(validation_accuracies_batches) / len(validation_dataset))
            if step == steps:
                break
    return validation_accuracies[-1]


def time_lab(name: str, lab_data: tuple[Subset, Subset], steps: int, seed: int) -> tuple[float, float]:
    """(images/s, validation accuracy) of the lab loop."""
    torch.manual_seed(seed)
    model = FACTORIES[name]()
    start = time.perf_counter()
    acc = lab_loop(model, *lab_data, steps=steps, validation_every_steps=steps)
    return steps * 64 / (time.perf_counter() - start), acc


def time_fit(name: str, data, steps: int, seed: int) -> tuple[float, float]:
    """(images/s, validation accuracy) of convcourse.fit, measured around the call."""
    torch.manual_seed(seed)
    model = FACTORIES[name]()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # fit's "capped at N of M steps" line, expected here
        history = fit(model, data, epochs=1, max_steps=steps, validate_every=steps, progress=False, device="cpu")
    return steps * 64 / (time.perf_counter() - start), history.final_valid_accuracy


def main() -> None:
    """Run the repeats and print images/s per loop, the ratios and the `speedup` line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="folder holding MNIST/raw (default: $CONVCOURSE_DATA)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps-mlp", type=int, default=500)
    parser.add_argument("--steps-conv2", type=int, default=300)
    args = parser.parse_args()
    if os.environ.pop(BUDGET_ENV, None) is not None:
        print(f"note: {BUDGET_ENV} ignored here: both loops run the same explicit step count")
    root = str(resolve_root(args.data))
    try:
        data = load_mnist(root, download=False)
    except (MNISTMissingError, MNISTCorruptError) as error:
        parser.exit(2, f"error: {error}\n")  # the data's own advice, without a traceback
    lab_data = lab_datasets(root)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    for name in FACTORIES:  # warm-up (library first calls), not timed
        time_lab(name, lab_data, 5, 0)
        time_fit(name, data, 5, 0)

    speedups = {}
    for name, steps in (("mlp", args.steps_mlp), ("conv2", args.steps_conv2)):
        lab, ours = [], []
        for rep in range(args.repeats):
            lab_ips, lab_acc = time_lab(name, lab_data, steps, seed=rep)  # alternated: load drift hits both
            fit_ips, fit_acc = time_fit(name, data, steps, seed=rep)
            lab.append(lab_ips)
            ours.append(fit_ips)
            print(f"{name:5s} repeat {rep}: {steps} steps  lab {lab_ips:8.0f} img/s (valid acc {lab_acc:.4f})  "
                  f"fit {fit_ips:8.0f} img/s (valid acc {fit_acc:.4f})  ratio {fit_ips / lab_ips:5.2f}", flush=True)
        speedups[name] = statistics.median(ours) / statistics.median(lab)
        print(f"{name:5s} median: lab {statistics.median(lab):.0f} img/s, fit {statistics.median(ours):.0f} img/s, "
              f"speedup {speedups[name]:.2f}x", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"speedup mlp={speedups['mlp']:.2f} conv2={speedups['conv2']:.2f}")


if __name__ == "__main__":
    main()
