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


def _env_int(name, default):
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# ---- autograding limits (each can be overridden from the environment for one run)
# A cell running longer than this is interrupted; the notebook goes on with the next cell.
# (Generous: with the training budget a training cell of cnn_experiments takes up to ~45 s on 2 busy cores.)
c.Execute.timeout = _env_int("CONVCOURSE_CELL_TIMEOUT", 120)
c.Execute.interrupt_on_timeout = True
# A whole notebook gets this long; cells after that are marked "not run" (their tests score 0).
c.GradingExecute.notebook_timeout = _env_int("CONVCOURSE_NOTEBOOK_TIMEOUT", 600)
# Memory (data segment) of a kernel, its private /tmp, and the largest file it may write, in MiB.
c.SandboxedKernelManager.memory_mb = _env_int("CONVCOURSE_KERNEL_MEMORY_MB", 4096)
c.SandboxedKernelManager.tmp_mb = _env_int("CONVCOURSE_KERNEL_TMP_MB", 512)
c.SandboxedKernelManager.file_size_mb = _env_int("CONVCOURSE_KERNEL_FILE_MB", 1024)
# Test cells a student deleted are put back (locked test cells are always restored from the gradebook).
c.OverwriteCells.add_missing_cells = True

# The training budget for grading (every convcourse.fit in a graded kernel stops after
# convcourse.budget.GRADING_STEPS steps, and says so; $CONVCOURSE_MAX_STEPS overrides it for a run)
# is set by configure_autograde below, in the environment of the graded kernels only: a student's
# own JupyterLab session is never shortened.

# ---- the sandbox: nbgrader's Execute/OverwriteCells replaced by convcourse's (convcourse/grading/preprocessors.py),
# kernels run without network, as their own user (as root) or in bubblewrap (as an ordinary user), with the
# course's private files hidden and a minimal environment.
try:
    from convcourse.grading.preprocessors import configure_autograde
except ImportError as error:  # nbgrader run outside the course's environment: refuse to grade blind
    if "autograde" in sys.argv[1:2]:
        raise SystemExit(f"convcourse is not importable here ({error}); autograding needs its sandbox") from error
else:
    configure_autograde(c, ROOT, command=sys.argv[1] if len(sys.argv) > 1 else "")
