"""No released notebook shows the answer of a graded hand task by itself.

Every release notebook runs as a student who answers nothing runs it (its solution cells raise
NotImplementedError; errors allowed); the hand notebooks run twice more: with the student's
functions written (the source's solutions) while the hand answers stay empty, so the locked cells
that call a working function run too, and with the functions written and the hand tasks filled in
wrong (zeros in the answer's form), so the cells that use the answers run as well. Then every
widget is driven to its end: buttons pressed, players and sliders moved to their last step, every
option of a dropdown chosen, every step of a convolution visualiser shown. No output, widget state
or cell text may contain the answer of any hand task of any notebook.
The answers come from source/ and are looked for in every format (free_answers.py says how).

Runtime on 2 shared cores: 4-10 s per run of a hand notebook (a kernel, torch, the widgets); the
released runs are marked slow (the other two runs show all they show), as is cnn_experiments
(16 s: it trains only what runs without answers, under the test budget).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from free_answers import ROOT, Answer, contains, hand_answers, hand_cells, leaks, source_notebook, wrong
from nbclient import NotebookClient

from convcourse.grading.course import ASSIGNMENTS
from convcourse.grading.demo.points import is_solution_code, nbgrader_meta

# ---------------------------------------------------------------- running a notebook as a student who answers nothing

# Appended to the notebook: drives every widget and instrument to its end and prints what each showed.
DRIVE_WIDGETS = r'''
import gc as _gc, json as _json
from convcourse.widgetkit import HAVE_WIDGETS as _HAVE, Instrument as _Instrument
# type(), not isinstance(): the heap holds weak proxies, which raise once their object is gone
_instruments = [o for o in _gc.get_objects() if issubclass(type(o), _Instrument)]
_shown = []

def _widgets():
    if not _HAVE:
        return []
    from ipywidgets.widgets.widget import _instances
    return list(_instances.values())

def _snapshot():
    for instrument in _instruments:
        _shown.append(instrument.text())
        for name in ("html", "result_html", "result_text"):
            _shown.append(str(getattr(instrument, name, "")))
        stack = getattr(instrument, "stack", None)
        if stack is not None:
            _shown.extend([stack.result_text, stack.result_html])
    for widget in _widgets():
        for value in widget.get_state().values():
            _shown.append(value if isinstance(value, str) else repr(value))

_snapshot()
for _instrument in _instruments:
    for _step in range(getattr(_instrument, "n_steps", 0)):
        _instrument.set(step=_step)
        _shown.extend([_instrument.text(), _instrument.html])
if _HAVE:
    import ipywidgets as _w
    for _widget in _widgets():
        if isinstance(_widget, _w.Button):
            _widget.click()
            _snapshot()
        elif isinstance(_widget, (_w.Play, _w.IntSlider, _w.FloatSlider)):
            _widget.value = _widget.max
            _snapshot()
        elif isinstance(_widget, (_w.Dropdown, _w.RadioButtons, _w.ToggleButtons, _w.Select)):
            _start = _widget.value
            for _option in _widget.options:
                _widget.value = _option[1] if isinstance(_option, tuple) else _option
                _snapshot()
            _widget.value = _start
print("DRIVEN " + _json.dumps({"instruments": len(_instruments), "widgets": len(_widgets()), "shown": _shown}))
'''


def run_as_student(assignment: str, folder: Path, *, answers: str) -> tuple[nbformat.NotebookNode, dict]:
    """The release notebook executed with errors allowed, and what the widget driver reported.

    ``answers="released"`` leaves every solution cell as released; ``answers="functions"`` fills every
    solution cell but the hand tasks (the functions) from source/ and leaves the hand tasks as released,
    so the cells that use a working function run too; ``answers="wrong"`` fills the functions as well and
    the hand tasks with well-formed wrong answers (zeros), so the cells that use them run too.
    """
    notebook = nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    solutions = {nbgrader_meta(c)["grade_id"]: c.source for c in source_notebook(assignment).cells if is_solution_code(c)}
    for cell in notebook.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        values = hand_cells().get((assignment, grade_id))
        if is_solution_code(cell) and values and answers == "wrong":
            cell.source = "\n".join(f"{name} = {wrong(value)!r}" for name, value in values.items())
        elif is_solution_code(cell) and not values and answers in ("functions", "wrong"):
            cell.source = solutions[grade_id]
    notebook.cells.append(nbformat.v4.new_code_cell(DRIVE_WIDGETS))
    NotebookClient(notebook, kernel_name="python3", allow_errors=True, timeout=600,
                   resources={"metadata": {"path": str(folder)}}).execute()
    driver = notebook.cells.pop()
    text = "".join(o.get("text", "") for o in driver.outputs if o.output_type == "stream")
    assert "DRIVEN " in text, f"the widget driver failed: {driver.outputs}"
    return notebook, json.loads(text.split("DRIVEN ", 1)[1])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Where a traceback frame is: "checks.py:330", ", line 3" and the gutter of its source lines ("--> 330 ...").
_LOCATION = re.compile(r"\.py:\d+|, line \d+|^(?:-*>)?\s*\d+(?= )", re.M)


def frames(traceback_entry: str) -> str:
    """A traceback entry as a student reads it, without colour codes and without source line numbers: those count
    lines of the package's files, and any number is one once a file is long enough (the message is kept whole)."""
    return _LOCATION.sub("", _ANSI.sub("", traceback_entry))


