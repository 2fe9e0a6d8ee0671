"""Session-wide settings for tests/ and the nbval notebooks in source/.

Runs at import time, before any test or notebook kernel starts, so kernels inherit both through
os.environ:

* the dataset: real MNIST when its files are found ($CONVCOURSE_DATA or the per-user cache),
  otherwise CONVCOURSE_DATASET=digits, announced in the header and summary;
* the training budget: $CONVCOURSE_MAX_STEPS if set, else convcourse.budget.TEST_STEPS, so the
  notebooks' training runs take seconds (fit says so in its output).
"""
import os

from convcourse.budget import BUDGET_ENV, TEST_STEPS
from convcourse.mnist_files import select_dataset

if not os.environ.get(BUDGET_ENV, "").strip():
    os.environ[BUDGET_ENV] = str(TEST_STEPS)
DATASET_ANNOUNCEMENT = select_dataset()


def pytest_report_header(config):
    return [DATASET_ANNOUNCEMENT, f"convcourse: training budget {BUDGET_ENV}={os.environ[BUDGET_ENV]}"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(DATASET_ANNOUNCEMENT)
