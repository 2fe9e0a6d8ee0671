"""Classic mistakes planted in a right notebook, each one a wrong answer that ``convcourse.diagnosis`` names.

The ``mistakes`` example submission (:mod:`convcourse.grading.demo.samples`) is the source notebook with
the solution region of each cell in :data:`PLANTED` rewritten: the tests that read that cell fail, their
messages carry the mistake's stable name, and the class report counts it. A wrong hand answer is not typed
in: it is the answer of the diagnosis's own variant of that name, worked out from the course's numbers, so
the sample and the diagnosis cannot drift apart.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable, NamedTuple

from nbformat import NotebookNode

from convcourse.grading.demo.points import is_test, names, nbgrader_meta

_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION$", re.M | re.S)


class Planted(NamedTuple):
    """A classic mistake for one solution cell: its name in ``diagnosis.MISTAKES`` and the code that makes it."""

    tag: str
    code: Callable[[str], str]  # the solution region's new lines (unindented), given the tag
    keep: bool = False  # True: the code goes before the right solution (a slip in it); False: it replaces it


def _variant(variants: list, tag: str) -> Any:
    """The answer of the one variant named ``tag``; ValueError when there is none, or several that differ."""
    answers = list({repr(v.answer): v.answer for v in variants if v.tag == tag}.values())
    if len(answers) != 1:
        raise ValueError(f"the diagnosis has {len(answers)} different answers named [{tag}] here; a sample needs one")
    return answers[0]


def _whole(value: Any) -> Any:
    """Nested numbers with the floats that are whole written as ints, as a student writes them by hand."""
    if isinstance(value, (list, tuple)):
        return [_whole(v) for v in value]
    return int(value) if float(value).is_integer() else value


def _multi_channels(tag: str) -> str:
    from convcourse import checks, diagnosis

    x, w = checks.exercises().multi_example()
    stacked = _variant(diagnosis.multi_conv_variants(x, w, checks.conv2d_reference), tag)
    rows = len(stacked) // len(w)  # the variant stacks the channels' rows: split them back per channel
    return f"multi_by_hand = {_whole([stacked[i:i + rows] for i in range(0, len(stacked), rows)])!r}"


def _fields(tag: str) -> str:
    from convcourse import checks, diagnosis

    ex = checks.exercises()
    return f"fields_by_hand = {_whole(_variant(diagnosis.field_variants(ex.RF_STACK, ex.RF_POOLS), tag))!r}"


PLANTED: dict[str, Planted] = {
    "mc-conv2d-naive": Planted("flipped-kernel", lambda tag: "k = np.asarray(k)[::-1, ::-1]  # flipped, as a textbook "
                               "convolution does", keep=True),
    "mc-multi-by-hand": Planted("first-channel-only", _multi_channels),
    "od-fields-by-hand": Planted("field-kernels-added", _fields),
    "ce-shift-images": Planted("shift-wraps-around", lambda tag: "return torch.roll(images, (dy, dx), dims=(2, 3))"),
}


def _rewrite(source: str, planted: Planted) -> str:
    match = _REGION.search(source)
    if match is None:
        raise ValueError(f"no solution region in the cell to plant [{planted.tag}] in")
    indent = match.group(1)
    lines = "".join(f"{indent}{line}\n" for line in planted.code(planted.tag).splitlines())
    body = source[match.start():match.end()]
    new = body.replace("### BEGIN SOLUTION\n", "### BEGIN SOLUTION\n" + lines, 1) if planted.keep else \
        f"{indent}### BEGIN SOLUTION\n{lines}{indent}### END SOLUTION"
    return source[:match.start()] + new + source[match.end():]


def plant(nb: NotebookNode) -> tuple[NotebookNode, dict[str, str]]:
    """A copy of ``nb`` with every cell of :data:`PLANTED` it has rewritten; and {grade_id: mistake name} of those."""
    nb, done = copy.deepcopy(nb), {}
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in PLANTED and cell.cell_type == "code":
            cell.source = _rewrite(cell.source, PLANTED[grade_id])
            done[grade_id] = PLANTED[grade_id].tag
    return nb, done


def tested_by(nb: NotebookNode, grade_id: str) -> str:
    """The grade_id of the first test cell after cell ``grade_id`` that reads a name the cell binds."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if nbgrader_meta(c).get("grade_id") == grade_id)
    bound = names(cells[index].source)[0]
    return next(nbgrader_meta(c)["grade_id"] for c in cells[index:] if is_test(c) and names(c.source)[1] & bound)
