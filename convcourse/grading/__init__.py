"""The instructor's side of convcourse: release, sandboxed autograding, feedback and grades.

Nothing here is imported by a student's notebook (the graded kernel runs only
:mod:`convcourse.grading.nbgrader.kernel_guard`, which the grader injects). The command line is
``python -m convcourse.grading {release,grade,demo}``; ``nbgrader_config.py`` plugs
:mod:`~convcourse.grading.nbgrader.preprocessors` and :mod:`~convcourse.grading.nbgrader.kernel_manager` into nbgrader.

Importing this package imports nothing else, so the sandbox launcher and the kernel guard,
which live below it, start fast.
"""
