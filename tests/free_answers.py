"""Graded hand answers, taken from source/, and a detector that finds them in any text a notebook shows.

A hand task is a solution cell of a source notebook that evaluates on its own (no imports, no earlier
cell) to plain data (numbers, nested lists, tuples, dicts of them); each value it binds (each entry of
a dict) is one answer. An answer is found in a text when its numbers appear one after the other with
only layout between them (spaces, commas, brackets, x, HTML tags: a NumPy print, a list, a tensor, a
shape, an HTML table, a text grid; words such as "16 of 16" break it); an
answer of one or two numbers under 100, which any text holds by chance, is found only as a matrix:
``[[5]]``, ``tensor([[5.]])``, a one-cell table. ``None`` (an invalid layer) has no number to look
for; such answers are listed, not searched.

Used by test_no_free_answers.py (whole notebooks) and test_exercise_checks.py (failure messages).
"""
from __future__ import annotations

import html
import math
import re
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import nbformat

from convcourse.grading.course import ASSIGNMENTS
from convcourse.grading.demo.points import is_solution_code, nbgrader_meta

ROOT = Path(__file__).resolve().parents[1]


class Answer(NamedTuple):
    """One graded hand answer: where it comes from and the numbers to look for."""

    where: str  # e.g. "output_dimensions od-answers answers[4]"
    numbers: tuple[float, ...]
    matrix: str  # canonical matrix text ("[[5]]"), "" when the value is not a nested list

    def short(self) -> bool:
        """Too few, too small numbers to be recognised anywhere but in matrix notation."""
        return len(self.numbers) < 3 and any(abs(n) < 100 for n in self.numbers)


# ---------------------------------------------------------------- the answers, from source/


def _is_data(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if value is None or isinstance(value, (int, float)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_data(v) for v in value)
    if isinstance(value, dict):
        return all(_is_data(v) for v in value.values())
    return False


def _flat(value: Any) -> tuple[float, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(n for v in value for n in _flat(v))
    return () if value is None else (float(value),)


def _matrix(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        return "[" + ",".join(_matrix(row) for row in value) + "]"
    if isinstance(value, list):
        return "[" + ",".join(_number(float(v)) for v in value) + "]"
    return ""


def _number(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else repr(value)


def source_notebook(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)


@cache
def hand_cells() -> dict[tuple[str, str], dict[str, Any]]:
    """{(assignment, grade_id): {name: value}} for every solution cell that is a hand task."""
    found = {}
    for assignment in ASSIGNMENTS:
        for cell in source_notebook(assignment).cells:
            if not is_solution_code(cell):
                continue
            namespace: dict[str, Any] = {}
            try:
                exec(cell.source, namespace)  # noqa: S102 - the instructor's own solution cell
            except Exception:  # noqa: BLE001 - it needs the notebook (imports, earlier cells): not a hand answer
                continue
            values = {name: value for name, value in namespace.items() if not name.startswith("__") and _is_data(value)}
            if values:
                found[assignment, nbgrader_meta(cell)["grade_id"]] = values
    return found


def hand_answers() -> tuple[list[Answer], list[str]]:
    """(answers to look for, answers with no number: None); a dict's entries are answers of their own."""
    found, unsearchable = [], []
    for (assignment, grade_id), values in hand_cells().items():
        for name, value in values.items():
            for key, part in value.items() if isinstance(value, dict) else [(None, value)]:
                where = f"{assignment} {grade_id} {name}" + ("" if key is None else f"[{key!r}]")
                if part is None:
                    unsearchable.append(where)
                else:
                    found.append(Answer(where, _flat(part), _matrix(part)))
    return found, unsearchable


def wrong(value: Any) -> Any:
    """``value`` in the same form with every number 0: a student's answer that is well-formed but wrong."""
    if isinstance(value, dict):
        return {key: wrong(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(wrong(v) for v in value)
    return None if value is None else 0


# ---------------------------------------------------------------- looking for them in a text

_TAG = re.compile(r"<[^>]*>")
# A number not glued to a name on either side (conv2, x_t, a widget's model id "330fa9...") or to another
# number; "5x5" and "16×1" still count. Without the right-hand side a random model id of the saved widget
# state ("330" then a letter: 1 id in ~11,000) read as the answer 330: ~370 ids a CI run, ~1 run in 30.
_NUMBER = re.compile(r"(?<![A-Za-wyzA-WYZ_\d.])-?(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
                     r"(?![A-Za-wyzA-WYZ_\d])")


# What may stand between two numbers of one shown answer: layout, not words ("3x3 kernel: 16 of 16" is no shape).
_LAYOUT = re.compile(r"[\s,;|*x×\[\](){}]*")


def numbers_in(text: str) -> tuple[list[float], list[bool]]:
    """The numbers of a text in order, and for each whether only layout separates it from the one before.

    HTML tags count as layout; thousands separators are read (804,234 is one number).
    """
    plain = html.unescape(_TAG.sub(" ", text)).replace("\u2212", "-")
    numbers, joined, end = [], [], 0
    for match in _NUMBER.finditer(plain):
        numbers.append(float(match.group().replace(",", "")))
        joined.append(bool(numbers[:-1]) and _LAYOUT.fullmatch(plain, end, match.start()) is not None)
        end = match.end()
    return numbers, joined


def matrix_text(text: str) -> str:
    """The text with tables as nested brackets, numbers written alike and no spaces: '[[5]]' for tensor([[5.]])."""
    text = re.sub(r"<table[^>]*>", "[", text)
    text = re.sub(r"<tr[^>]*>", "[", re.sub(r"</table>", "]", text))
    text = re.sub(r"</t[dh]>", ",", re.sub(r"</tr>", "]", text))
    text = html.unescape(_TAG.sub("", text))
    text = _NUMBER.sub(lambda m: _number(float(m.group().replace(",", ""))), text)
    return re.sub(r",+\]", "]", re.sub(r"\s+", "", text).replace(",,", ","))


class Text(NamedTuple):
    """A text read once: its numbers in order, which follow the one before with only layout between, its matrix form."""

    numbers: list[float]
    joined: list[bool]
    matrices: str

    @classmethod
    def read(cls, text: str) -> "Text":
        return cls(*numbers_in(text), matrix_text(text))


def contains(text: str | Text, answer: Answer) -> bool:
    """Whether ``text`` shows ``answer`` (see the module docstring)."""
    text = Text.read(text) if isinstance(text, str) else text
    if answer.short():
        return bool(answer.matrix) and answer.matrix in text.matrices
    wanted, seen = answer.numbers, text.numbers
    return any(all(text.joined[i + 1:i + len(wanted)])
               and all(abs(a - b) <= 1e-6 * (1 + abs(b)) for a, b in zip(seen[i:i + len(wanted)], wanted))
               for i in range(len(seen) - len(wanted) + 1))


def leaks(texts: list[tuple[str, str]], answers: list[Answer]) -> list[str]:
    read = [(where, Text.read(text)) for where, text in texts]
    return sorted({f"{answer.where} = {answer.numbers} shown in {where}"
                   for where, text in read for answer in answers if contains(text, answer)})
