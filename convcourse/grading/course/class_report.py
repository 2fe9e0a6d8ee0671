"""The class report: ``python -m convcourse.grading report`` writes one self-contained HTML page.

Per assignment: the totals, each question's score distribution, mean, share of full marks and
discrimination (its correlation with the rest of the assignment), the answers students left blank,
which classic mistake how many students made (from the names the checks' diagnoses carry), the late
penalties per submission and the most similar pairs of submissions side by side. The numbers come
from :mod:`convcourse.grading.course.class_data` (the gradebook and the autograded notebooks); the
figures are matplotlib PNGs inlined as base64, so the page needs no network and no other file.
"""
from __future__ import annotations

import base64
import io
import re
from collections import defaultdict
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from convcourse.diagnosis import MISTAKES
from convcourse.grading.course import class_stats
from convcourse.grading.course.class_data import AssignmentData, read_class
from convcourse.grading.course.folder import GradingError

REPORT_FILE = "class_report.html"
SIMILAR_PAIRS = 10  # pairs listed per assignment; the first of them with their side-by-side view
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.num,th.num{text-align:right}h2{border-top:2px solid #444;padding-top:.6em}img{max-width:100%}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1em}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;
white-space:pre-wrap}mark{background:#ffd54f}.muted{color:#666}"""


def _figure_html(figure, alt: str) -> str:
    """A matplotlib figure as an inline PNG <img> (then closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _totals_figure(data: AssignmentData) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 2.4))
    top = max(s.max_score for s in data.submissions)
    axes.hist([s.score for s in data.submissions], bins=min(20, max(5, int(top) + 1)), range=(0, top), color="#4c72b0")
    axes.set(xlabel="score (written answers count once graded)", ylabel="students", title=f"{data.name}: totals")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _figure_html(figure, f"histogram of the totals of {data.name}")


def _questions_figure(data: AssignmentData) -> str:
    import matplotlib.pyplot as plt

    count = len(data.questions)
    columns = min(4, count)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.1 * rows), squeeze=False)
    for ax, question in zip(axes.flat, data.questions):
        scores = [s for s in question.scores.values() if s is not None]
        bars = class_stats.distribution(scores, question.max_score)
        ax.bar([f"{p:g}" for p, _ in bars], [n for _, n in bars], color="#55a868" if not question.written else "#c44e52")
        ax.set_title(question.grade_id, fontsize=8)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    figure.tight_layout()
    return _figure_html(figure, f"score distribution of each question of {data.name}")


def _mistakes_figure(rows: list[tuple[str, str, set[str]]], name: str) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 0.35 * len(rows) + 0.8))
    labels = [f"{MISTAKES[tag]} ({title.split(':')[0]})" for tag, title, _ in rows][::-1]
    axes.barh(labels, [len(students) for _, _, students in rows][::-1], color="#dd8452")
    axes.set(xlabel="students", title=f"{name}: classic mistakes")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.tick_params(labelsize=8)
    return _figure_html(figure, f"students per classic mistake in {name}")


def _title(text: str) -> str:
    """A section title as HTML: escaped, its `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _fmt(value: float | None, form: str = "{:.2f}") -> str:
    return "n/a" if value is None else form.format(value)


def _questions(data: AssignmentData) -> str:
    totals = {s.student: s.score for s in data.submissions}
    rows = []
    for q in data.questions:
        st = class_stats.question_stats(q.scores, q.max_score, totals)
        kind = "written (graded by hand)" if q.written else "test"
        waiting = f" ({st.waiting} await grading)" if st.waiting else ""
        rows.append(f"<tr><td>{_title(q.title)}<br><code>{escape(q.grade_id)}</code></td><td>{kind}</td>"
                    f"<td class=num>{q.max_score:g}</td><td class=num>{st.graded}{waiting}</td>"
                    f"<td class=num>{_fmt(st.mean)}</td><td class=num>{_fmt(st.full_share, '{:.0%}')}</td>"
                    f"<td class=num>{_fmt(st.discrimination)}</td></tr>")
    head = ("<tr><th>question</th><th>kind</th><th class=num>points</th><th class=num>graded</th><th class=num>mean"
            "</th><th class=num>full marks</th><th class=num>discrimination</th></tr>")
    return (f"<h3>Questions</h3><table class=questions>{head}{''.join(rows)}</table>"
            "<p class=muted>Discrimination: the correlation of a question's score with the rest of the student's "
            "total (n/a when either does not vary). Near 0 or negative: the question does not separate strong from "
            "weak submissions; read it again.</p>" + _questions_figure(data))


def mistakes_by_task(data: AssignmentData) -> list[tuple[str, str, set[str]]]:
    """(name, task title, students) of every classic mistake seen, most students first; one count per task."""
    merged: dict[tuple[str, str], set[str]] = defaultdict(set)  # a task's tests may each see the same mistake
    titles = {q.grade_id: q.title for q in data.questions}
    for (grade_id, tag), students in data.mistakes.items():
        merged[tag, titles.get(grade_id, grade_id)] |= students
    return sorted(((tag, title, students) for (tag, title), students in merged.items()),
                  key=lambda row: (-len(row[2]), row[0], row[1]))


def summary(classes: list[AssignmentData], top: int = 3) -> str:
    """A few lines for the terminal: per assignment its submissions, mean and most frequent classic mistakes."""
    lines = []
    for data in classes:
        scores, n = [s.score for s in data.submissions], len(data.submissions)
        lines.append(f"{data.name}: {n} submissions, mean {sum(scores) / n:.2f} of "
                     f"{max(s.max_score for s in data.submissions):g}")
        lines += [f"  {MISTAKES[tag]}: {len(students)} of {n} students on {title} [{tag}]"
                  for tag, title, students in mistakes_by_task(data)[:top]]
    return "\n".join(lines)


def _mistakes(data: AssignmentData) -> str:
    rows = mistakes_by_task(data)
    if not rows:
        return "<h3>Classic mistakes</h3><p>No test named a classic mistake.</p>"
    n = len(data.submissions)
    items = "".join(f"<li><b>{escape(MISTAKES[tag])}</b>: {len(students)} of {n} students on "
                    f"<code>{escape(data.name)}</code> {_title(title)} <span class=muted>[{escape(tag)}]</span></li>"
                    for tag, title, students in rows)
    return f"<h3>Classic mistakes</h3><ul class=mistakes>{items}</ul>" + _mistakes_figure(rows, data.name)


def _blank(data: AssignmentData) -> str:
    n = len(data.submissions)
    rows = "".join(f"<tr><td>{_title(title)}<br><code>{escape(grade_id)}</code></td>"
                   f"<td class=num>{len(data.blank.get(grade_id, ()))} of {n}</td></tr>"
                   for grade_id, title in data.answers.items())
    return ("<h3>Answers left blank</h3><table class=blank><tr><th>answer cell</th><th class=num>left as released"
            f"</th></tr>{rows}</table>")


def _submissions(data: AssignmentData) -> str:
    late = sum(1 for s in data.submissions if s.late_penalty)
    rows = "".join(f"<tr><td>{escape(s.student)}</td><td class=num>{s.score:g} / {s.max_score:g}</td>"
                   f"<td class=num>{s.late_penalty:g}</td><td class=num>{s.score - s.late_penalty:g}</td>"
                   f"<td>{escape(s.timestamp)}</td></tr>" for s in data.submissions)
    unread = f"<p>Autograded notebooks missing or unreadable: {escape(', '.join(data.unread))}</p>" if data.unread else ""
    return (f"<h3>Submissions</h3><details><summary>{len(data.submissions)} submissions, {late} with a late penalty"
            "</summary><table class=submissions><tr><th>student</th><th class=num>score</th><th class=num>late penalty"
            "</th><th class=num>after penalty</th><th>submitted</th></tr>" + rows + "</table></details>" + unread)


def _similarity(root: Path, name: str) -> str:
    from convcourse.grading.course import similarity

    try:
        result = similarity.compare(root, name, views=SIMILAR_PAIRS)
    except GradingError as error:
        return f"<h3>Similar submissions</h3><p>Not compared: {escape(str(error))}</p>"
    pairs = [p for p in result.pairs[:SIMILAR_PAIRS]]
    if not pairs:
        return "<h3>Similar submissions</h3><p>No two submissions share code beyond the starter.</p>"
    parts = ["<h3>Similar submissions</h3><p class=muted>Solution cells compared with copydetect (MOSS's winnowing), "
             "the starter code and code most students write left out, each answer weighted by its size. A reason to "
             "look, not proof.</p><ol class=similar>"]
    for pair in pairs:
        a, b = pair.students
        views = "".join(f"<p><code>{escape(g)}</code> ({pair.shared[g]:.0f} shared tokens)</p><div class=side>"
                        f"<pre>{left}</pre><pre>{right}</pre></div>" for g, (left, right) in pair.views.items())
        parts.append(f"<li><details><summary>{escape(a)} ~ {escape(b)}: {pair.score:.0%}</summary>{views}"
                     "</details></li>")
    return "".join(parts) + "</ol>"


def render(root: Path, classes: list[AssignmentData], *, compare: bool = True) -> str:
    """The whole page."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f'<li><a href="#{escape(d.name)}">{escape(d.name)}</a></li>' for d in classes)
    body = [f"<h1>Class report</h1><p class=muted>{escape(str(root))}, {stamp}: scores from the gradebook, blank "
            f"answers and mistakes from the autograded notebooks.</p><ul>{toc}</ul>"]
    for data in classes:
        scores = [s.score for s in data.submissions]
        top = max(s.max_score for s in data.submissions)
        body.append(f'<h2 id="{escape(data.name)}">{escape(data.name)}</h2><p>{len(scores)} submissions; mean '
                    f"{sum(scores) / len(scores):.2f} of {top:g} points.</p>" + _totals_figure(data))
        body += [_questions(data), _mistakes(data), _blank(data), _submissions(data)]
        if compare:
            body.append(_similarity(root, data.name))
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Class report</title><style>{_STYLE}"
            f"</style></head><body>{''.join(body)}</body></html>")


def write(root: Path, out: Path | None = None, *, compare: bool = True) -> tuple[Path, list[AssignmentData]]:
    """Write the report of the course at ``root`` (default: class_report.html there); its path and what it shows."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    root = Path(root)
    classes = read_class(root)
    target = Path(out) if out is not None else root / REPORT_FILE
    target.write_text(render(root, classes, compare=compare), encoding="utf-8")
    return target, classes
