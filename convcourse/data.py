"""MNIST as preloaded tensors: torchvision's files, checked, split 50k/10k/10k, plus a tiny stand-in.

The four raw idx files are read straight into uint8 tensors (no per-image PIL conversion), so all
70,000 images load in a fraction of a second once they are on disk. ``torchvision.datasets.MNIST``
is used only to download the files when they are missing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import TensorDataset

from convcourse.mnist_files import (
    DATASETS,
    MNIST_FILES,
    FileInfo,
    chosen_dataset,
    default_root,
    missing_message,
    mnist_status,
    raw_folder,
    resolve_root,
    select_dataset,
)

__all__ = [
    "MNIST_FILES",
    "MNISTCorruptError",
    "MNISTData",
    "MNISTMissingError",
    "Split",
    "Batches",
    "default_root",
    "resolve_root",
    "raw_folder",
    "mnist_status",
    "select_dataset",
    "verify_mnist",
    "iterate_batches",
    "load_mnist",
    "load_digits28",
]


TRAIN_SIZE = 50_000  # the rest of the 60,000 training images is the validation split
DIGITS_SPLIT = (1297, 250, 250)  # 1,797 scikit-learn digits


class MNISTMissingError(FileNotFoundError):
    """The MNIST files are not on disk and could not be downloaded."""


class MNISTCorruptError(ValueError):
    """An MNIST file exists but has the wrong size, header or checksum."""


def _download(root: Path) -> None:
    """Fetch the four files with torchvision; any failure becomes MNISTMissingError."""
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    print(f"convcourse: MNIST not found in {raw}; downloading it with torchvision ...", flush=True)
    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError when offline
        raise MNISTMissingError(missing_message(raw, err)) from err


# ----------------------------------------------------------------------------- reading and checking

# (path, size, mtime_ns, inode) already hashed in this process: checksums cost ~0.1 s per load.
_VERIFIED: set[tuple[str, int, int, int]] = set()


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def _read_idx(path: Path, info: FileInfo, *, check_md5: bool) -> torch.Tensor:
    """Read one idx file into a uint8 tensor, refusing wrong sizes, headers or checksums."""
    size = path.stat().st_size
    if size != info.size:
        raise MNISTCorruptError(
            f"{path} is corrupt or truncated: {size} bytes, expected {info.size}. "
            "Delete it and load again (or copy a good file there)."
        )
    buf = bytearray(size)
    with open(path, "rb") as f:
        if f.readinto(buf) != size:
            raise MNISTCorruptError(f"{path} changed while it was read; expected {info.size} bytes")
    key = _stat_key(path)
    if check_md5 and key not in _VERIFIED:
        digest = hashlib.md5(buf).hexdigest()
        if digest != info.md5:
            raise MNISTCorruptError(
                f"{path} is corrupt: md5 {digest}, expected {info.md5}. "
                "Delete it and load again (or copy a good file there)."
            )
        _VERIFIED.add(key)
    magic = int.from_bytes(buf[0:4], "big")
    count = int.from_bytes(buf[4:8], "big")
    if magic != info.magic or count != info.count:
        raise MNISTCorruptError(
            f"{path} has a bad idx header (magic {magic}, {count} items); "
            f"expected magic {info.magic} and {info.count} items"
        )
    header = 16 if info.magic == 2051 else 8
    data = torch.frombuffer(buf, dtype=torch.uint8, offset=header)
    if info.magic == 2051:
        rows, cols = int.from_bytes(buf[8:12], "big"), int.from_bytes(buf[12:16], "big")
        if (rows, cols) != (28, 28):
            raise MNISTCorruptError(f"{path} holds {rows}x{cols} images, expected 28x28")
        return data.view(count, 1, 28, 28)
    if int(data.max()) > 9:
        raise MNISTCorruptError(f"{path} holds a label above 9")
    return data


def verify_mnist(root: str | os.PathLike | None = None, *, check_md5: bool = True) -> Path:
    """Check the four files (size, header, md5); return the raw folder or raise a clear error."""
    raw = raw_folder(root)
    if any(not (raw / name).is_file() for name in MNIST_FILES):
        raise MNISTMissingError(missing_message(raw))
    for name, info in MNIST_FILES.items():
        _read_idx(raw / name, info, check_md5=check_md5)
    return raw


# ----------------------------------------------------------------------------- tensors and batches


class Batches:
    """Re-iterable mini-batches over preloaded tensors; `len()` is the number of batches."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets: lengths must match")
        self.images, self.targets = images, targets
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator, self.drop_last = generator, drop_last

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, bs = len(self.images), self.batch_size
        # A fresh permutation per pass, drawn from `generator` so a seed fixes the order.
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, len(self) * bs, bs):
            if order is None:  # contiguous slices are views: no copy
                yield self.images[start : start + bs], self.targets[start : start + bs]
            else:
                idx = order[start : start + bs]
                yield self.images[idx], self.targets[idx]


