"""nbgrader configuration for the convcourse course (read by every `nbgrader` command run here)."""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - injected by nbgrader

ROOT = Path(__file__).resolve().parent

# On a hub each course's Formgrader is a service named after the course (nbgrader's rule, docs/hub.md): a copy of
# this course run there under another id takes that id from the service.
c.CourseDirectory.course_id = os.environ.get("JUPYTERHUB_SERVICE_NAME") or "convcourse"
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

# ---- autograding limits: per cell and notebook, a kernel's memory, /tmp and file size. configure_autograde
# below sets them from convcourse.grading.settings (defaults there; each can be overridden from the environment
# for one run, e.g. CONVCOURSE_CELL_TIMEOUT=300). A value set here instead wins over both, e.g.:
# c.Execute.timeout = 300
# A cell past its limit is interrupted, and the notebook goes on with the next cell.
c.Execute.interrupt_on_timeout = True
# Test cells a student deleted are put back (locked test cells are always restored from the gradebook).
c.OverwriteCells.add_missing_cells = True

# The training budget for grading (every convcourse.fit in a graded kernel stops after
# convcourse.budget.GRADING_STEPS steps, and says so; $CONVCOURSE_MAX_STEPS overrides it for a run)
# is set by configure_autograde below, in the environment of the graded kernels only: a student's
# own JupyterLab session is never shortened.

# ---- deadlines and late penalties (docs/grades.md). nbgrader measures lateness from each submission's
# timestamp.txt against the due date, plus the student's extension; the grade round (and `export`) writes
# both into the gradebook and applies the policy to every submitted notebook again.
c.AssignLatePenalties.plugin_class = "convcourse.grading.nbgrader.late_penalty.LatePenalty"
c.LatePenalty.penalty_method = "none"  # "none", "zero" (a late notebook scores 0) or "per_day":
c.LatePenalty.per_day = 0.1  # per_day takes this share of the score for each day late, a day begun counting whole,
c.LatePenalty.cap = 0.5  # up to this share
# Due dates with their time zone; an assignment not named here keeps the gradebook's (formgrader's) due date.
c.Deadlines.due = {}  # e.g. {"manual_convolution": "2026-12-01 23:59 Europe/Berlin"}
# Extensions: extensions.csv in this folder, columns student,assignment,extension (days, or the student's own due date).

# ---- the sandbox: nbgrader's Execute/OverwriteCells replaced by convcourse's (convcourse/grading/nbgrader/preprocessors.py),
# kernels run without network, as their own user (as root) or in bubblewrap (as an ordinary user), with the
# course's private files hidden and a minimal environment.
try:
    from convcourse.grading.nbgrader.preprocessors import configure_autograde
except ImportError as error:  # nbgrader run outside the course's environment: refuse to grade blind
    if "autograde" in sys.argv[1:2]:
        raise SystemExit(f"convcourse is not importable here ({error}); autograding needs its sandbox") from error
else:
    configure_autograde(c, ROOT, command=sys.argv[1] if len(sys.argv) > 1 else "")
