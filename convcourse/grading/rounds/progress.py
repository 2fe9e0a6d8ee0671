"""Progress of a grade round: one live line (done/total, submissions per minute, ETA) and a line per submission.

The live line is tqdm's and appears only on a terminal (``disable=None``), so CI logs and redirected
output get the per-submission lines alone. Everything runs in the grader's main process, where the
results arrive one at a time.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from tqdm.auto import tqdm


def submission_line(student: str, assignment: str, seconds: float, score: tuple[float, float] | None,
                    problem: str = "") -> str:
    """One finished submission: who, what, its autograded score, how long it took, and any problem."""
    scored = f"{score[0]:g} / {score[1]:g}" if score is not None else "not scored"
    note = f"  PROBLEM: {problem}" if problem else ""
    return f"  {student}/{assignment}: {scored} in {seconds:.1f} s{note}"


class Progress:
    """The live line (on ``file``, stderr) and the per-submission lines (``log``, or ``out`` under a live line).

    ``live=None`` shows the live line only when ``file`` is a terminal.
    """

    def __init__(self, total: int, *, log: Callable[[str], object] = print, live: bool | None = None,
                 file: TextIO | None = None, out: TextIO | None = None) -> None:
        self.log, self.out, self.started = log, out, time.monotonic()
        self.bar = tqdm(total=total, unit="submission", file=file or sys.stderr, disable=None if live is None else not live,
                        dynamic_ncols=True, leave=False, desc="grading",
                        bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| ETA {remaining}{postfix}")

    def finished(self, line: str) -> None:
        """Print ``line`` above the live line and move the live line on by one."""
        if self.bar.disable:
            self.log(line)
        else:
            self.bar.write(line, file=self.out or sys.stdout)  # clears the live line, writes, redraws it
        self.bar.update(1)
        self.bar.set_postfix_str(f"{self.per_minute():.1f} submissions/min", refresh=True)

    def per_minute(self) -> float:
        """Submissions finished per minute since the round started."""
        return self.bar.n * 60 / max(time.monotonic() - self.started, 1e-9)

    def close(self) -> None:
        """Take the live line away (the per-submission lines stay)."""
        self.bar.close()
