"""What a grade round does before its jobs: sync the gradebook from source/ (only what changed), warm up the grader, and
find the submissions whose assignment's tests or points changed since they were graded."""
from __future__ import annotations

import json
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.apps.api import NbGraderAPI
from tiny_course import ASSIGNMENT, make_course

from convcourse.grading.course.folder import SYNC_FILE, Course, load_course, sync_gradebook
from convcourse.grading.rounds import regrade
from convcourse.grading.rounds.preload import pay_once


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("built") / "course")  # seconds: nbgrader creates the gradebook


@pytest.fixture
def course(built, tmp_path):
    return shutil.copytree(built, tmp_path / "course")  # its nbgrader_config.py finds its root from where it lies


@pytest.fixture
def syncs(monkeypatch) -> list[str]:
    """Every assignment nbgrader's generate_assignment is asked for, in order."""
    calls: list[str] = []
    original = NbGraderAPI.generate_assignment

    def counted(self, assignment_id, *args, **kwargs):
        calls.append(assignment_id)
        return original(self, assignment_id, *args, **kwargs)

    monkeypatch.setattr(NbGraderAPI, "generate_assignment", counted)
    return calls


def _max_score(path) -> float:
    """The assignment's points in the gradebook ``path`` (or the course folder's)."""
    with Gradebook(f"sqlite:///{path if path.suffix == '.db' else path / 'gradebook.db'}") as gradebook:
        return gradebook.find_assignment(ASSIGNMENT).max_score


def test_an_unchanged_assignment_is_synced_once(course, syncs):
    sync_gradebook(load_course(course))
    sync_gradebook(load_course(course))
    assert syncs == [ASSIGNMENT] * 2  # the course's gradebook and the assignment's job gradebook, once
    assert ASSIGNMENT in json.loads((course / "autograded" / SYNC_FILE).read_text())


def test_a_changed_source_is_synced_again(course, syncs):
    sync_gradebook(load_course(course))
    before = _max_score(course)
    path = course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    test = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_answer")
    test.metadata["nbgrader"]["points"] = 5  # was 2
    nbformat.write(notebook, path)
    sync_gradebook(load_course(course))
    assert syncs == [ASSIGNMENT] * 4
    assert _max_score(course) == before + 3
    assert _max_score(load_course(course).job_gradebook(ASSIGNMENT)) == before + 3


def test_a_gradebook_changed_behind_its_back_is_synced_again(course, syncs):
    sync_gradebook(load_course(course))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        gradebook.remove_assignment(ASSIGNMENT)
    sync_gradebook(load_course(course))
    assert syncs == [ASSIGNMENT] * 4
    assert _max_score(course) == 5  # the tiny course's points, back


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own session handling
def test_a_job_gradebook_holds_its_assignment_and_no_student_and_comes_back_when_removed(course, syncs):
    loaded = load_course(course)
    with Gradebook(f"sqlite:///{loaded.gradebook}") as gradebook:
        gradebook.add_student("someone")
        gradebook.add_submission(ASSIGNMENT, "someone")
    sync_gradebook(loaded)
    with Gradebook(f"sqlite:///{loaded.job_gradebook(ASSIGNMENT)}") as gradebook:
        assert [a.name for a in gradebook.assignments] == [ASSIGNMENT] and gradebook.students == []
    loaded.job_gradebook(ASSIGNMENT).unlink()
    sync_gradebook(loaded)
    assert syncs == [ASSIGNMENT] * 4 and loaded.job_gradebook(ASSIGNMENT).is_file()


def test_an_unreadable_record_means_sync_again(course, syncs):
    sync_gradebook(load_course(course))
    (course / "autograded" / SYNC_FILE).write_text("{not json")
    sync_gradebook(load_course(course))
    assert syncs == [ASSIGNMENT] * 4


def test_preloading_renders_a_feedback_page_and_reads_the_gradebook(course, tmp_path):
    loaded = load_course(course)
    assert pay_once(loaded) is True
    nowhere = Course(tmp_path / "not-a-course", loaded.config, loaded.assignments, ())
    assert pay_once(nowhere) is False  # a head start only: never an error


