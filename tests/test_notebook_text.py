"""What the notebooks say is what they grade and what they compute.

* The points a heading (or a bold **Question (... N points).**) announces are the points of the graded
  cells after it, up to the next announcement, in every notebook.
* Every number the hand notebooks' prose works out is recomputed here, from the course's own data.

Fast: reads the source notebooks; no kernel.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convcourse import checks, convviz, shapes
from convcourse.grading.course import ASSIGNMENTS
from convcourse.grading.demo.points import nbgrader_meta
from convcourse.models import ConvModel1, count_parameters

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^\s*#+.*\((?:[^()]*,\s*)?(\d+(?:\.\d+)?) points?\)", re.M)
QUESTION = re.compile(r"^\s*\*\*.*\((?:[^()]*,\s*)?(\d+(?:\.\d+)?) points?\)", re.M)


def source(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)


def prose(assignment: str) -> str:
    """The markdown of a source notebook, cells joined, whitespace runs made single spaces."""
    return re.sub(r"\s+", " ", "\n".join(c.source for c in source(assignment).cells if c.cell_type == "markdown"
                                         and not nbgrader_meta(c).get("solution")))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_announced_points_are_the_graded_points_after_them(assignment):
    """A heading's "(N points)" covers the graded cells up to the next heading that announces points; a bold
    **Question (... N points).** inside it covers those up to the next announcement. A heading counts either its
    whole section or only what its bold questions leave (both ways are read naturally); a question, exactly its own."""
    sections: list[dict] = []
    for cell in source(assignment).cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "markdown" and not meta.get("solution"):
            title = cell.source.strip().splitlines()[0]
            for points in HEADING.findall(cell.source):
                sections.append({"title": title, "announced": float(points), "graded": 0.0, "questions": []})
            for points in QUESTION.findall(cell.source):
                assert sections, f"{assignment}: a question announces points before any heading does"
                sections[-1]["questions"].append([float(points), 0.0])
        if meta.get("grade"):
            assert sections, f"{assignment}: graded cell {meta['grade_id']} comes before any announced points"
            section = sections[-1]
            section["graded"] += meta["points"]
            if section["questions"]:
                section["questions"][-1][1] += meta["points"]
    wrong = []
    for section in sections:
        asked = sum(graded for _, graded in section["questions"])
        if section["announced"] not in (section["graded"], section["graded"] - asked) or \
                any(announced != graded for announced, graded in section["questions"]):
            wrong.append((section["title"], section["announced"], section["graded"], section["questions"]))
    assert not wrong, f"{assignment}: announced vs graded points differ (heading, announced, graded, questions): {wrong}"


# ---------------------------------------------------------------- manual_convolution's worked numbers


def test_manual_convolution_prose_is_computed():
    """The worked entries are computed on other inputs than the graded ones (Tasks 1 and 5), with their kernels."""
    text, x, k = prose("manual_convolution"), checks.course_grid("GIF_INPUT"), checks.example_kernel()
    assert x != checks.example_input()
    patch = [row[:3] for row in x[:3]]
    grids = (patch, k, [[p * w for p, w in zip(prow, krow)] for prow, krow in zip(patch, k)])
    for row in range(3):  # the table: patch | kernel | products
        cells = [" ".join(str(int(v)) for v in grid[row]) for grid in grids]
        assert f"| {cells[0]} | {cells[1]} | {cells[2]} |" in text
    products = [int(v) for row in grids[2] for v in row]
    total = sum(products)
    assert total == checks.conv2d_reference(x, k)[0][0]
    assert f"{' + '.join(map(str, products))} = **{total}**".replace("+ -", "- ") in text
    assert f"(5 - 3) / 1 + 1 = {shapes.conv_output_size(5, 3)}" in text
    assert f"floor((3 - 2) / 2) + 1 = floor(0.5) + 1 = **{shapes.pool2d_output_shape((1, 3, 3), 2, 2)[1]}**" in text
    # the multi-channel entry worked out: filter 0 on another input's 2x2 patch
    mx, mw = convviz.MULTI_PATCH, convviz.MULTI_FILTERS
    graded = [[list(row[j:j + 2]) for row in channel[i:i + 2]] for channel in convviz.MULTI_INPUT
              for i in range(2) for j in range(2)]
    assert not [[list(row) for row in channel] for channel in mx if [list(row) for row in channel] in graded]
    assert f"`{[list(row) for row in mx[0]]}` in channel 0 and `{[list(row) for row in mx[1]]}` in channel 1" in text
    parts = [sum(mx[c][a][b] * mw[0][c][a][b] for a in range(2) for b in range(2)) for c in range(2)]
    terms = [" + ".join(f"{mx[c][a][b]}·{mw[0][c][a][b] if mw[0][c][a][b] >= 0 else f'({mw[0][c][a][b]})'}"
                        for a in range(2) for b in range(2)) for c in range(2)]
    assert f"channel 0 gives {terms[0]} = {parts[0]}" in text and f"channel 1 gives {terms[1]} = {parts[1]}" in text
    want = F.conv2d(torch.tensor(mx, dtype=torch.float64)[None], torch.tensor(mw, dtype=torch.float64))[0, 0, 0, 0]
    assert f"that entry is {parts[0]} + {parts[1]} = **{int(want)}**" in text
    patches = F.unfold(torch.zeros(1, 1, 5, 5), (3, 3))
    assert f"{patches.shape[1]} values per patch, {patches.shape[2]} positions" in text


def test_the_gradient_check_shows_rounding_only():
    """The notebook promises a largest difference from autograd around 1e-15: run its cell on the solution."""
    assert "a largest difference around 1e-15, rounding" in prose("manual_convolution")
    cells = {c.id: c.source for c in source("manual_convolution").cells}
    namespace = {"np": np, "torch": torch, "F": F}  # what the notebook's first cell imports
    for cell_id in ("mc-conv2d-naive", "mc-conv2d-input-grad"):
        exec(cells[cell_id], namespace)  # noqa: S102 - the course's own cells
    check = next(source for source in cells.values() if "largest difference from autograd" in source)
    printed = []
    exec(check, {**namespace, "print": lambda *args: printed.append(args)})  # noqa: S102
    assert 0 <= printed[-1][1] < 1e-13, printed


# ---------------------------------------------------------------- output_dimensions' worked numbers


def test_output_dimensions_prose_is_computed():
    text = prose("output_dimensions")
    assert f"(28 - 5) / 2 = {(28 - 5) / 2}" in "\n".join(c.source for c in source("output_dimensions").cells)
    fields = shapes.receptive_fields([(3, 1), (3, 1)])
    assert f"3 + (3 - 1) = {fields[1]} pixels" in text
    worked = shapes.receptive_fields([(3, 1), (3, 1), (2, 2), (3, 1)])
    assert f"the fields are {worked[0]}, then 3 + 2 = {worked[1]}, then 5 + 1 = {worked[2]}" in text
    assert f"6 + 2 · 2 = {worked[3]} pixels" in text
    assert len(checks.PYTORCH_CASES) == 6 and "on six layers that are not Task 1's" in text
    assert not set(checks.PYTORCH_CASES) & set(checks.PAPER_CASES.values())
    conv = ConvModel1(verbose=False).features[1]
    assert f"32 x 1 x 5 x 5 + 32 = **{count_parameters(conv)}**" in text
    assert conv.out_channels == 32 and conv.kernel_size == (5, 5) and conv.padding == (2, 2)


# ---------------------------------------------------------------- cells a student reads in one go

HAND_NOTEBOOKS = ("manual_convolution", "output_dimensions")
MAX_WORDS = 250  # about a screen of prose; a longer explanation is split where its argument turns


@pytest.mark.parametrize("assignment", HAND_NOTEBOOKS)
def test_no_explanation_is_a_wall_of_text(assignment):
    """Markdown cells students read (not the model answers, which they never see) stay under MAX_WORDS words."""
    long = {c.id: len(c.source.split()) for c in source(assignment).cells if c.cell_type == "markdown"
            and not nbgrader_meta(c).get("solution") and len(c.source.split()) > MAX_WORDS}
    assert not long, f"{assignment}: split these cells (words): {long}"


@pytest.mark.parametrize("assignment", HAND_NOTEBOOKS)
def test_a_passing_test_cell_says_so_unless_it_holds_hidden_cases(assignment):
    """The introduction promises a line from every passing test cell except the cells of hidden cases."""
    assert "passes prints a line saying so (a cell of hidden cases prints nothing)" in prose(assignment)
    tests = [c for c in source(assignment).cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    silent = [nbgrader_meta(c)["grade_id"] for c in tests if ("print(" in c.source) == ("HIDDEN TESTS" in c.source)]
    assert tests and not silent, silent
