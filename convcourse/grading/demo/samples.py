"""Example submissions generated from an assignment's source and release notebooks, each with its exact score.

Nothing here is a hand-kept copy: every submission is derived from ``source/<a>/<a>.ipynb`` (the
instructor's notebook) and ``release/<a>/<a>.ipynb`` (what students get), and every expected
autograded score is computed from those notebooks' points.

Demo cases: ``full`` (the source, solutions and nbgrader metadata intact: every point), ``blank``
(the release unchanged: 0) and ``partial`` (the first half of the solution cells done, the rest as
released; only tests that do not depend on the unfinished cells pass, found by following names
from cell to cell). ``mistakes`` is the source with the classic mistakes of
:mod:`convcourse.grading.demo.classic_mistakes` planted (scored like ``partial``: the tests that read a
planted cell fail), for the class report to count.

Hostile and broken cases: loops (interruptible, and one that ignores interrupts), ``sys.exit``,
``os._exit``, a kernel killing itself, a memory bomb, network access, writing outside its folder and
deleting the gradebook, megabytes of output, test cells edited to ``pass`` or deleted, checking
helpers / ``importlib`` / builtins monkeypatched, errors swallowed by IPython tricks, and notebooks
renamed, missing or not JSON. Where a case kills or stalls the kernel halfway, the expected score
is the points of the tests before it: those results stand, the rest count as not run.
"""
from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_output

from convcourse.grading.demo import classic_mistakes
from convcourse.grading.demo.hostile_cells import (
    KILL,
    LOOP,
    OS_EXIT,
    PATCH_CHECKS,
    STUBBORN_LOOP,
    SWALLOW_AST,
    SWALLOW_CUSTOM_EXC,
    SYS_EXIT,
    bomb,
    escape,
    network,
)
from convcourse.grading.demo.points import (
    is_solution_code,
    is_test,
    nbgrader_meta,
    passing_tests,
    points_before,
    tests,
    total_points,
)

DEMO_CASES = ("full", "blank", "partial")
MISTAKE_CASES = ("mistakes",)  # not in the demo: a class for the report (tests/test_class_report.py grades it)


@dataclass(frozen=True)
class Options:
    """Knobs of the hostile cases."""

    network_target: tuple[str, int] | None = None  # a listener the sandbox must keep the kernel from
    attack_root: str | None = None  # a course folder the hostile cells try to damage
    bomb_mb: int = 8192  # the memory bomb stops here if nothing stops it first


@dataclass(frozen=True)
class Submission:
    """One student's hand-in for one assignment and the autograded score it must get."""

    case: str
    assignment: str
    files: dict[str, bytes]
    expected: float
    about: str

    @property
    def student(self) -> str:
        """The student id the demo and tests use for this case."""
        return self.case.replace("_", "-")

    def write(self, course_root: Path, student: str | None = None) -> Path:
        """Write into ``submitted/<student>/<assignment>/`` (replacing what was there); return the folder."""
        folder = Path(course_root) / "submitted" / (student or self.student) / self.assignment
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, content in self.files.items():
            (folder / name).write_bytes(content)
        return folder


@dataclass(frozen=True)
class Context:
    """What a case builder works from."""

    assignment: str
    source: NotebookNode
    release: NotebookNode
    options: Options = field(default_factory=Options)


# ---------------------------------------------------------------------------------- notebook surgery


def _blank_outputs(nb: NotebookNode) -> NotebookNode:
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _to_bytes(nb: NotebookNode) -> bytes:
    return nbformat.writes(nb).encode()


def _files(ctx: Context, nb: NotebookNode) -> dict[str, bytes]:
    return {f"{ctx.assignment}.ipynb": _to_bytes(nb)}


def _release_cell(ctx: Context, grade_id: str) -> NotebookNode:
    for cell in ctx.release.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return copy.deepcopy(cell)
    raise ValueError(f"{ctx.assignment}: release has no cell {grade_id!r}; regenerate release/ (make release)")