def iterate_batches(
    images: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Batches:
    """Mini-batches `(images, targets)` over tensors; shuffled with `generator` when asked."""
    return Batches(images, targets, batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)


@dataclass
class Split:
    """One split: images (N, 1, H, W) float32 in [0, 1] and targets (N,) int64."""

    images: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        if self.targets.ndim != 1 or len(self.targets) != len(self.images):
            raise ValueError(
                f"targets must be (N,) with N={len(self.images)}, got shape {tuple(self.targets.shape)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    def dataset(self) -> TensorDataset:
        """The split as a `TensorDataset`, for the classic `DataLoader` API."""
        return TensorDataset(self.images, self.targets)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Batches:
        """Fast mini-batches over this split (see `iterate_batches`)."""
        return Batches(self.images, self.targets, batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)


@dataclass
class MNISTData:
    """The three splits; `source` is "mnist" or "digits", `root` the raw folder read (MNIST only)."""

    train: Split
    valid: Split
    test: Split
    source: str
    root: Path | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes (10 digits)."""
        return 10

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.to(torch.float32).div_(255.0)


def load_digits28(*, seed: int = 0, announce: bool = True) -> MNISTData:
    """scikit-learn's 1,797 8x8 digits, resized to 28x28 and split 1297/250/250 (a test stand-in)."""
    from sklearn.datasets import load_digits  # test dependency: imported only when asked for

    if announce:
        print(
            "convcourse: using the DIGITS stand-in (scikit-learn's 1,797 8x8 digits resized to 28x28), "
            "NOT MNIST: selected by dataset='digits' / CONVCOURSE_DATASET=digits",
            flush=True,
        )
    bunch = load_digits()
    small = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # values are 0..16
    images = torch.nn.functional.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False)
    images = images.clamp_(0.0, 1.0).contiguous()
    targets = torch.as_tensor(bunch.target, dtype=torch.int64)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_train, n_valid, _ = DIGITS_SPLIT
    parts = order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]
    train, valid, test = (Split(images[p], targets[p]) for p in parts)
    return MNISTData(train, valid, test, source="digits")


def load_mnist(
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    dataset: str | None = None,
    check_md5: bool = True,
) -> MNISTData:
    """MNIST split 50,000 train / 10,000 valid (train images 50,000-59,999) / 10,000 test.

    `root`: argument, else $CONVCOURSE_DATA, else `default_root()`; it holds `MNIST/raw/`.
    Files are downloaded only when missing (and `download` is true). `dataset=None` reads
    $CONVCOURSE_DATASET: "mnist" (default) or "digits" (the announced scikit-learn stand-in).
    """
    choice = (dataset if dataset is not None else chosen_dataset() or "mnist").strip().lower()
    if choice == "digits":
        return load_digits28()
    if choice != "mnist":
        raise ValueError(f"dataset must be {' or '.join(map(repr, DATASETS))}, got {choice!r}")

    base = resolve_root(root)
    raw = base / "MNIST" / "raw"
    if any(not (raw / name).is_file() for name in MNIST_FILES):
        if not download:
            raise MNISTMissingError(missing_message(raw))
        _download(base)
        if any(not (raw / name).is_file() for name in MNIST_FILES):
            raise MNISTMissingError(missing_message(raw))

    tensors = {name: _read_idx(raw / name, info, check_md5=check_md5) for name, info in MNIST_FILES.items()}
    train_x = _to_float(tensors["train-images-idx3-ubyte"])
    train_y = tensors["train-labels-idx1-ubyte"].long()
    test_x = _to_float(tensors["t10k-images-idx3-ubyte"])
    test_y = tensors["t10k-labels-idx1-ubyte"].long()
    return MNISTData(
        train=Split(train_x[:TRAIN_SIZE], train_y[:TRAIN_SIZE]),
        valid=Split(train_x[TRAIN_SIZE:], train_y[TRAIN_SIZE:]),
        test=Split(test_x, test_y),
        source="mnist",
        root=raw,
    )
