"""convcourse.data: splits, dtypes, offline and corrupt files, the digits stand-in, batches."""

import os
import shutil
import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torch.utils.data import DataLoader

from convcourse import data as D
from convcourse.data import (
    MNIST_FILES,
    MNISTCorruptError,
    MNISTMissingError,
    iterate_batches,
    load_mnist,
    select_dataset,
)

FILES = list(MNIST_FILES)
needs_mnist = pytest.mark.skipif(
    os.environ.get("CONVCOURSE_DATASET") != "mnist", reason="real MNIST is not available in this session"
)


def _real_raw() -> Path:
    return D.raw_folder()


def _mirror(tmp_path: Path, copy: str) -> Path:
    """A data root whose raw folder links to the real files, except `copy`, which is a real copy."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        if name == copy:
            shutil.copyfile(_real_raw() / name, raw / name)
        else:
            (raw / name).symlink_to(_real_raw() / name)
    return tmp_path


def _fake_mnist(root: Path) -> Path:
    """All-black files with the right sizes and idx headers (their md5s are wrong)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, info in MNIST_FILES.items():
        header = info.magic.to_bytes(4, "big") + info.count.to_bytes(4, "big")
        header += (28).to_bytes(4, "big") * 2 if info.magic == 2051 else b""
        (raw / name).write_bytes(header + bytes(info.size - len(header)))
    return raw


def test_splits_shapes_dtypes_and_range(data):
    sizes = (50_000, 10_000, 10_000) if data.source == "mnist" else D.DIGITS_SPLIT
    assert (len(data.train), len(data.valid), len(data.test)) == sizes
    assert data.image_shape == (1, 28, 28) and data.num_classes == 10
    for split in (data.train, data.valid, data.test):
        assert split.images.dtype == torch.float32 and split.images.shape[1:] == (1, 28, 28)
        assert split.targets.dtype == torch.int64
        assert 0.0 <= float(split.images.min()) and float(split.images.max()) <= 1.0
        assert float(split.images.max()) > 0.9  # really scaled to [0, 1], not left at 0..1/255
        assert set(split.targets.unique().tolist()) == set(range(10))


@needs_mnist
def test_real_mnist_labels_and_validation_slice(data):
    assert data.train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    # Validation must be training images 50,000-59,999: compare with the raw bytes directly.
    labels = (data.root / "train-labels-idx1-ubyte").read_bytes()[8:]
    assert data.valid.targets[:20].tolist() == list(labels[50_000:50_020])
    with open(data.root / "train-images-idx3-ubyte", "rb") as f:
        f.seek(16 + 50_000 * 784)
        first_valid = torch.tensor(list(f.read(784)), dtype=torch.float32).view(1, 28, 28) / 255
    assert torch.equal(data.valid.images[0], first_valid)


@needs_mnist
def test_loading_is_fast():
    load_mnist()  # checksums are verified once per process; this run pays them
    start = time.perf_counter()
    load_mnist()
    seconds = time.perf_counter() - start
    print(f"load_mnist: 70,000 images in {seconds:.3f} s")
    assert seconds < 3.0, f"loading took {seconds:.2f} s; it should be well under a second (no per-image PIL)"


def test_missing_offline_names_folder_and_files(tmp_path):
    with pytest.raises(MNISTMissingError) as info:
        load_mnist(tmp_path, download=False, dataset="mnist")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "MNIST" / "raw") in message and "CONVCOURSE_DATA" in message
    assert all(name in message for name in FILES)


