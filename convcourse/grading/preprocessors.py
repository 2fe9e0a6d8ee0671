"""Kept for deployed ``nbgrader_config.py`` files, which import ``convcourse.grading.preprocessors.configure_autograde``.

The preprocessors live in :mod:`convcourse.grading.nbgrader.preprocessors`; this module hands its names on.
"""
from convcourse.grading.nbgrader.preprocessors import GradingExecute, RestoreCells, configure_autograde

__all__ = ["GradingExecute", "RestoreCells", "configure_autograde"]
