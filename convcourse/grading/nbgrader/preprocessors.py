"""The nbgrader pieces convcourse autogrades with: a sandboxed kernel and a bounded, tamper-aware Execute.

``nbgrader_config.py`` puts :class:`GradingExecute` in place of nbgrader's ``Execute`` and
:class:`RestoreCells` in place of ``OverwriteCells``, so plain ``nbgrader autograde`` gets all of this:

* every kernel starts through :mod:`convcourse.grading.sandbox` (:class:`SandboxedKernelManager`), in a
  scratch copy of the notebook's folder, never in the course itself;
* a per-cell time limit (nbgrader's ``Execute.timeout``, interrupting the kernel) and a per-notebook
  limit (``GradingExecute.notebook_timeout``);
* a kernel that dies, exits or cannot be interrupted ends the run of that notebook: the cells not
  run get an error output, so a test that never ran can never count as passed, while the tests that
  ran before keep their points;
* output is capped per cell (a notebook that prints gigabytes cannot exhaust the grader's memory);
* before each autograded test cell :mod:`convcourse.grading.nbgrader.kernel_guard` restores builtins and the IPython
  machinery, and a one-time token printed by the test cell's last line proves it ran to the end.
"""
from __future__ import annotations

import ast
import math
import secrets
import time
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import CheckCellMetadata, Execute, OverwriteCells
from traitlets import Bool, Enum, Integer

from convcourse.budget import grading_env
from convcourse.grading import sandbox, settings
from convcourse.grading.course.folder import private_paths
from convcourse.grading.nbgrader import kernel_guard
from convcourse.grading.nbgrader.cell_metadata import CheckCellMetadataOnce
from convcourse.grading.nbgrader.feedback_page import FeedbackExporter
from convcourse.grading.nbgrader.kernel_manager import SandboxedKernelManager
from convcourse.grading.nbgrader.kernel_python import checkout_private_paths

GUARD_MODULE = kernel_guard.__name__  # imported by name inside the graded kernel
GUARD_TIMEOUT = 30  # seconds for the hidden restore step before a test cell


def configure_autograde(c: Any, root: Path, command: str = "") -> None:
    """Put convcourse's sandboxed preprocessors into nbgrader config ``c`` for the course at ``root``.

    The limits come from :mod:`convcourse.grading.settings` (its defaults, or the environment's
    values), unless ``c`` sets them itself: the course's own ``nbgrader_config.py`` has the last word.
    Graded kernels get the training budget (:func:`convcourse.budget.grading_budget`). For
    ``nbgrader autograde`` the sandbox is probed now and the command stops (exit status 1, with
    the reason) when it is unavailable and $CONVCOURSE_ALLOW_UNSANDBOXED does not allow going on.
    """
    from nbgrader.converters import Autograde

    for setting in settings.SETTINGS:
        section, _, name = setting.trait.partition(".")
        if setting.trait and name not in c[section]:
            c[section][name] = setting.read()
    traits = Autograde.class_traits()
    ours = {OverwriteCells: RestoreCells, Execute: GradingExecute, CheckCellMetadata: CheckCellMetadataOnce}
    c.Autograde.sanitize_preprocessors = [ours.get(pp, pp) for pp in traits["sanitize_preprocessors"].default()]
    c.Autograde.autograde_preprocessors = [ours.get(pp, pp) for pp in traits["autograde_preprocessors"].default()]
    # A grade round's jobs hide what Course.job_config says; plain `nbgrader autograde` asks the kernels' interpreter
    # which checkout to hide here (other commands start no graded kernel, and need not ask).
    hidden = [*private_paths(root), *(checkout_private_paths() if command == "autograde" else [])]
    c.SandboxedKernelManager.hide = list(dict.fromkeys(str(p) for p in hidden))
    # The training budget: only the graded kernels get it, never a student's own session.
    c.SandboxedKernelManager.kernel_env = grading_env()
    # The same HTML page, with Jinja's compiled templates kept for the process (and the jobs forked from it).
    c.GenerateFeedback.exporter_class = FeedbackExporter
    if command == "autograde":
        try:
            c.SandboxedKernelManager.isolate = sandbox.require_sandbox()
        except sandbox.SandboxUnavailable as error:
            raise SystemExit(str(error)) from None


