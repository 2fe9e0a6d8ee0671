"""What every forked grading job would pay on first use, paid once in the process the jobs fork from.

A job renders a feedback page and runs nbgrader's gradebook queries. The first time a process does
either costs it ~0.4 s: Jinja's lexer, Pygments' lexers, the Markdown parser and nbconvert's filters
are built on first use, and SQLAlchemy builds nbgrader's ORM statements (its score columns are
correlated subqueries) on first use too. The grader, and a Dask worker's job server, do both once
before forking, so each job starts with them built, and with the feedback page's templates compiled
(:mod:`convcourse.grading.nbgrader.feedback_page`).
"""
from __future__ import annotations

from pathlib import Path

from convcourse.grading.course.folder import Course
from convcourse.grading.nbgrader import kernel_python


def pay_once(course: Course, gradebook: Path | None = None) -> bool:
    """Run one round of a job's gradebook reads (on ``gradebook``, default the course's), render one feedback
    page with the course's config and ask the kernels' interpreter what it imports (:meth:`Course.hidden`) here;
    False if that failed.

    Only a head start: a job does the real work either way, so a failure costs time, never a grade.
    """
    try:
        _gradebook_queries(course.gradebook if gradebook is None else gradebook)
        _feedback_page(course.config)
        kernel_python.hidden(course)  # the kernels' interpreter, asked once: each job's config hides its checkout
    except Exception:  # noqa: BLE001 - see the docstring
        return False
    return True


def _gradebook_queries(db: Path) -> None:
    """The lookups autograde and generate_feedback make, for a student nobody has, in the gradebook ``db``."""
    from nbgrader.api import Gradebook, MissingEntry

    nobody = name = "convcourse-preload"
    lookups = {"find_student": (nobody,), "find_assignment": (name,), "find_notebook": (name, name),
               "find_submission": (name, nobody), "find_submission_notebook": (name, name, nobody),
               "find_grade": (name, name, name, nobody), "find_comment": (name, name, name, nobody),
               "find_grade_cell": (name, name, name), "find_solution_cell": (name, name, name),
               "find_source_cell": (name, name, name)}
    if not Path(db).is_file():
        raise FileNotFoundError(db)  # nbgrader would create one, with its own schema migration
    with Gradebook(f"sqlite:///{db}") as gradebook:
        for lookup, arguments in lookups.items():
            try:
                getattr(gradebook, lookup)(*arguments)
            except MissingEntry:
                pass


def _feedback_page(config) -> None:
    """Render one small page with the course's feedback exporter, as nbgrader's generate_feedback configures it."""
    import nbformat
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    converter = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
    exporter = converter.exporter_class(parent=converter, config=converter.config)
    code = nbformat.v4.new_code_cell("import torch\nprint(torch.zeros(2))  # a test cell", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="tensor([0., 0.])\n"),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="no",
                               traceback=["\x1b[0;31mAssertionError\x1b[0m: no"]),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})])
    code.metadata["nbgrader"] = {"grade": True, "grade_id": "warm", "points": 1, "solution": False, "locked": True,
                                 "score": 0, "comment": "*no*"}  # what GetGrades adds
    page = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Warm\n*a* `b` $x^2$"), code])
    page.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    page.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    resources = {"nbgrader": {"notebook": "warm", "score": 0, "max_score": 1, "late_penalty": 0}}
    exporter.from_notebook_node(page, resources=resources)
