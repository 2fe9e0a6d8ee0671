"""nbgrader configuration for the convcourse course (read by every `nbgrader` command run here)."""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - injected by nbgrader

ROOT = Path(__file__).resolve().parent

c.CourseDirectory.course_id = "convcourse"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = f"sqlite:///{ROOT / 'gradebook.db'}"
c.CourseDirectory.assignment_id = ""

# Generated student notebooks carry no outputs from the instructor's run.
c.ClearOutput.enabled = True

# A cell that runs longer than this is interrupted; the notebook goes on with the next cell.
c.Execute.timeout = int(os.environ.get("CONVCOURSE_CELL_TIMEOUT", "60"))
c.Execute.interrupt_on_timeout = True

# The training budget for grading: every convcourse.fit in an autograded notebook stops after
# this many steps (and says so), so a student's notebook is graded in seconds, not minutes.
# Only the grading commands set it; a student's own JupyterLab session is never shortened.
if any(cmd in sys.argv[1:2] for cmd in ("autograde", "formgrader")):
    os.environ.setdefault("CONVCOURSE_MAX_STEPS", "20")
