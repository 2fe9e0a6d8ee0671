"""The grade round's progress: a line per finished submission always, tqdm's live line only where asked."""
import io

from convcourse.grading.rounds.progress import Progress, submission_line


def test_a_finished_submission_is_one_line_with_score_time_and_problem():
    assert submission_line("ada", "output_dimensions", 2.04, (9, 9)) == "  ada/output_dimensions: 9 / 9 in 2.0 s"
    assert submission_line("bob", "cnn_experiments", 12.0, (4.5, 8)) == "  bob/cnn_experiments: 4.5 / 8 in 12.0 s"
    line = submission_line("eve", "manual_convolution", 0.3, None, "no manual_convolution.ipynb in the submission")
    assert line == "  eve/manual_convolution: not scored in 0.3 s  PROBLEM: no manual_convolution.ipynb in the submission"


def test_without_a_terminal_only_the_lines_are_printed():
    lines, screen = [], io.StringIO()
    progress = Progress(2, log=lines.append, file=screen)  # live=None: a StringIO is no terminal
    progress.finished("  a/x: 1 / 1 in 1.0 s")
    progress.finished("  b/x: 0 / 1 in 1.0 s")
    progress.close()
    assert lines == ["  a/x: 1 / 1 in 1.0 s", "  b/x: 0 / 1 in 1.0 s"]
    assert screen.getvalue() == ""


def test_the_live_line_shows_done_of_total_the_rate_and_an_eta():
    lines, screen = [], io.StringIO()
    progress = Progress(3, log=lines.append, live=True, file=screen, out=screen)
    progress.finished("  a/x: 1 / 1 in 1.0 s")
    shown = screen.getvalue()
    progress.close()
    assert not lines  # written above the live line instead
    assert "  a/x: 1 / 1 in 1.0 s" in shown
    assert "grading: 1/3" in shown and "submissions/min" in shown and "ETA" in shown
    assert progress.per_minute() > 0