def is_autograded_test(cell: NotebookNode) -> bool:
    """A code cell whose points the autograder decides (grade cell, not a solution cell)."""
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An nbformat error output: nbgrader gives a test cell carrying one zero points."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])


def with_token(source: str, token: str) -> str:
    """``source`` followed by a statement printing ``token``; a final expression stays the cell's value."""
    write = f"__import__('builtins').print({token!r})"  # returns None: adds no value to the cell
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython syntax (magics): the token goes last, the cell has no value anyway
        return f"{source}\n{write}"
    if not body or not isinstance(body[-1], ast.Expr):
        return f"{source}\n{write}"
    last = body[-1]
    lines = source.splitlines(keepends=True)
    head = "".join(lines[: last.lineno - 1]) + lines[last.lineno - 1][: last.col_offset]
    expression = ast.get_source_segment(source, last.value)
    return f"{head}__convcourse_value__ = ({expression})\n{write}\n__convcourse_value__"


def strip_token(cell: NotebookNode, token: str) -> bool:
    """Remove the token line from the cell's stdout; True if it was there."""
    found = False
    for output in cell.outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stdout" and token in output.text:
            found = True
            output.text = "".join(line for line in output.text.splitlines(keepends=True) if token not in line)
    cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("text") == "")]
    return found


class GradingExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel, a notebook time limit, dead-kernel handling and token checks."""

    notebook_timeout = Integer(600, help="seconds one notebook may run in total").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="output kept per cell; the rest is dropped").tag(config=True)
    integrity_checks = Bool(True, help="restore builtins/IPython before test cells and check they finish").tag(
        config=True)
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="a graded kernel is thrown away: killed, not asked to run its exit hooks").tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def reset_execution_trackers(self) -> None:
        """Per notebook: the deadline, the stop reason, the output counters."""
        super().reset_execution_trackers()
        self._deadline = time.monotonic() + self.notebook_timeout
        self._stopped: str | None = None
        self._guard_installed = False
        self._output_bytes: dict[int, int] = {}

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        remaining = max(1, math.ceil(self._deadline - time.monotonic()))  # so the interrupt lands after the deadline
        return remaining if timeout is None else min(timeout, remaining)

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> NotebookNode | None:
        """Keep errors always; drop other output beyond ``max_output_bytes`` per cell, saying so once."""
        if msg["msg_type"] == "error":
            return super().output(outs, msg, display_id, cell_index)
        size = len(str(msg.get("content", "")))
        used = self._output_bytes.get(cell_index, 0)
        self._output_bytes[cell_index] = used + size
        if used + size <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.max_output_bytes:
            note = NotebookNode(output_type="stream", name="stdout",
                                text=f"\n[convcourse: output beyond {self.max_output_bytes} bytes dropped]\n")
            outs.append(note)
        return None

    def _stop(self, reason: str) -> None:
        if self._stopped is None:
            self._stopped = reason
            self.log.warning("Stopping this notebook: %s", reason)

    def _not_run(self, cell: NotebookNode) -> NotebookNode:
        cell.outputs = [error_output("CellNotRun", f"not run because {self._stopped}")]
        cell.execution_count = None
        return cell

    async def _hidden(self, code: str, token: str) -> bool:
        """Run grader code in the kernel outside any cell; True if it printed ``token``."""
        seen: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                seen.append(msg["content"].get("text", ""))

        await self.kc.execute_interactive(code, store_history=False, allow_stdin=False, output_hook=hook,
                                          timeout=GUARD_TIMEOUT)
        return token in "".join(seen)

    async def _guard(self) -> str | None:
        """Restore the kernel's machinery (recording it first, the first time); None if fine, else why not."""
        token = secrets.token_hex(16)
        guard = f"__import__({GUARD_MODULE!r}, fromlist=['restore'])"
        install = "" if self._guard_installed else f"{guard}.install()\n"
        code = f"{install}{guard}.restore({token!r})"
        self._guard_installed = True
        if not await self.km.is_alive():
            raise DeadKernelError("Kernel died")
        try:
            ok = await self._hidden(code, token)
        except TimeoutError:
            return "the kernel did not answer the grader's integrity step"
        return None if ok else "the notebook changed how the kernel runs code (the grader's integrity step failed)"

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        """Execute one cell within the limits; record, never raise, what goes wrong with the kernel."""
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if self._stopped is None and time.monotonic() >= self._deadline:
            self._stop(f"the notebook's time limit ({self.notebook_timeout} s) ran out")
        if self._stopped is not None:
            return self._not_run(cell)
        if self.integrity_checks and not self._guard_installed:
            await self._guard_or_stop(cell)  # record the pristine state before any notebook code runs
        test = self.integrity_checks and is_autograded_test(cell)
        if test:
            problem = await self._guard_or_stop(cell)
            if problem is not None:
                return cell
        original, token = cell.source, secrets.token_hex(16)
        if test:
            cell.source = with_token(original, token)
        try:
            await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            self._stop("the kernel died (the notebook exited, killed its process or ran out of memory)")
            cell.outputs.append(error_output("DeadKernelError", self._stopped))
        except CellTimeoutError:
            self._stop(f"the kernel could not be interrupted after {self._get_timeout(cell)} s")
            cell.outputs.append(error_output("CellTimeoutError", self._stopped))
            await self._kill_kernel()
        finally:
            cell.source = original
        if test and not strip_token(cell, token) and not _has_error(cell):
            cell.outputs.append(error_output(
                "IntegrityError", "this test cell did not run to its end (its errors were hidden or skipped)"))
        return cell

    execute_cell = run_sync(async_execute_cell)  # nbclient binds its own coroutine here; rebind to ours

    async def _guard_or_stop(self, cell: NotebookNode) -> str | None:
        try:
            problem = await self._guard()
        except DeadKernelError:
            self._stop("the kernel died (the notebook exited, killed its process or ran out of memory)")
            problem = self._stopped
        if problem is not None and is_autograded_test(cell):
            cell.outputs = [error_output("IntegrityError", problem)]
        return problem

    async def _kill_kernel(self) -> None:
        try:
            await self.km.shutdown_kernel(now=True)
        except Exception as error:  # noqa: BLE001 - already on the failure path; the log has it
            self.log.warning("could not shut the kernel down: %s", error)


def _has_error(cell: NotebookNode) -> bool:
    return any(output.get("output_type") == "error" for output in cell.outputs)


class RestoreCells(OverwriteCells):
    """OverwriteCells whose re-insertion of deleted test cells never fails on read-only neighbours.

    nbgrader 0.9 puts a missing grade cell after the preceding *source* cell, but only looks that
    cell up among grade/solution cells, so a deleted test that follows a read-only cell raises
    KeyError and the whole submission fails. Here it goes after the nearest preceding nbgrader
    cell still present in the submission (or first, if none is).
    """

    def add_missing_grade_cells(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        """Re-insert deleted grade cells at their place, in source order."""
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        order = [cell.name for cell in source_nb.source_cells]
        by_name = {cell.name: cell for cell in source_nb.source_cells}
        solutions = {cell.name for cell in source_nb.solution_cells}
        for grade_cell in sorted(source_nb.grade_cells, key=lambda c: order.index(c.name) if c.name in order else 0):
            present = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
            if grade_cell.name in present:
                continue
            self.log.warning("Missing grade cell %s: adding the original back", grade_cell.name)
            new = self.missing_cell_transform(by_name[grade_cell.name], grade_cell.max_score,
                                              is_solution=grade_cell.name in solutions)
            earlier = order[: order.index(grade_cell.name)] if grade_cell.name in order else []
            anchor = next((present.index(name) for name in reversed(earlier) if name in present), -1)
            nb.cells.insert(anchor + 1, new)
        return nb, resources