def _partial(ctx: Context) -> tuple[NotebookNode, float]:
    solutions = [nbgrader_meta(c)["grade_id"] for c in ctx.source.cells if is_solution_code(c)]
    unfinished = set(solutions[(len(solutions) + 1) // 2:])
    nb = _blank_outputs(ctx.source)
    nb.cells = [_release_cell(ctx, nbgrader_meta(c)["grade_id"]) if nbgrader_meta(c).get("grade_id") in unfinished
                else c for c in nb.cells]
    passing = passing_tests(ctx.source, unfinished)
    return nb, sum(points for _, grade_id, points in tests(ctx.source) if grade_id in passing)


def insert_cell(nb: NotebookNode, code: str, where: str) -> tuple[NotebookNode, int]:
    """A copy of ``nb`` with an unmarked code cell right after its first code cell, the setup ("first"),
    before its middle test ("middle") or at its end ("last"); returns it and the new cell's index."""
    nb = _blank_outputs(nb)
    found = tests(nb)
    if where == "last":
        index = len(nb.cells)
    elif where == "first":
        index = next((i + 1 for i, c in enumerate(nb.cells) if c.cell_type == "code"), 0)
    elif where == "middle":
        index = found[len(found) // 2][0] if found else len(nb.cells)
    else:
        raise ValueError(f"unknown position {where!r}: use first, middle or last")
    nb.cells.insert(index, new_code_cell(code))
    return nb, index


def _hostile(ctx: Context, base: NotebookNode, code: str, where: str, *, survives: bool,
             base_points: float | None = None) -> tuple[dict[str, bytes], float]:
    """``base`` plus a hostile cell; the expected score is what ``base`` earns if the kernel survives,
    else the points of the tests before the hostile cell."""
    nb, index = insert_cell(base, code, where)
    full = total_points(ctx.source) if base_points is None else base_points
    return _files(ctx, nb), full if survives else min(full, points_before(nb, index))


# ---------------------------------------------------------------------------------- the cases


def _full(ctx: Context) -> tuple[dict[str, bytes], float]:
    return _files(ctx, _blank_outputs(ctx.source)), total_points(ctx.source)


def _blank(ctx: Context) -> tuple[dict[str, bytes], float]:
    return _files(ctx, ctx.release), 0.0


def _partial_case(ctx: Context) -> tuple[dict[str, bytes], float]:
    nb, expected = _partial(ctx)
    return _files(ctx, nb), expected


def _mistakes(ctx: Context) -> tuple[dict[str, bytes], float]:
    nb, planted = classic_mistakes.plant(_blank_outputs(ctx.source))
    passing = passing_tests(ctx.source, set(planted))
    return _files(ctx, nb), sum(points for _, grade_id, points in tests(ctx.source) if grade_id in passing)


def _edited_tests(ctx: Context) -> tuple[dict[str, bytes], float]:
    nb = _blank_outputs(ctx.release)
    for cell in nb.cells:
        if is_test(cell):
            cell.source = "pass"
    return _files(ctx, nb), 0.0


def _deleted_tests(ctx: Context) -> tuple[dict[str, bytes], float]:
    nb = _blank_outputs(ctx.source)
    nb.cells = [c for c in nb.cells if not is_test(c)]
    return _files(ctx, nb), total_points(ctx.source)


def _huge_output(ctx: Context) -> tuple[dict[str, bytes], float]:
    nb, _ = insert_cell(ctx.source, "print('x' * 3_000_000)  # megabytes of output while running", "middle")
    stored = new_output("stream", name="stdout", text="y" * 8_000_000)  # and megabytes saved in the file
    next(c for c in nb.cells if c.cell_type == "code").outputs = [stored]
    return _files(ctx, nb), total_points(ctx.source)


def _patched_checks(ctx: Context) -> tuple[dict[str, bytes], float]:
    nb, expected = _partial(ctx)
    return _hostile(ctx, nb, PATCH_CHECKS, "first", survives=True, base_points=expected)


Builder = Callable[[Context], tuple[dict[str, bytes], float]]
CASES: dict[str, tuple[Builder, str]] = {
    "full": (_full, "the source notebook: every answer right"),
    "blank": (_blank, "the release, unchanged"),
    "partial": (_partial_case, "first half of the solution cells done, the rest as released"),
    "mistakes": (_mistakes, "the source with classic mistakes planted (a flipped kernel, ...): their tests fail"),
    "loop": (lambda c: _hostile(c, c.source, LOOP, "middle", survives=True),
             "an infinite loop in the middle: interrupted after the cell time limit, the rest still runs"),
    "stubborn_loop": (lambda c: _hostile(c, c.source, STUBBORN_LOOP, "middle", survives=False),
                      "a loop ignoring interrupts: the kernel is killed, tests after it count as not run"),
    "sys_exit": (lambda c: _hostile(c, c.source, SYS_EXIT, "middle", survives=True),
                 "sys.exit() in the middle: IPython turns it into an error, the rest still runs"),
    "os_exit": (lambda c: _hostile(c, c.source, OS_EXIT, "middle", survives=False),
                "os._exit(1) in the middle: the tests before it keep their points"),
    "kill_kernel": (lambda c: _hostile(c, c.source, KILL, "last", survives=False),
                    "the last cell SIGKILLs its own kernel: every test before it counts"),
    "memory_bomb": (lambda c: _hostile(c, c.source, bomb(c.options.bomb_mb), "middle", survives=True),
                    "allocates until the memory cap stops it (MemoryError), then the rest runs"),
    "network": (lambda c: _hostile(c, c.source, network(c.options.network_target), "middle", survives=True),
                "tries the internet and the grader's own loopback: nothing answers"),
    "escape": (lambda c: _hostile(c, c.source, escape(c.options.attack_root), "middle", survives=True),
               "tries to delete gradebooks and write outside its folder: all blocked"),
    "huge_output": (_huge_output, "8 MB of saved output and 3 MB printed: cleared and capped"),
    "edited_tests": (_edited_tests, "the release with every test cell changed to `pass`"),
    "deleted_tests": (_deleted_tests, "the source with every test cell deleted: nbgrader puts them back"),
    "patched_checks": (_patched_checks, "partial, plus checking helpers, importlib.reload and builtins patched"),
    "swallow_custom_exc": (lambda c: _hostile(c, c.release, SWALLOW_CUSTOM_EXC, "first", survives=True,
                                              base_points=0.0),
                           "the release plus set_custom_exc hiding every error"),
    "swallow_ast": (lambda c: _hostile(c, c.release, SWALLOW_AST, "first", survives=True, base_points=0.0),
                    "the release plus an AST transformer wrapping every cell in try/except"),
    "renamed": (lambda c: ({"my_solution.ipynb": _to_bytes(_blank_outputs(c.source))}, 0.0),
                "the full solution under another file name"),
    "missing": (lambda c: ({"notes.txt": b"I forgot to upload the notebook\n"}, 0.0), "no notebook at all"),
    "not_json": (lambda c: ({f"{c.assignment}.ipynb": b'{"cells": [ this is not json'}, 0.0),
                 "a notebook file that is not valid JSON"),
}
HOSTILE_CASES = tuple(name for name in CASES if name not in DEMO_CASES + MISTAKE_CASES)


def read_notebook(path: Path) -> NotebookNode:
    """A notebook file, or a clear error naming it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    return nbformat.read(path, as_version=4)


def context(course_root: Path, assignment: str, options: Options | None = None) -> Context:
    """The source and release notebooks of ``assignment`` in the course at ``course_root``."""
    root = Path(course_root)
    return Context(assignment, read_notebook(root / "source" / assignment / f"{assignment}.ipynb"),
                   read_notebook(root / "release" / assignment / f"{assignment}.ipynb"), options or Options())


def build(ctx: Context, case: str) -> Submission:
    """One example submission with its expected autograded score."""
    if case not in CASES:
        raise ValueError(f"unknown example case {case!r}; known: {', '.join(CASES)}")
    builder, about = CASES[case]
    files, expected = builder(ctx)
    return Submission(case, ctx.assignment, files, float(expected), about)


def write_examples(course_root: Path, assignments: list[str], cases: tuple[str, ...] = DEMO_CASES,
                   options: Options | None = None) -> list[Submission]:
    """Write ``cases`` for every assignment into the course's submitted/ folder; return them."""
    made = []
    for assignment in assignments:
        ctx = context(course_root, assignment, options)
        for case in cases:
            submission = build(ctx, case)
            submission.write(course_root)
            made.append(submission)
    return made

