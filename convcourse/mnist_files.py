"""Where the MNIST files live and what they must be: the one torch-free home of these rules.

``convcourse.data`` loads the files; the grading side (which must not import torch just to find
them) checks and exposes the same folder to graded kernels. Both read the rules from here.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping, NamedTuple

DATA_ENV = "CONVCOURSE_DATA"  # folder holding MNIST/raw/
DATASET_ENV = "CONVCOURSE_DATASET"  # "mnist" (default) or "digits", the announced test stand-in
DATASETS = ("mnist", "digits")


class FileInfo(NamedTuple):
    """What one unpacked idx file must be."""

    size: int
    md5: str
    magic: int  # idx magic number: 2051 images, 2049 labels
    count: int


# The unpacked files' sizes and checksums (torchvision only lists md5s of the .gz archives).
MNIST_FILES: dict[str, FileInfo] = {
    "train-images-idx3-ubyte": FileInfo(47040016, "6bbc9ace898e44ae57da46a324031adb", 2051, 60000),
    "train-labels-idx1-ubyte": FileInfo(60008, "a25bea736e30d166cdddb491f175f624", 2049, 60000),
    "t10k-images-idx3-ubyte": FileInfo(7840016, "2646ac647ad5339dbf082846283269ea", 2051, 10000),
    "t10k-labels-idx1-ubyte": FileInfo(10008, "27ae3e4e09519cfbb04c329615203637", 2049, 10000),
}


def default_root() -> Path:
    """Per-user cache folder for the data (e.g. ~/.cache/convcourse on Linux)."""
    import platformdirs  # only needed here; keeps the import cost off other code paths

    return Path(platformdirs.user_cache_dir("convcourse"))


def resolve_root(root: str | os.PathLike | None = None, environ: MutableMapping[str, str] | None = None) -> Path:
    """The data folder: `root`, else $CONVCOURSE_DATA, else `default_root()`."""
    if root is not None:
        return Path(root).expanduser()
    env = (os.environ if environ is None else environ).get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else default_root()


def raw_folder(root: str | os.PathLike | None = None) -> Path:
    """torchvision's layout: `<root>/MNIST/raw`."""
    return resolve_root(root) / "MNIST" / "raw"


def mnist_status(root: str | os.PathLike | None = None) -> str | None:
    """Cheap check (existence and sizes only): None when the four files look right, else why not."""
    raw = raw_folder(root)
    for name, info in MNIST_FILES.items():
        path = raw / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != info.size:
            return f"{path} has {path.stat().st_size} bytes, expected {info.size}"
    return None


def chosen_dataset(environ: MutableMapping[str, str] | None = None) -> str:
    """$CONVCOURSE_DATASET, lower-cased ("" when unset)."""
    return (os.environ if environ is None else environ).get(DATASET_ENV, "").strip().lower()


def select_dataset(environ: MutableMapping[str, str] | None = None) -> str:
    """For test sessions: keep an explicit $CONVCOURSE_DATASET, else use MNIST when its files are
    present, else set CONVCOURSE_DATASET=digits in `environ`. Returns a one-line announcement."""
    env = os.environ if environ is None else environ
    chosen = chosen_dataset(env)
    if chosen:
        return f"convcourse: dataset {chosen!r} ({DATASET_ENV} was set by the caller)"
    root = resolve_root(None, env)
    problem = mnist_status(root)
    if problem is None:
        env[DATASET_ENV] = "mnist"
        return f"convcourse: dataset 'mnist': real MNIST from {raw_folder(root)}"
    env[DATASET_ENV] = "digits"
    return (
        f"convcourse: !!! REAL MNIST NOT FOUND ({problem}; set {DATA_ENV}): this session uses the "
        f"scikit-learn DIGITS stand-in, {DATASET_ENV}=digits !!!"
    )


def missing_message(raw: Path, cause: BaseException | None = None) -> str:
    """What to do when the four files are not in ``raw``: their names and the three ways to get them."""
    names = "\n".join(f"  {raw / name}" for name in MNIST_FILES)
    why = f"\nThe download failed: {cause}" if cause is not None else ""
    return (
        f"MNIST is not in {raw}. These four files are needed there:\n{names}\n"
        "Do one of: (1) run load_mnist() once with network access (download=True, the default), "
        f"(2) copy the four unpacked files into {raw}, or (3) set {DATA_ENV} to a folder "
        "that holds MNIST/raw/ with them." + why
    )
