"""Shared fixtures: the session's dataset (chosen by the root conftest), a tiny one for training tests, the browser."""

from pathlib import Path

import pytest
from browser import ensure_chromium

from convcourse.data import MNISTData, load_mnist


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium for the browser tests (installed on first use; see tests/browser.py)."""
    return ensure_chromium()


@pytest.fixture(scope="session")
def data() -> MNISTData:
    """The dataset this session runs on: real MNIST, or the announced digits stand-in."""
    return load_mnist()


@pytest.fixture(scope="session")
def tiny_data() -> MNISTData:
    """scikit-learn's digits at 28x28 (1297/250/250): small enough to train on in a second."""
    return load_mnist(dataset="digits")


@pytest.fixture(scope="session")
def tiny_course_built(tmp_path_factory):
    """The tiny nbgrader course (tests/tiny_course.py) built once: copy it (graded_course.copy_course) before changing it."""
    from tiny_course import make_course

    return make_course(tmp_path_factory.mktemp("tiny-built") / "course")
