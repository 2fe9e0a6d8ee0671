"""Similarity between submissions (convcourse.grading.course.similarity, ``python -m convcourse.grading similarity``).

A small course made here: one assignment with a real task (a function), a tiny one (a 3x3 matrix) and a
written answer. Two students copied each other with new names and comments; the others wrote their own;
everybody got the one right matrix and kept the released starter's docstring. Fast: no kernel, no grading.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from convcourse.grading.__main__ import main
from convcourse.grading.course import similarity

STARTER = '''def pool(x, size, stride):
    """Max-pool the 2-D array x: a size x size window moving stride squares at a time, no padding, floor rule."""
    # YOUR CODE HERE
    raise NotImplementedError()'''
ANSWER = '''def pool(x, size, stride):
    """Max-pool the 2-D array x: a size x size window moving stride squares at a time, no padding, floor rule."""
    ### BEGIN SOLUTION
    rows = (x.shape[0] - size) // stride + 1
    cols = (x.shape[1] - size) // stride + 1
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            out[i, j] = x[i * stride:i * stride + size, j * stride:j * stride + size].max()
    return out
    ### END SOLUTION'''
# The copy: every name changed, comments added, the marker lines gone.
RENAMED = {"rows": "height", "cols": "width", "out": "result", "i": "r", "j": "c"}
COPIED = re.sub(r"\b(rows|cols|out|i|j)\b", lambda m: RENAMED[m.group(1)], ANSWER).replace(
    "    ### BEGIN SOLUTION\n", "    # my own solution!\n").replace("    ### END SOLUTION", "    # (rows, then columns)")
OWN = [
    '''def pool(x, size, stride):
    """Max-pool the 2-D array x: a size x size window moving stride squares at a time, no padding, floor rule."""
    starts_i = list(range(0, x.shape[0] - size + 1, stride))
    starts_j = list(range(0, x.shape[1] - size + 1, stride))
    return np.array([[np.max(x[a:a + size, b:b + size]) for b in starts_j] for a in starts_i])''',
    '''def pool(x, size, stride):
    """Max-pool the 2-D array x: a size x size window moving stride squares at a time, no padding, floor rule."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size))[::stride, ::stride]
    return windows.max(axis=(2, 3))''',
    '''def pool(x, size, stride):
    """Max-pool the 2-D array x: a size x size window moving stride squares at a time, no padding, floor rule."""
    import torch
    t = torch.tensor(x, dtype=torch.float64)[None, None]
    return torch.nn.functional.max_pool2d(t, size, stride)[0, 0].numpy()''',
]
CONV = {  # a second task: the copied pair copied it too, the others each wrote their own
    "answer": """def conv(x, k):
    out = np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i:i + k.shape[0], j:j + k.shape[1]] * k)
    return out""",
    "copied": """def conv(x, k):
    result = np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))  # output size
    for a in range(result.shape[0]):
        for b in range(result.shape[1]):
            result[a, b] = np.sum(x[a:a + k.shape[0], b:b + k.shape[1]] * k)
    return result""",
    "own0": "def conv(x, k):\n    return scipy.signal.correlate2d(x, k, mode='valid')",
    "own1": """def conv(x, k):
    patches = np.lib.stride_tricks.sliding_window_view(x, k.shape)
    return np.einsum('ijab,ab->ij', patches, k)""",
    "own2": """def conv(x, k):
    t = torch.nn.functional.conv2d(torch.tensor(x)[None, None], torch.tensor(k)[None, None])
    return t[0, 0].numpy()""",
}
MATRIX = "by_hand = [[-1.0, 5.0, 9.0], [3.0, 4.0, 2.0], [7.0, -2.0, 6.0]]"
ESSAY = ("The network learns whatever kernel works best, so a flipped kernel is learnt just as well: the flip only "
         "renames the weights. It matters when the kernel is given, such as an edge filter taken from a textbook.")


def cell(kind, grade_id, text, solution=False):
    make = new_code_cell if kind == "code" else new_markdown_cell
    meta = {"grade_id": grade_id, "solution": solution, "grade": kind == "markdown" and solution,
            "locked": not solution, "points": 1 if kind == "markdown" and solution else 0}
    return make(text, metadata={"nbgrader": meta})


def assignment(pool_code, matrix, essay, conv="def conv(x, k):\n    # YOUR CODE HERE\n    raise NotImplementedError()"):
    return new_notebook(cells=[
        cell("markdown", "t-intro", "# Task 1: pooling"), cell("code", "t-setup", "import numpy as np"),
        cell("code", "t-pool", pool_code, solution=True), cell("code", "t-conv", conv, solution=True),
        cell("markdown", "t-hand", "# Task 2: by hand"), cell("code", "t-by-hand", matrix, solution=True),
        cell("markdown", "t-essay-q", "# Question"), cell("markdown", "t-essay", essay, solution=True),
    ])


@pytest.fixture
def course(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    for kind, nb in (("source", assignment(ANSWER, f"### BEGIN SOLUTION\n{MATRIX}\n### END SOLUTION", ESSAY,
                                           CONV["answer"])),
                     ("release", assignment(STARTER, "# YOUR CODE HERE\nraise NotImplementedError()",
                                            "YOUR ANSWER HERE"))):
        (tmp_path / kind / "pool").mkdir(parents=True)
        nbformat.write(nb, tmp_path / kind / "pool" / "pool.ipynb")
    essays = ["Flipping changes nothing because training finds the flipped weights anyway.",
              "A learnt filter is arbitrary; only hand-made filters, e.g. Sobel, care about orientation.",
              "It does not matter for learning. It matters for signal processing textbooks."]
    hand_ins = {"ann": (ANSWER.replace("### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION", ""), ESSAY,
                        CONV["answer"]),
                "bob": (COPIED, ESSAY.upper().replace(" ", "  "), CONV["copied"]),
                **{f"own{i}": (code, essays[i], CONV[f"own{i}"]) for i, code in enumerate(OWN)},
                "blank": (STARTER, "YOUR ANSWER HERE", None), "blank2": (STARTER, "YOUR ANSWER HERE", None)}
    for student, (code, essay, conv) in hand_ins.items():
        folder = tmp_path / "submitted" / student / "pool"
        folder.mkdir(parents=True)
        matrix = MATRIX if "blank" not in student else "raise NotImplementedError()"
        nb = assignment(code, matrix, essay, conv) if conv else assignment(code, matrix, essay)
        nbformat.write(nb, folder / "pool.ipynb")
    return tmp_path


def test_the_copied_pair_ranks_first(course):
    result = similarity.compare(course, "pool")
    first = result.pairs[0]
    assert first.students == ("ann", "bob") and first.score > 0.8, similarity.table(result)
    assert set(first.shared) == {"t-pool", "t-conv", "t-by-hand", "t-essay"}
    left, right = first.views["t-pool"]
    assert "<mark>" in left and "<mark>" in right and "&#34;&#34;&#34;" not in right.split("<mark>")[1][:5]


def test_identical_tiny_answers_do_not_rank_a_pair(course):
    result = similarity.compare(course, "pool")
    others = [p for p in result.pairs if p.students != ("ann", "bob")]
    assert others and all(set(p.shared) <= {"t-by-hand"} for p in others), similarity.table(result)
    assert max(p.score for p in others) < 0.15  # the same 3x3 matrix everywhere: a sliver of the weight
    weights = {r.grade_id: r.size for r in result.regions}
    assert weights["t-by-hand"] < (weights["t-pool"] + weights["t-conv"]) / 4


def test_starter_code_shared_by_everyone_does_not_count(course):
    result = similarity.compare(course, "pool")
    assert not [p for p in result.pairs if "blank" in p.students and "blank2" in p.students]
    assert all("t-pool" not in p.shared for p in result.pairs if p.students != ("ann", "bob"))


def test_code_most_students_write_is_common_not_evidence(course):
    result = similarity.compare(course, "pool", max_shared=1)  # every shared fingerprint is "common"
    assert result.pairs == []


def test_the_command_prints_the_ranked_list_and_refuses_bad_input(course, capsys):
    assert main(["--root", str(course), "similarity", "pool", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "similarity of pool: 7 submissions" in out and "   1  ann ~ bob" in out and "   2 " not in out
    assert main(["--root", str(course), "similarity", "nope"]) == 2
    assert capsys.readouterr().err == f"error: no assignment 'nope' in {course / 'source'} (known: pool)\n"
    for folder in Path(course / "submitted").iterdir():
        (folder / "pool" / "pool.ipynb").unlink()
    assert main(["--root", str(course), "similarity", "pool"]) == 2
    assert "error: no submissions of pool" in capsys.readouterr().err
