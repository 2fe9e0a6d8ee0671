"""The course's late policy as nbgrader's late-submission plugin: none, zero, or a share of the score per day late.

nbgrader's ``AssignLatePenalties`` preprocessor (the last step of ``autograde``) asks the plugin in
``c.AssignLatePenalties.plugin_class`` for each notebook of a late submission, with the notebook's score
and how many seconds after its due date (the assignment's, plus the student's extension) the submission's
``timestamp.txt`` lies; it stores the answer, at most the score, as the notebook's
``late_submission_penalty``, which the feedback page, ``grades.csv`` and convcourse's exports subtract.
:func:`convcourse.grading.course.deadlines.apply_penalties` asks the same plugin again after each grade
round, so that a new due date, extension or manual grade changes the penalty without a regrade.
"""
from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Enum, Float, TraitError, validate

DAY = 86400.0


def late_share(method: str, seconds_late: float, *, per_day: float = 0.0, cap: float = 1.0,
               grace_minutes: float = 0.0) -> float:
    """The share of the score a submission this late loses: 0, 1 ('zero'), or per_day per day begun up to cap."""
    if seconds_late <= grace_minutes * 60 or method == "none":
        return 0.0
    if method == "zero":
        return 1.0
    return min(cap, per_day * math.ceil(seconds_late / DAY))


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin with one more method: a share of the score per day late, with a cap."""

    penalty_method = Enum(("none", "zero", "per_day"), default_value="none",
                          help="'none': no penalty; 'zero': a late notebook scores 0; "
                               "'per_day': per_day of its score per day late (a day begun counts), at most cap"
                          ).tag(config=True)
    per_day = Float(0.1, help="share of the score taken per day late, for penalty_method 'per_day'").tag(config=True)
    cap = Float(1.0, help="the largest share of the score taken, for penalty_method 'per_day'").tag(config=True)
    grace_minutes = Float(0.0, help="a submission at most this late counts as on time").tag(config=True)

    @validate("per_day", "cap")
    def _share(self, proposal):
        if not 0.0 <= proposal["value"] <= 1.0:
            raise TraitError(f"LatePenalty.{proposal['trait'].name} must be a share between 0 and 1, "
                             f"not {proposal['value']}")
        return proposal["value"]

    @validate("grace_minutes")
    def _grace(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"LatePenalty.grace_minutes cannot be negative ({proposal['value']})")
        return proposal["value"]

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        """Points taken from a notebook of ``score`` points handed in ``total_seconds_late`` seconds late."""
        share = late_share(self.penalty_method, total_seconds_late, per_day=self.per_day, cap=self.cap,
                           grace_minutes=self.grace_minutes)
        return share * (score or 0.0)
