"""Write source/<assignment>/<assignment>.ipynb from the cell lists in authoring/<assignment>.py.

    make notebooks                                        # build every notebook, then regenerate release/
    .venv/bin/python -m authoring.build [ASSIGNMENT...]   # build, running each notebook once
    .venv/bin/python -m authoring.build --no-run          # build only (outputs left empty)

Source notebooks are committed without outputs, except the cells marked ``# NBVAL_CHECK_OUTPUT``:
their output is nbval's reference, so the build runs the notebook (with the test suite's training
budget) and keeps exactly those outputs. ``make notebooks`` regenerates release/ afterwards
(``python -m convcourse.grading release``). A notebook whose cell fails is not written: the command
ends with one ``error:`` message naming the cell and its error, and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from authoring.cells import build_notebook
from convcourse.budget import BUDGET_ENV, TEST_STEPS
from convcourse.grading.course import ASSIGNMENTS

ROOT = Path(__file__).resolve().parent.parent
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
RUN_ENV = {BUDGET_ENV: str(TEST_STEPS)}  # the same budget the test suite gives nbval


class BuildError(RuntimeError):
    """A notebook's cell failed while it was run for its checked outputs (the message names the cell)."""


def build(assignment: str) -> nbformat.NotebookNode:
    """The source notebook of ``assignment``, without outputs."""
    content = importlib.import_module(f"authoring.{assignment}")
    return build_notebook(content.PREFIX, content.CELLS)


def run_and_keep_checked_outputs(notebook: nbformat.NotebookNode, folder: Path, timeout: int = 600) -> None:
    """Execute ``notebook`` in ``folder``; keep only the outputs of cells marked for nbval to check."""
    executed = nbformat.from_dict(nbformat.from_dict(notebook))  # a copy: nbclient writes outputs into it
    old_env = {key: os.environ.get(key) for key in RUN_ENV}
    os.environ.update({key: os.environ.get(key, value) for key, value in RUN_ENV.items()})
    running: dict[str, str] = {}
    client = NotebookClient(executed, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}},
                            on_cell_start=lambda cell, cell_index: running.update(cell=_describe(cell, cell_index)))
    try:
        client.execute()
    except CellExecutionError as error:
        raise BuildError(f"cell {running.get('cell', '?')} raised {error.ename}: {error.evalue}") from error
    except (CellTimeoutError, DeadKernelError) as error:
        raise BuildError(f"cell {running.get('cell', '?')}: {str(error).strip().splitlines()[0]}") from error
    finally:
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for cell, ran in zip(notebook.cells, executed.cells):
        if cell.cell_type == "code" and CHECK_MARK in cell.source:
            cell.outputs = [_strip(output) for output in ran.outputs]
            cell.execution_count = ran.execution_count  # nbval ignores outputs of cells that never ran


def _describe(cell: nbformat.NotebookNode, index: int) -> str:
    """A cell as an author finds it: its id, position and first line."""
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return f"{cell.get('id', index)} (#{index + 1}: {first[:60]})"


def _strip(output: nbformat.NotebookNode) -> nbformat.NotebookNode:
    output.pop("execution_count", None)
    if "metadata" in output:
        output["metadata"] = {}
    if output.get("output_type") == "execute_result":
        output["execution_count"] = None
    return output


def main(argv: list[str] | None = None) -> int:
    """Build (and by default run) the notebooks named on the command line, or all of them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                        help=f"any of {', '.join(ASSIGNMENTS)} (default: all)")
    parser.add_argument("--no-run", action="store_true", help="skip running the notebooks (no checked outputs)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.assignments) - set(ASSIGNMENTS))
    if unknown:
        parser.error(f"unknown assignment(s) {', '.join(unknown)}; choose from {', '.join(ASSIGNMENTS)}")
    for assignment in args.assignments or ASSIGNMENTS:
        folder = ROOT / "source" / assignment
        folder.mkdir(parents=True, exist_ok=True)
        notebook = build(assignment)
        if not args.no_run:
            try:
                run_and_keep_checked_outputs(notebook, folder)
            except BuildError as error:
                print(f"error: {assignment} not written: {error}", file=sys.stderr)
                return 2
        path = folder / f"{assignment}.ipynb"
        nbformat.write(notebook, path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
