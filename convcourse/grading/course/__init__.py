"""The course folder as the instructor's commands see it: the folder itself, its gradebook, release, report, archive.

``ASSIGNMENTS`` is named here as well as in :mod:`convcourse.grading.course.folder`: ``authoring.build``
and the tests read the course's assignments as ``convcourse.grading.course.ASSIGNMENTS``.
"""
from convcourse.grading.course.folder import ASSIGNMENTS

__all__ = ["ASSIGNMENTS"]