def texts_of(notebook: nbformat.NotebookNode, driven: dict) -> list[tuple[str, str]]:
    """(where, text) for everything a student can read: cell text, every output, the widgets' states."""
    found = []
    for index, cell in enumerate(notebook.cells):
        where = f"cell {index + 1} ({cell.get('id', '?')})"
        found.append((f"{where} text", cell.source))
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                found.append((f"{where} {output.name}", output.text))
            elif output.output_type == "error":
                found.append((f"{where} error", "\n".join([output.ename, output.evalue, *map(frames, output.traceback)])))
            else:
                found += [(f"{where} {mime}", data) for mime, data in output.get("data", {}).items()
                          if mime.startswith("text/") and isinstance(data, str)]
    found.append(("saved widget state", json.dumps(notebook.metadata.get("widgets", {}))))
    found += [("widget after driving", text) for text in driven["shown"]]
    return found


# ---------------------------------------------------------------- the tests


def test_the_detector_reads_every_format_of_a_matrix():
    answer = Answer("conv_by_hand", (-1.0, 5.0, 9.0, 3.0, 4.0, 1.0, 3.0, 0.0, 3.0), "[[-1,5,9],[3,4,1],[3,0,3]]")
    shown = ["[[-1.  5.  9.]\n [ 3.  4.  1.]\n [ 3.  0.  3.]]", "tensor([[-1., 5., 9.],\n [3., 4., 1.], [3., 0., 3.]])",
             "[[-1, 5, 9], [3, 4, 1], [3, 0, 3]]", "<table><tr><td>-1</td><td>5</td><td>9</td></tr><tr><td>3</td>"
             "<td>4</td><td>1</td></tr><tr><td>3</td><td>0</td><td>3</td></tr></table>",
             "output so far:\n    -1     5     9\n     3     4     1\n     3     0     3"]
    assert all(contains(text, answer) for text in shown)
    assert not contains("[[-1.  5.  9.]\n [ 3.  4.  1.]\n [ 3.  0.  2.]]", answer)
    one = Answer("pool_by_hand", (5.0,), "[[5]]")
    assert one.short() and all(contains(t, one) for t in ("[[5.]]", "tensor([[5.]])", "<table><tr><td>5</td></tr>"
                                                                                        "</table>", "array([[5]])"))
    assert not contains("5 of 9 entries; [[5, 1]]", one)
    big = Answer("head", (804234.0,), "")
    assert contains("Linear: 804,234 parameters", big) and contains("804234", big) and not contains("8042345", big)
    shape = Answer("answers[4]", (7.0, 4.0, 8.0), "")
    assert contains("torch.Size([1, 7, 4, 8])", shape) and contains("7x4x8", shape) and contains("{4: (7, 4, 8)}", shape)
    assert not contains("conv2 = 7, 4, 9, 8", shape) and not contains("7 maps of 4x8", shape)
    assert not contains("a 3x3 kernel: 16 of 16 entries", Answer("answers[3]", (3.0, 16.0, 16.0), ""))
    widget_id = Answer("gap_head", (330.0,), "")  # a widget's model id that starts with the answer's digits
    assert not contains('{"state": {"330fa9c1e2d34b5c8a7e6f5d4c3b2a10": {}}}', widget_id)
    assert not contains("IPY_MODEL_330fa9c1", widget_id) and contains("GAP head: 330 parameters", widget_id)
    assert contains("[330]", widget_id) and contains("330x1", widget_id) and not contains("3301", widget_id)