def test_failed_download_becomes_missing_error(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def no_network(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz", URLError("Name or service not known"))

    monkeypatch.setattr(MNIST, "download", no_network)
    with pytest.raises(MNISTMissingError) as info:
        load_mnist(tmp_path, download=True, dataset="mnist")
    message = str(info.value)
    assert all(name in message for name in FILES) and "download failed" in message


def test_download_only_when_missing(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    calls = []
    monkeypatch.setattr(MNIST, "download", lambda self: calls.append(self.root))
    with pytest.raises(MNISTMissingError):  # the fake download fetches nothing
        load_mnist(tmp_path, dataset="mnist")
    assert len(calls) == 1, "missing files should trigger one download"
    _fake_mnist(tmp_path)
    load_mnist(tmp_path, dataset="mnist", check_md5=False)
    assert len(calls) == 1, "files on disk must not be downloaded again"


@pytest.mark.parametrize("name", ["t10k-labels-idx1-ubyte", "train-images-idx3-ubyte"])
@needs_mnist
def test_truncated_file_is_refused(tmp_path, name):
    root = _mirror(tmp_path, copy=name)
    path = root / "MNIST" / "raw" / name
    with open(path, "r+b") as f:
        f.truncate(MNIST_FILES[name].size - 100)
    with pytest.raises(MNISTCorruptError, match=name) as info:
        load_mnist(root, dataset="mnist")
    assert "truncated" in str(info.value) and str(MNIST_FILES[name].size) in str(info.value)


@needs_mnist
def test_flipped_byte_fails_the_checksum(tmp_path):
    name = "t10k-labels-idx1-ubyte"
    root = _mirror(tmp_path, copy=name)
    load_mnist(root, dataset="mnist")  # good copy: passes and is remembered as verified
    path = root / "MNIST" / "raw" / name
    raw = bytearray(path.read_bytes())
    raw[5000] = (raw[5000] + 1) % 10  # still a valid label, so only the checksum can notice
    path.write_bytes(bytes(raw))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # coarse-clock filesystems
    with pytest.raises(MNISTCorruptError, match=f"{name}.*md5"):
        load_mnist(root, dataset="mnist")


def test_bad_header_is_refused_even_without_checksum(tmp_path):
    raw = _fake_mnist(tmp_path)
    loaded = load_mnist(tmp_path, dataset="mnist", check_md5=False)  # right sizes and headers: readable
    assert len(loaded.train) == 50_000 and float(loaded.test.images.max()) == 0.0
    with pytest.raises(MNISTCorruptError, match="md5"):
        load_mnist(tmp_path, dataset="mnist")
    path = raw / "t10k-images-idx3-ubyte"
    body = bytearray(path.read_bytes())
    body[3] = 0x01  # magic 2049: a label file where images belong
    path.write_bytes(bytes(body))
    with pytest.raises(MNISTCorruptError, match="t10k-images-idx3-ubyte.*header"):
        load_mnist(tmp_path, dataset="mnist", check_md5=False)


def test_digits_stand_in_is_announced_and_deterministic(capsys):
    first = load_mnist(dataset="digits")
    assert "DIGITS" in capsys.readouterr().out
    second = load_mnist(dataset="digits")
    assert first.source == "digits" and (len(first.train), len(first.valid), len(first.test)) == (1297, 250, 250)
    assert torch.equal(first.train.images, second.train.images) and torch.equal(first.test.targets, second.test.targets)
    assert first.image_shape == (1, 28, 28) and float(first.train.images.max()) == 1.0


def test_dataset_choice_from_environment(monkeypatch, capsys):
    monkeypatch.setenv("CONVCOURSE_DATASET", "digits")
    assert load_mnist().source == "digits"
    monkeypatch.setenv("CONVCOURSE_DATASET", "fashion")
    with pytest.raises(ValueError, match="'mnist' or 'digits'"):
        load_mnist()


def test_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVCOURSE_DATA", str(tmp_path))
    assert D.resolve_root() == tmp_path and D.raw_folder() == tmp_path / "MNIST" / "raw"
    assert D.resolve_root("/elsewhere") == Path("/elsewhere")
    monkeypatch.delenv("CONVCOURSE_DATA")
    assert D.resolve_root() == D.default_root() and D.default_root().name == "convcourse"


def test_select_dataset_falls_back_loudly(tmp_path):
    env = {"CONVCOURSE_DATA": str(tmp_path)}
    line = select_dataset(env)
    assert env["CONVCOURSE_DATASET"] == "digits" and "DIGITS" in line and "NOT FOUND" in line
    env = {"CONVCOURSE_DATA": str(tmp_path), "CONVCOURSE_DATASET": "mnist"}
    select_dataset(env)
    assert env["CONVCOURSE_DATASET"] == "mnist", "an explicit choice is kept"


def test_batches_cover_everything_in_order_or_shuffled():
    images, targets = torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10)
    plain = iterate_batches(images, targets, 4)
    assert len(plain) == 3 and [len(y) for _, y in plain] == [4, 4, 2]
    assert torch.cat([y for _, y in plain]).tolist() == list(range(10))
    dropped = iterate_batches(images, targets, 4, drop_last=True)
    assert len(dropped) == 2 and [len(y) for _, y in dropped] == [4, 4]

    def order(seed):
        batches = iterate_batches(images, targets, 3, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return [int(v) for x, y in batches for v in y if torch.equal(x.view(-1), y.float())]

    assert sorted(order(0)) == list(range(10)) and order(0) == order(0) and order(0) != list(range(10))


def test_split_dataset_and_batch_errors(tiny_data):
    loader = DataLoader(tiny_data.valid.dataset(), batch_size=100)
    x, y = next(iter(loader))
    assert x.shape == (100, 1, 28, 28) and torch.equal(y, tiny_data.valid.targets[:100])
    assert len(tiny_data.train.batches(64)) == -(-1297 // 64)
    with pytest.raises(ValueError, match="batch_size"):
        tiny_data.train.batches(0)
    with pytest.raises(ValueError, match="lengths must match"):
        iterate_batches(torch.zeros(3, 1, 2, 2), torch.zeros(2), 1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        D.Split(torch.zeros(3, 28, 28), torch.zeros(3, dtype=torch.int64))
