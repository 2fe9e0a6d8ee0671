"""Statistics of one question across a class: pure functions over the scores the gradebook holds.

Nothing here grades: every number is computed from scores nbgrader recorded (``None`` where a
written answer still waits for its manual grade, left out of every statistic).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class QuestionStats:
    """What the report shows of one question."""

    graded: int  # students with a score
    waiting: int  # written answers not graded by hand yet
    mean: float | None
    full_share: float | None  # share of the graded students with full marks
    discrimination: float | None  # correlation with the rest of the assignment; None when undefined


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's correlation of two equally long series; None with fewer than 3 pairs or a constant series."""
    if len(xs) != len(ys):
        raise ValueError(f"series of different lengths: {len(xs)} and {len(ys)}")
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(sxx * syy)


def discrimination(question: Mapping[str, float | None], totals: Mapping[str, float]) -> float | None:
    """Corrected item-total correlation: the question's score against the rest of each student's assignment score.

    The rest leaves the question out, so an item is not correlated with itself; students without a
    score for the question (an answer waiting for its manual grade) are left out.
    """
    students = [s for s, score in question.items() if score is not None and s in totals]
    return pearson([question[s] for s in students], [totals[s] - question[s] for s in students])


def question_stats(question: Mapping[str, float | None], max_score: float, totals: Mapping[str, float]
                   ) -> QuestionStats:
    """Mean, share of full marks and discrimination of one question ({student: score or None})."""
    scores = [score for score in question.values() if score is not None]
    waiting = len(question) - len(scores)
    if not scores:
        return QuestionStats(0, waiting, None, None, None)
    full = sum(score >= max_score for score in scores) / len(scores)
    return QuestionStats(len(scores), waiting, sum(scores) / len(scores), full, discrimination(question, totals))


def distribution(scores: Sequence[float], max_score: float) -> list[tuple[float, int]]:
    """(score, students) for each score from 0 to ``max_score`` in steps of the smallest unit seen (0.5 or 1)."""
    step = 0.5 if any(score % 1 for score in scores) else 1.0
    points = [i * step for i in range(int(round(max_score / step)) + 1)]
    counts = {p: 0 for p in points}
    for score in scores:
        nearest = min(points, key=lambda p: abs(p - score))
        counts[nearest] += 1
    return sorted(counts.items())
