"""Check a notebook before handing it in, the way the grader will run it: ``python -m convcourse check NOTEBOOK``.

The same from a notebook cell: ``from convcourse.check import check; check()`` (it checks the notebook
the kernel belongs to, as last saved). A copy is run, never the file itself: a fresh kernel, every cell
in order, the grading training budget (:data:`convcourse.budget.GRADING_STEPS`) and the grader's time
limits, with every locked cell (tests included) put back as released, as nbgrader does. It prints each
test cell passed or failed with its message, and warns about what would cost points without a test
saying so: a renamed file, edited or deleted locked cells, errors outside the tests, a kernel that
dies or a cell that runs too long. The released cells come from the package
(``convcourse/released_cells.json``, written by ``make release`` from the student notebooks): it holds
no hidden test, so the grade can still be lower than what the visible tests promise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from convcourse.budget import BUDGET_ENV, GRADING_STEPS, step_budget

CELL_TIMEOUT = 120  # seconds: the grader's Execute.timeout (nbgrader_config.py)
NOTEBOOK_TIMEOUT = 600  # seconds: the grader's GradingExecute.notebook_timeout
PROG = "python -m convcourse check"


class CheckError(ValueError):
    """The file cannot be checked (not a notebook, not one of the course's); the message says why."""


@dataclass
class TestResult:
    """One test cell as the check ran it."""

    grade_id: str
    title: str
    points: float
    passed: bool
    message: str = ""  # the failure as the student sees it: "CheckFailed: ..." (empty when passed)


@dataclass
class Report:
    """What a check found: the assignment, each test cell's result, and warnings."""

    assignment: str
    tests: list[TestResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # habits worth changing, unfinished answers: no warning

    @property
    def ok(self) -> bool:
        """Every visible test passed and nothing was worth a warning."""
        return all(t.passed for t in self.tests) and not self.warnings


def released() -> dict:
    """The released notebooks' nbgrader cells shipped with the package, by assignment."""
    text = resources.files("convcourse").joinpath("released_cells.json").read_text(encoding="utf-8")
    return json.loads(text)["assignments"]


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def identify(nb, shipped: dict) -> str:
    """The assignment whose cells the notebook has most of (by nbgrader cell id), or CheckError."""
    ids = {_meta(cell).get("grade_id") for cell in nb.cells}
    counts = {name: len(ids & {c["grade_id"] for c in data["cells"]}) for name, data in shipped.items()}
    best = max(counts, key=counts.get, default=None)
    if not best or not counts[best]:
        raise CheckError(f"this notebook has no cell of the course's assignments ({', '.join(shipped)}): "
                         "check the notebook you downloaded from the course, not a new one")
    return best


def restore(nb, cells: list[dict]) -> list[str]:
    """Put every released locked cell back into ``nb`` (in place) as the grader does; warnings for what changed."""
    import nbformat

    problems = []
    position = {_meta(cell).get("grade_id"): i for i, cell in enumerate(nb.cells) if _meta(cell).get("grade_id")}
    for index, released_cell in enumerate(cells):
        if not released_cell["locked"] or released_cell["solution"]:
            continue
        grade_id, where = released_cell["grade_id"], released_cell["title"] or "the notebook"
        if grade_id not in position:  # deleted: back after the nearest earlier released cell still present
            anchor = max((position[c["grade_id"]] for c in cells[:index] if c["grade_id"] in position), default=-1)
            new = (nbformat.v4.new_code_cell if released_cell["cell_type"] == "code" else nbformat.v4.new_markdown_cell)(
                released_cell["source"], metadata={"nbgrader": {"grade_id": grade_id, "locked": True}})
            nb.cells.insert(anchor + 1, new)
            position = {_meta(cell).get("grade_id"): i for i, cell in enumerate(nb.cells) if _meta(cell).get("grade_id")}
            problems.append(f"a locked cell was deleted ({grade_id}, in {where}): the grader puts it back")
            continue
        cell = nb.cells[position[grade_id]]
        if cell.source.strip() != released_cell["source"].strip() or cell.cell_type != released_cell["cell_type"]:
            problems.append(f"a locked cell was edited ({grade_id}, in {where}): the grader uses the released "
                            "version and ignores your edit")
            cell.source, cell.cell_type = released_cell["source"], released_cell["cell_type"]
    return problems


def _error(cell) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def run(nb, folder: Path, *, cell_timeout: int = CELL_TIMEOUT, notebook_timeout: int = NOTEBOOK_TIMEOUT,
        kernel_name: str = "python3") -> list[str]:
    """Run ``nb`` (in place) in a fresh kernel started in ``folder``, cell by cell; warnings about the run."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(nb, timeout=cell_timeout, interrupt_on_timeout=True, allow_errors=True,
                            kernel_name=kernel_name, resources={"metadata": {"path": str(folder)}})
    env = {**os.environ, BUDGET_ENV: str(GRADING_STEPS)}  # the grader's budget; check() inside it does nothing
    problems, deadline = [], time.monotonic() + notebook_timeout
    # The kernel's own stderr is its launcher's chatter (cells' output comes by message): not the student's business.
    with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if time.monotonic() > deadline:
                problems.append(f"the notebook ran longer than the grader allows ({notebook_timeout} s): it stops "
                                f"before cell {index + 1}, and tests after that count as not run")
                break
            started = time.monotonic()
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                problems.append(f"the kernel died in cell {index + 1} (an exit, a crash or too much memory): the grader "
                                "stops there, and tests after it count as not run")
                break
            except CellTimeoutError:
                problems.append(f"cell {index + 1} ran longer than {cell_timeout} s and could not be interrupted: the "
                                "grader stops there")
                break
            if time.monotonic() - started >= cell_timeout:
                problems.append(f"cell {index + 1} ran longer than {cell_timeout} s: the grader interrupts it there")
    return problems


def results(nb, cells: list[dict]) -> tuple[list[TestResult], list[str], list[str]]:
    """Each released test cell's outcome in the run notebook, warnings for errors outside tests, and notes."""
    by_id = {c["grade_id"]: c for c in cells}
    tests, problems, notes = [], [], []
    unanswered = False  # after an answer not written yet, a NameError is its consequence, not a new problem
    for index, cell in enumerate(nb.cells):
        grade_id, error = _meta(cell).get("grade_id"), _error(cell)
        info = by_id.get(grade_id)
        stderr = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")
        streams = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        notes += [line.split("HabitWarning: ", 1)[1] for line in streams.splitlines() if "HabitWarning: " in line]
        if info and info["grade"] and not info["solution"]:
            if info["cell_type"] == "code":  # nbgrader scores 0 for an error and for anything printed to stderr
                message = f"{error['ename']}: {error['evalue']}" if error else \
                    f"printed to stderr, which the grader scores 0: {stderr.strip()[:500]}" if stderr.strip() else ""
                tests.append(TestResult(grade_id, info["title"], info["points"], not message, message))
        elif error and (error["ename"] == "NotImplementedError" or unanswered and error["ename"] == "NameError"):
            unanswered = True  # an answer not written yet, or a cell that needs one
            notes.append(f"not answered yet: {grade_id} (in {info['title']})" if info and info["solution"] else
                         f"cell {index + 1} needs an answer that is not written yet")
        elif error:
            first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")[:40]
            problems.append(f"cell {index + 1} ({first}) raised {error['ename']}: {error['evalue']}".strip() +
                            " (the grader runs on, but tests that need this cell fail)")
    return tests, problems, notes


def check_file(path: str | Path, *, kernel_name: str = "python3") -> Report:
    """Check the notebook at ``path`` (never changed); CheckError when it is not a course notebook."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise CheckError(f"no notebook at {path}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the student's to fix, with the reason
        raise CheckError(f"{path} is not a notebook nbformat can read ({type(error).__name__}: {error})") from None
    shipped = released()
    assignment = identify(nb, shipped)
    report = Report(assignment)
    expected = shipped[assignment]["notebook"]
    if path.name != expected:
        report.warnings.append(f"the file is named {path.name}, but the grader only grades {expected}: rename it "
                               "before handing it in, or it counts as missing")
    cells = shipped[assignment]["cells"]
    report.warnings += restore(nb, cells)
    report.warnings += run(nb, path.resolve().parent, kernel_name=kernel_name)
    report.tests, problems, report.notes = results(nb, cells)
    report.warnings += problems
    return report


def render(report: Report, path: str | Path) -> str:
    """The report as the student reads it."""
    lines = [f"{path}: {report.assignment}, run as the grader will (fresh kernel, all cells, "
             f"a training budget of {GRADING_STEPS} steps)"]
    for test in report.tests:
        lines.append(f"  {'passed' if test.passed else 'FAILED'}  {test.grade_id} ({test.points:g} point"
                     f"{'s' * (test.points != 1)}) in {test.title}")
        lines += [f"          {line}" for line in test.message.splitlines()]
    got, top = sum(t.points for t in report.tests if t.passed), sum(t.points for t in report.tests)
    lines.append(f"visible tests: {sum(t.passed for t in report.tests)} of {len(report.tests)} passed, {got:g} of "
                 f"{top:g} points; the grader also runs hidden tests, and written answers are graded by hand")
    lines += [f"warning: {w}" for w in report.warnings] + [f"note: {n}" for n in report.notes]
    return "\n".join(lines)


def current_notebook() -> Path:
    """The notebook this kernel belongs to (JupyterLab tells its kernels), or CheckError."""
    path = os.environ.get("JPY_SESSION_NAME", "")
    if path.endswith(".ipynb") and Path(path).is_file():
        return Path(path)
    raise CheckError("cannot tell which notebook this kernel belongs to: pass its name, e.g. "
                     "check('manual_convolution.ipynb')")


def check(notebook: str | Path | None = None) -> Report | None:
    """From a notebook cell: check ``notebook`` (default: this one, as last saved) and print the report."""
    if step_budget() is not None:  # a graded kernel, or the check's own run of this cell: never recurse
        print(f"check() does nothing here: a training budget is set ({BUDGET_ENV}), as in the grader's run")
        return None
    path = Path(notebook) if notebook is not None else current_notebook()
    print(f"checking {path} as last saved (save it first: Ctrl+S); this runs every cell once more...", flush=True)
    report = check_file(path)
    print(render(report, path))
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m convcourse check NOTEBOOK``: 0 when all is well, 1 with failures or warnings, 2 on bad input."""
    parser = argparse.ArgumentParser(prog=PROG, description="Run a copy of a course notebook as the grader will "
                                     "and report each test cell (no nbgrader needed).")
    parser.add_argument("notebook", type=Path, help="the notebook to check, e.g. manual_convolution.ipynb")
    args = parser.parse_args(argv)
    try:
        report = check_file(args.notebook)
    except CheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(report, args.notebook))
    return 0 if report.ok else 1
