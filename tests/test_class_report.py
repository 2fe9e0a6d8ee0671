"""The class report (convcourse.grading.course.class_report, ``python -m convcourse.grading report``).

Fast: a gradebook written with nbgrader's own API for tests/tiny_course.py's assignment, autograded
notebooks whose test cells carry the checks' real failure messages, and every number of the report
checked against the table the test wrote. Slow: the course's own sample submissions (right, partial,
blank and two with the classic mistakes of convcourse.grading.demo.classic_mistakes: a flipped kernel, the
multi-channel exercise's first channel only, the receptive field's kernel sizes added up) really graded, each
score the one samples computed, and the report opened in Chromium and read as a reader sees it.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from datetime import datetime
from pathlib import Path

import nbformat
import numpy as np
import pytest
from browser import ARTIFACTS, CHROMIUM_ARGS
from tiny_course import ASSIGNMENT, make_course

from convcourse import checks
from convcourse.diagnosis import MISTAKES
from convcourse.grading import sandbox
from convcourse.grading.__main__ import main
from convcourse.grading.course import class_data, class_report, class_stats
from convcourse.grading.course.released_cells import titles
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.demo import classic_mistakes

ROOT = Path(__file__).resolve().parents[1]
# student: (test_square, test_answer, test_square_hidden, why (None: not graded yet), square left blank, late penalty)
TABLE = {"ann": (1, 2, 1, 1, False, 0.0), "bob": (0, 2, 0, 0.5, False, 0.5), "cat": (0, 2, 0, None, False, 0.0),
         "dan": (1, 0, 1, 0, False, 0.0), "eve": (0, 0, 0, 0, True, 0.0)}
FLIPPED = {"bob", "cat"}  # their test_square failed with the flipped-kernel diagnosis


def flipped_message() -> str:
    """The message the checks really give a conv2d_naive with a flipped kernel."""
    def conv(x, k):
        k = k[::-1, ::-1]
        return np.array([[np.sum(x[i:i + k.shape[0], j:j + k.shape[1]] * k) for j in range(x.shape[1] - k.shape[1] + 1)]
                         for i in range(x.shape[0] - k.shape[0] + 1)])
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_conv2d(conv, [checks.ConvCase(checks.example_input(), checks.example_kernel())])
    return str(failure.value)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """tiny_course graded by hand through nbgrader's API: gradebook, autograded/ and submitted/ as a round leaves them."""
    from nbgrader.api import Gradebook

    root = make_course(tmp_path_factory.mktemp("graded") / "course")
    release = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    message = flipped_message()
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy session warnings
        for student, (square, answer, hidden, why, blank, penalty) in TABLE.items():
            gradebook.add_student(student)
            gradebook.add_submission(ASSIGNMENT, student, timestamp=datetime(2026, 12, 1, 9, 30))
            for name, score in (("test_square", square), ("test_answer", answer), ("test_square_hidden", hidden)):
                grade = gradebook.find_grade(name, ASSIGNMENT, ASSIGNMENT, student)
                grade.auto_score, grade.needs_manual_grade = float(score), False
            grade = gradebook.find_grade("why", ASSIGNMENT, ASSIGNMENT, student)
            grade.auto_score, grade.manual_score, grade.needs_manual_grade = None, why, why is None
            gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).late_submission_penalty = penalty
            nb = nbformat.from_dict(release)
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id == "square" and not blank:
                    cell.source = f"def square(x):\n    return x ** 2  # {student}'s own"
                if grade_id == "test_square" and student in FLIPPED:
                    cell.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue=message, traceback=[])]
            for folder in ("autograded", "submitted"):
                (root / folder / student / ASSIGNMENT).mkdir(parents=True)
                nbformat.write(nb, root / folder / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
            gradebook.db.commit()
    return root


def test_the_numbers_are_the_gradebooks(graded):
    (data,) = class_data.read_class(graded)
    totals = {s: sq + an + hi + (why or 0) for s, (sq, an, hi, why, _, _) in TABLE.items()}
    assert {s.student: s.score for s in data.submissions} == totals
    assert {s.student: s.late_penalty for s in data.submissions} == {s: row[5] for s, row in TABLE.items()}
    question = next(q for q in data.questions if q.grade_id == "test_answer")
    stats = class_stats.question_stats(question.scores, question.max_score, totals)
    answers = np.array([TABLE[s][1] for s in TABLE])
    rest = np.array([totals[s] for s in TABLE]) - answers
    assert stats.mean == pytest.approx(answers.mean()) and stats.full_share == pytest.approx(0.6)
    assert stats.discrimination == pytest.approx(np.corrcoef(answers, rest)[0, 1])
    why = class_stats.question_stats(next(q for q in data.questions if q.written).scores, 1, totals)
    assert (why.graded, why.waiting) == (4, 1)
    assert dict(data.blank) == {"square": {"eve"}, "answer": set(TABLE), "why": set(TABLE)}  # as released
    assert dict(data.mistakes) == {("test_square", "flipped-kernel"): FLIPPED}


def test_statistics_that_do_not_exist_are_not_made_up():
    assert class_stats.pearson([1, 1, 1], [0, 1, 2]) is None and class_stats.pearson([1, 2], [2, 1]) is None
    assert class_stats.question_stats({"a": None}, 2, {"a": 3}).mean is None
    assert class_stats.distribution([0, 2, 2, 1.5], 2) == [(0.0, 1), (0.5, 0), (1.0, 0), (1.5, 1), (2.0, 2)]


def test_the_page_is_self_contained_and_says_who_made_which_mistake(graded, capsys):
    assert main(["--root", str(graded), "report"]) == 0
    page = (graded / "class_report.html").read_text()
    mean = sum(sq + an + hi + (why or 0) for sq, an, hi, why, _, _ in TABLE.values()) / len(TABLE)
    assert capsys.readouterr().out.splitlines() == [
        f"tiny: 5 submissions, mean {mean:.2f} of 5", "  kernel flipped (textbook convolution): 2 of 5 students on Tiny "
        "[flipped-kernel]", f"wrote {graded / 'class_report.html'}"]
    assert "<b>kernel flipped (textbook convolution)</b>: 2 of 5 students on <code>tiny</code> Tiny" in page
    assert page.count('src="data:image/png;base64,') == 3  # totals, questions, mistakes: all inline
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "5 submissions, 1 with a late penalty" in page and "<td class=num>0.5</td>" in page
    assert "1 of 5</td>" in page  # square left blank by one student
    assert "Similar submissions" in page


@pytest.mark.parametrize("prepare, message", [
    (lambda root: (root / "gradebook.db").unlink(), "no gradebook at"),
    (lambda root: None, "holds no graded submission yet"),
])
def test_without_grades_there_is_no_report(tmp_path, capsys, prepare, message):
    root = make_course(tmp_path / "course")
    prepare(root)
    assert main(["--root", str(root), "report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and not (root / "class_report.html").exists()


# ---------------------------------------------------------------- end to end: graded for real, read in a browser

GRADED = ("manual_convolution", "output_dimensions")  # the quick ones: no training


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not sandbox.sandbox_status().available, reason=sandbox.sandbox_status().reason)
def test_a_graded_class_read_in_a_real_browser(chromium):
    from playwright import sync_api

    from convcourse.grading.demo import samples

    folder = Path(tempfile.mkdtemp(prefix="convcourse-report-", dir="/var/tmp"))  # outside the kernels' private /tmp
    folder.chmod(0o755)
    try:
        root = folder / "course"
        root.mkdir()
        shutil.copy2(ROOT / "nbgrader_config.py", root)
        for assignment in GRADED:
            for kind in ("source", "release"):
                shutil.copytree(ROOT / kind / assignment, root / kind / assignment)
        made = samples.write_examples(root, list(GRADED), samples.DEMO_CASES + samples.MISTAKE_CASES)
        for assignment in GRADED:  # a second student with the same mistakes: the report counts 2 of 5
            twin = samples.build(samples.context(root, assignment), "mistakes")
            twin.write(root, "mistakes-2")
            made.append(dataclasses.replace(twin, case="mistakes_2"))
        env = {**os.environ, "CONVCOURSE_DATASET": "digits"}
        for command in (["grade", "--jobs", "2"], ["report"]):
            done = subprocess.run([sys.executable, "-m", "convcourse.grading", "--root", str(root), *command],
                                  capture_output=True, text=True, timeout=900, env=env)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        scores = autograded_scores(root)
        assert {(s.student, s.assignment): s.expected for s in made} == \
            {(s.student, s.assignment): scores[s.student, s.assignment][0] for s in made}
        expected = []  # each planted mistake, counted on the task of the first test that reads its cell
        for assignment in GRADED:
            ctx = samples.context(root, assignment)
            task = titles(ctx.release)
            expected += [(assignment, f"{MISTAKES[tag]}: 2 of 5 students on {assignment} "
                          f"{task[classic_mistakes.tested_by(ctx.source, grade_id)].replace('`', '')} [{tag}]")
                         for grade_id, tag in classic_mistakes.plant(ctx.source)[1].items()]
        assert len(expected) == 3
        requests = []
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 1800})
                page.on("request", lambda request: requests.append(request.url))
                page.goto((root / class_report.REPORT_FILE).as_uri())
                assert page.locator("h2").all_inner_texts() == list(GRADED)
                for assignment, line in expected:
                    mistakes = page.locator(f"#{assignment} ~ ul.mistakes").first.inner_text()
                    assert line in mistakes, mistakes
                loaded = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
                assert loaded and all(loaded)
                pair = page.locator("ol.similar details").first
                pair.locator("summary").click()
                assert pair.locator("mark").first.is_visible()
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "class-report.png"), full_page=True)
            finally:
                browser.close()
        assert all(url.startswith(("file:", "data:")) for url in requests), requests  # nothing from a network
    finally:
        shutil.rmtree(folder)

