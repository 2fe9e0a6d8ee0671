"""The training budget: ``$CONVCOURSE_MAX_STEPS`` caps every ``convcourse.fit`` (the one home of this rule).

Graded kernels get :data:`GRADING_STEPS` unless the instructor sets the variable; the test suite
and the notebook build run with :data:`TEST_STEPS`, and :data:`SMOKE_STEPS` where a test only
proves that a notebook runs; a student's own session has no budget at all. Torch-free, so the
grader and ``nbgrader_config.py`` can read it cheaply.
"""
from __future__ import annotations

import os
from typing import Mapping

BUDGET_ENV = "CONVCOURSE_MAX_STEPS"
GRADING_STEPS = 20  # every fit in an autograded notebook: seconds per notebook, not minutes
TEST_STEPS = 50  # nbval over source/ and the notebook build: enough steps for the checked outputs
SMOKE_STEPS = 5  # notebooks run only to prove they still run (old releases against a new package)
EVAL_IMAGES = 1000  # images scored per evaluation while a budget is set (a graded cnn_experiments evaluates ~20 times)


class BudgetError(ValueError):
    """$CONVCOURSE_MAX_STEPS is set to something that is not a positive count of steps."""


def step_budget(environ: Mapping[str, str] | None = None) -> int | None:
    """The step cap from $CONVCOURSE_MAX_STEPS (None when unset or empty); BudgetError when it is no count."""
    raw = (os.environ if environ is None else environ).get(BUDGET_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise BudgetError(f"{BUDGET_ENV} must be a positive whole number of steps, got {raw!r}")
    return int(raw)


def grading_budget(environ: Mapping[str, str] | None = None) -> int:
    """The budget graded kernels get: the instructor's $CONVCOURSE_MAX_STEPS, else GRADING_STEPS."""
    return step_budget(environ) or GRADING_STEPS


def grading_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What graded kernels' environment sets for the budget (the kernel manager's and the warm template's)."""
    return {BUDGET_ENV: str(grading_budget(environ))}