def test_feedback_pages_reuse_the_compiled_templates_and_are_nbconverts_page(course, monkeypatch):
    from bs4 import BeautifulSoup
    from jinja2 import Environment
    from nbconvert.exporters import HTMLExporter
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from convcourse.grading.nbgrader.feedback_page import COMPILED, NO_DESCRIPTION, FeedbackExporter

    config = load_course(course).config
    converter = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
    assert converter.exporter_class is FeedbackExporter  # what the course's nbgrader_config.py sets
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    page = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Feedback\n![a digit](data:image/png;base64,iVBORw0KGgo=) <IMG SRC=x title='a>b'>"),
        nbformat.v4.new_code_cell("print(1)", execution_count=1, outputs=[figure])])
    resources = {"nbgrader": {"notebook": "n", "score": 0, "max_score": 1, "late_penalty": 0}}
    COMPILED.clear()
    compiled = []
    original = Environment.compile

    def counted(self, *args, **kwargs):
        compiled.append(args[1] if len(args) > 1 else kwargs.get("name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", counted)
    first, _ = FeedbackExporter(parent=converter, config=converter.config).from_notebook_node(page, resources=dict(resources))
    assert compiled and len(COMPILED) == len(compiled)  # every template of the page, kept
    compiled.clear()
    again, _ = FeedbackExporter(parent=converter, config=converter.config).from_notebook_node(page, resources=dict(resources))
    assert compiled == []  # a new exporter, as each generate_feedback makes: nothing compiled again
    plain, _ = HTMLExporter(parent=converter, config=converter.config).from_notebook_node(page, resources=dict(resources))
    assert first == again
    # nbconvert's exporter parses its page again to describe images; ours describes them in the text: the same document
    assert str(BeautifulSoup(first, features="html.parser")) == plain
    assert first.count(f'alt="{NO_DESCRIPTION}"') == 2  # the figure and the raw <IMG>; the Markdown image has its own


def test_one_worker_starts_each_student_on_the_assignment_with_the_fewest_code_cells(tmp_path):
    from convcourse.grading.rounds.pipeline import quickest_first

    for assignment, cells in {"a_long": 3, "b_short": 1, "c_mid": 2}.items():
        folder = tmp_path / "source" / assignment
        folder.mkdir(parents=True)
        code = [nbformat.v4.new_code_cell(f"x = {n}") for n in range(cells)]
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), *code]), folder / "nb.ipynb")
    pairs = [(s, a) for s in ("s1", "s2") for a in ("a_long", "b_short", "c_mid")]
    assert quickest_first(tmp_path, pairs) == [("s1", "b_short"), ("s1", "c_mid"), ("s1", "a_long"),
                                               ("s2", "b_short"), ("s2", "c_mid"), ("s2", "a_long")]


# ---------------------------------------------------------------- regrading when an assignment's tests change


def _edit_cell(root, grade_id: str, edit) -> None:
    path = root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    edit(next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id))
    nbformat.write(notebook, path)


def _digest_after(root, edit=None) -> str:
    if edit is not None:
        edit(root)
    sync_gradebook(load_course(root))
    return regrade.tests_digest(root, ASSIGNMENT)


@pytest.mark.parametrize("what, edit", [
    ("points", lambda root: _edit_cell(root, "test_answer", lambda c: c.metadata["nbgrader"].update(points=3))),
    ("hidden test", lambda root: _edit_cell(root, "test_square_hidden",
                                            lambda c: setattr(c, "source", c.source.replace("square(-2) == 4",
                                                                                            "square(-3) == 9")))),
    ("helper file", lambda root: (root / "source" / ASSIGNMENT / "helper.py").write_text("SIZE = 3\n")),
])
def test_the_tests_digest_follows_tests_points_and_files(course, what, edit):
    assert _digest_after(course) != _digest_after(course, edit), what


def test_the_tests_digest_ignores_the_due_date(course):
    from convcourse.grading.course.deadlines import sync as sync_deadlines

    before = _digest_after(course)
    (course / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text()
                                               + '\nc.Deadlines.due = {"tiny": "2026-12-01 23:59 UTC"}\n')
    sync_deadlines(course)
    assert _digest_after(course) == before


def test_submissions_graded_with_other_tests_are_graded_again():
    tests = {"tiny": "new", "other": "same"}
    state = {"a/tiny": {"digest": "x", "tests": "old"}, "b/tiny": {"digest": "y", "tests": "new"},
             "c/other": {"digest": "z", "tests": "same"}, "d/tiny": {"digest": "w"}}  # d: graded before tests were kept
    pairs = [("a", "tiny"), ("b", "tiny"), ("c", "other"), ("d", "tiny"), ("e", "tiny")]  # e: never graded
    assert regrade.new_tests(state, pairs, tests) == {("a", "tiny")}
    assert state["d/tiny"]["tests"] == "new"  # recorded from now on


def test_a_changed_score_is_reported_from_what_to_what():
    assert regrade.score_change("alice", "tiny", (3.0, 4.0), (4.0, 4.0)) == "alice/tiny: 3 / 4 -> 4 / 4"
    assert regrade.score_change("alice", "tiny", (3.0, 4.0), (3.0, 5.0)) == "alice/tiny: 3 / 4 -> 3 / 5"
    assert regrade.score_change("alice", "tiny", (3.0, 4.0), (3.0, 4.0)) is None
    assert regrade.score_change("alice", "tiny", None, (3.0, 4.0)) is None  # first grading: nothing changed
