"""Assignment 2's table: every variant in `convcourse.models.VARIANTS`, trained for the lab's 5 epochs.

Real MNIST (50,000 train / 10,000 validation / 10,000 test), batch 64, Adam 1e-3, validation
every 500 steps, seed 0, `convcourse.train.fit` with its defaults for this machine. Prints one
line per model as it finishes, then the table (parameters, wall time, validation and test
accuracy), and last:

    total_seconds=<t> min_test_accuracy=<a>

`total_seconds` covers every variant trained (training, validations and the test evaluation);
`min_test_accuracy` is over the lab's four main models (Model, ConvModel1, ConvModel2,
ConvModelReg = mlp, conv1, conv2, conv_bn). With `--seeds 0 1 2` the whole table is repeated
once per seed, a table of medians (and the test accuracy's range) follows, and the last line
holds medians: of the per-seed totals, and of each main model's test accuracy (then the minimum).

    .venv/bin/python benchmarks/assignment2.py --data /work/shared/data [--seeds 0 1 2] [--figure table.png]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pandas as pd
import torch

from convcourse.budget import BUDGET_ENV
from convcourse.data import MNISTCorruptError, MNISTMissingError, load_mnist
from convcourse.evaluation import Evaluation, evaluate
from convcourse.models import VARIANT_NOTES, VARIANTS
from convcourse.plots import comparison
from convcourse.train import History, fit

MAIN_MODELS = ("mlp", "conv1", "conv2", "conv_bn")


def run_variant(name: str, data, epochs: int, seed: int) -> tuple[History, Evaluation, float]:
    """Train one variant from seeded weights; (history, test evaluation, seconds incl. the test)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = VARIANTS[name](verbose=False)
    history = fit(model, data, epochs=epochs, seed=seed, progress=False)
    test = evaluate(model, data.test)
    return history, test, time.perf_counter() - start


def main() -> None:
    """Train the variants, print the table and the summary line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="folder holding MNIST/raw (default: $CONVCOURSE_DATA)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one table per seed (default: 0)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--figure", default=None, help="also save the comparison chart (first seed) to this file")
    args = parser.parse_args()
    if os.environ.pop(BUDGET_ENV, None) is not None:
        print(f"note: {BUDGET_ENV} ignored: this benchmark trains the full {args.epochs} epochs")
    try:
        data = load_mnist(args.data, download=False)
    except (MNISTMissingError, MNISTCorruptError) as error:
        parser.exit(2, f"error: {error}\n")  # the data's own advice, without a traceback
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, data {data.source}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)

    tables, totals = [], []
    for seed in args.seeds:
        histories: dict[str, History] = {}
        tests: dict[str, Evaluation] = {}
        total = 0.0
        for name in args.variants:
            history, test, seconds = run_variant(name, data, args.epochs, seed)
            histories[name], tests[name] = history, test
            total += seconds
            print(f"{name:13s} {history.parameters:>9,d} params  {seconds:7.1f} s  "
                  f"valid {history.final_valid_accuracy:.4f}  test {test.accuracy:.4f}  seed {seed}  "
                  f"({history.images_per_second:.0f} img/s, load {os.getloadavg()[0]:.2f})", flush=True)
        table, fig = comparison(histories, tests)
        table.insert(0, "what", [VARIANT_NOTES.get(name, "") for name in table.index])
        if args.figure and not tables:
            fig.savefig(args.figure, dpi=120)
        print(f"seed {seed}: {total:.1f} s in all")
        _print(table)
        tables.append(table)
        totals.append(total)

    numbers = pd.concat(tables).drop(columns="what").groupby(level=0, sort=False)
    medians = numbers.median()
    medians[["parameters", "steps"]] = medians[["parameters", "steps"]].round().astype(int)
    if len(tables) > 1:
        medians["test_min"], medians["test_max"] = numbers["test_accuracy"].min(), numbers["test_accuracy"].max()
        print(f"medians over seeds {args.seeds} (per-seed totals: {', '.join(f'{t:.1f}' for t in totals)} s)")
        _print(medians)
    main = [medians.loc[name, "test_accuracy"] for name in MAIN_MODELS if name in medians.index]
    print(f"total_seconds={statistics.median(totals):.1f} min_test_accuracy={min(main) if main else float('nan'):.4f}")


def _print(table: pd.DataFrame) -> None:
    """A table with accuracies to 4 places and times to 0.1 s."""
    with pd.option_context("display.width", 200, "display.max_colwidth", 70):
        print(table.round({"wall_time_s": 1, "valid_accuracy": 4, "test_accuracy": 4, "test_min": 4,
                           "test_max": 4}).to_string(), flush=True)


if __name__ == "__main__":
    main()
