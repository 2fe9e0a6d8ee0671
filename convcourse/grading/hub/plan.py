"""What the demo hub makes (courses, accounts, where, which port) and its class list: data, no side effects."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATE = Path("/srv/convcourse-hub")
COURSE_ID = re.compile(r"[a-z][a-z0-9-]{0,19}")  # account names stay valid (useradd) and under 32 characters


class HubError(RuntimeError):
    """The demo hub cannot be set up or removed here (the message says why and what to do)."""


@dataclass(frozen=True)
class Plan:
    """What ``hub up`` makes: courses, students per course, assignments released, where and on which port."""

    courses: tuple[str, ...] = ("convcourse",)
    students: int = 3
    assignments: tuple[str, ...] = ()  # () = every assignment of the course
    state: Path = STATE
    ip: str = "127.0.0.1"
    port: int = 8000

    def people(self, course: str) -> dict[str, list[str]]:
        """The accounts of one course: grader, instructors, students."""
        return {"grader": f"grader-{course}", "instructors": [f"{course}-instructor"],
                "students": [f"{course}-student{n}" for n in range(1, self.students + 1)]}

    def accounts(self) -> list[str]:
        """Every account the demo makes, graders first."""
        return [name for course in self.courses for group in self.people(course).values()
                for name in ([group] if isinstance(group, str) else group)]


def class_list(plan: Plan) -> dict:
    """The hub's courses.json (the format hub/jupyterhub_config.py reads)."""
    return {"courses": {course: plan.people(course) for course in plan.courses}}


def remove_command(plan: Plan) -> str:
    """The one command that removes the demo hub."""
    state = "" if plan.state == STATE else f" --state {plan.state}"
    return f"python -m convcourse.grading hub down{state}"
