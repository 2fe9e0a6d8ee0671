"""Session-wide dataset choice for tests/ and the nbval notebooks in source/.

Runs at import time, before any test or notebook kernel starts, so kernels inherit the
choice through os.environ: real MNIST when its files are found ($CONVCOURSE_DATA or the
per-user cache), otherwise CONVCOURSE_DATASET=digits, announced in the header and summary.
"""

from convcourse.data import select_dataset

DATASET_ANNOUNCEMENT = select_dataset()


def pytest_report_header(config):
    return DATASET_ANNOUNCEMENT


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(DATASET_ANNOUNCEMENT)
