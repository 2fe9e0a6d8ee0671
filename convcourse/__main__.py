"""``python -m convcourse``: check a student's install: where the package is, PyTorch's build, the device, MNIST.

    python -m convcourse                # also downloads MNIST once if it is missing (needs the network)
    python -m convcourse --no-download  # report only
    python -m convcourse check NOTEBOOK # run a notebook as the grader will (convcourse.check)

Exit status 0 when the notebooks can run; a missing or corrupt dataset ends with one ``error:``
message (what to do) and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib.util
import platform
import sys

import convcourse
from convcourse.mnist_files import DATA_ENV, default_root


def main(argv: list[str] | None = None) -> int:
    """Print the report; 0 when ready, 2 when the data is missing or corrupt (``check``: see convcourse.check)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        from convcourse.check import main as check

        return check(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m convcourse", description="Check this install of the course: "
                                     "where the package is, PyTorch's build, the device, MNIST (fetched once). "
                                     "`python -m convcourse check NOTEBOOK` runs a notebook as the grader will.")
    parser.add_argument("--data", default=None, help=f"folder holding MNIST/raw (default: ${DATA_ENV}, "
                        f"else {default_root()})")
    parser.add_argument("--no-download", action="store_true", help="report a missing dataset instead of fetching it")
    args = parser.parse_args(argv)
    # torch is imported only after the cheap lines are out: its first import takes seconds on a laptop.
    print(f"convcourse {convcourse.__version__} from {convcourse.__path__[0]}")
    print(f"Python {platform.python_version()} at {sys.executable}")
    import torch

    from convcourse.data import MNISTCorruptError, MNISTMissingError, load_mnist
    from convcourse.hardware import default_device

    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    print(f"torch {torch.__version__} ({build}); training runs on: {default_device()}")
    lab = importlib.util.find_spec("jupyterlab") is not None
    print("JupyterLab: installed" if lab else "JupyterLab: not installed (pip install jupyterlab, or the [student] extra)")
    try:
        data = load_mnist(args.data, download=not args.no_download)
    except (MNISTMissingError, MNISTCorruptError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"data: {data.source}, {len(data.train):,} training / {len(data.valid):,} validation / "
          f"{len(data.test):,} test images" + (f" in {data.root}" if data.root else ""))
    print("ready: start JupyterLab in the notebooks' folder with `jupyter lab`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