def test_every_hand_answer_can_be_looked_for():
    answers, unsearchable = hand_answers()
    assert answers, "no hand answer found in source/"
    cannot = [a.where for a in answers if a.short() and not a.matrix]
    assert not cannot, f"answers of one or two small numbers are only recognised as matrices: {cannot}"
    assert len(unsearchable) < len(answers)  # None answers (invalid layers) are the exception, not the rule


def test_the_answer_templates_fill_in_nothing():
    """Each hand task's release cell shows the answer's form in a comment ("# name = [[..., ...]]") and no entry of
    it: the worked examples use other numbers, so nothing is pre-filled (dict keys, the case numbers, aside)."""
    for assignment in {a for a, _ in hand_cells()}:
        release = nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
        for cell in release.cells:
            names = hand_cells().get((assignment, nbgrader_meta(cell).get("grade_id")), {})
            forms = {m[1]: m[2] for m in (re.match(r"#\s*(\w+)\s*=\s*(.*?)(?:\s+#.*)?$", line)
                                          for line in cell.source.splitlines()) if m and m[1] in names}
            assert set(forms) == set(names), f"{assignment}: no template for {set(names) - set(forms)}"
            filled = {name: form for name, form in forms.items() if re.search(r"\d", re.sub(r"\d+\s*:", "", form))}
            assert not filled, f"{assignment}: templates with numbers in them: {filled}"


def _has_hand_tasks(assignment: str) -> bool:
    return any(key[0] == assignment for key in hand_cells())


def _uses_a_hand_answer(assignment: str, grade_id: str | None) -> bool:
    """Whether the cell ``grade_id`` is a hand task or reads a name one binds (so it fails while they are empty)."""
    names = {name for (a, _), values in hand_cells().items() if a == assignment for name in values}
    cell = next((c for c in source_notebook(assignment).cells if nbgrader_meta(c).get("grade_id") == grade_id), None)
    return cell is not None and ((assignment, grade_id) in hand_cells() or any(name in cell.source for name in names))


# The "wrong" and "functions" runs show everything the "released" run shows and more (the cells using the
# answers, or the functions, run too), so the released runs are the slow ones; cnn_experiments has no hand
# task to fill in (and filling its models in would train them).
RUNS = [pytest.param(assignment, answers, marks=pytest.mark.slow if answers == "released" else (),
                     id=f"{assignment}-{answers}")
        for assignment in ASSIGNMENTS for answers in ("released", "wrong", "functions")
        if answers == "released" or _has_hand_tasks(assignment)]


@pytest.mark.parametrize("assignment, answers", RUNS)
def test_a_student_who_answers_nothing_sees_no_answer(assignment, answers, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook, driven = run_as_student(assignment, tmp_path, answers=answers)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "a cell did not run"
    if answers == "functions":  # the functions work: every test of one passes, and only the hand tasks' fail
        failed = {nbgrader_meta(c).get("grade_id") for c in code if any(o.output_type == "error" for o in c.outputs)}
        assert failed and all(_uses_a_hand_answer(assignment, grade_id) for grade_id in failed), failed
    found = leaks(texts_of(notebook, driven), hand_answers()[0])
    assert not found, "answers the notebook shows by itself:\n" + "\n".join(found)
