"""``python -m convcourse.grading {release,grade,demo,archive,export,report,similarity,hub}``: the instructor's commands
(``make release/grade/demo``, ``make student-archive``, ``make hub`` / ``make hub-down``; ``export`` writes the grades per
question for Canvas, Moodle or as a long table, ``report`` the class report, ``similarity`` the most similar submissions).

Run in the course folder (the one with ``nbgrader_config.py``), or pass ``--root FOLDER``, as with
nbgrader's own commands. The course's own problems (not a course, no sandbox, nbgrader refused the
release, missing data, a bad setting such as the training budget) end with one ``error:`` message and exit status 2;
anything else is a bug and keeps its traceback.

After a round, ``report`` writes the class report (``class_report.html``) and ``similarity ASSIGNMENT`` ranks the
pairs of submissions that share solution code.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convcourse.budget import BudgetError
from convcourse.grading import sandbox, settings
from convcourse.grading.course import archive, release, released_cells, similarity
from convcourse.grading.course.folder import GradingError, course_root, require_assignments
from convcourse.grading.hub import demo as hub_demo

PROG = "python -m convcourse.grading"
COURSE_ERRORS = (GradingError, sandbox.SandboxUnavailable, release.ReleaseError, BudgetError, settings.SettingError,
                 hub_demo.HubError)


def parser() -> argparse.ArgumentParser:
    """The command line: release [--check], grade and demo with their options, export --format, archive [--out]."""
    top = argparse.ArgumentParser(prog=PROG, description="The instructor's commands on an nbgrader course: "
                                  "release, grade, demo, archive (make release / grade / demo / student-archive), export.")
    top.add_argument("--root", type=Path, default=None, help="course folder (default: the current directory)")
    commands = top.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="regenerate release/ from source/ (nbgrader generate_assignment)")
    rel.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when release/ is stale")
    for name, text in (("grade", "autograde submitted/, feedback, grades.csv, table"),
                       ("demo", "release, example submissions, grade, check the scores")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--jobs", type=int, default=None, help="parallel workers (default: one per core)")
        sub.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
        sub.add_argument("--allow-unsandboxed", action="store_true", default=None,
                         help=f"grade even where the sandbox is unavailable (or set {sandbox.ALLOW_ENV}=1)")
        sub.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="grade on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 "
                              "(or set CONVCOURSE_SCHEDULER; default: local worker processes)")
        if name == "demo":
            sub.add_argument("--hostile", action="store_true", help="add the hostile/broken example submissions")
    exp = commands.add_parser("export", help="grades per question for Canvas or Moodle, or as a long table")
    exp.add_argument("--format", required=True, choices=("canvas", "moodle", "long"), help="the layout")
    exp.add_argument("--out", type=Path, default=None, help="file to write (default: exports/grades-FORMAT.csv)")
    exp.add_argument("--roster", type=Path, default=None,
                     help="CSV with the platform's ids of the course's students (default: roster.csv, if there is one)")
    exp.add_argument("--roster-key", default="student", help="the roster's column of the course's student ids")
    exp.add_argument("--assignment", action="append", default=None, metavar="NAME",
                     help="only this assignment (repeat for more; default: every one with a submission)")
    arc = commands.add_parser("archive", help=f"zip release/ for students: {archive.archive_name()}.zip")
    arc.add_argument("--out", type=Path, default=None, help="folder for the zip (default: dist/ in the course folder)")
    rep = commands.add_parser("report", help="one self-contained HTML page: per question statistics, blank answers, "
                              "classic mistakes, late penalties, similar pairs")
    rep.add_argument("--out", type=Path, default=None, help="the page to write (default: class_report.html in the course)")
    rep.add_argument("--no-similarity", action="store_true", help="leave out the comparison of submissions")
    sim = commands.add_parser("similarity", help="rank pairs of submissions by the solution code they share (copydetect)")
    sim.add_argument("assignment", help="the assignment whose submissions in submitted/ are compared")
    sim.add_argument("--top", type=int, default=20, help="pairs listed (default: 20)")
    sim.add_argument("--max-shared", type=int, default=similarity.MAX_SHARED, metavar="N",
                     help="code found in more than N submissions is common, not evidence (default: %(default)s, as MOSS)")
    hub = commands.add_parser("hub", help="a demo JupyterHub on this machine: accounts, the course released (as root)")
    hub.add_argument("action", choices=("up", "down"), help="up: set it up and start it; down: remove all of it")
    hub.add_argument("--state", type=Path, default=hub_demo.STATE, help=f"its folder (default: {hub_demo.STATE})")
    hub.add_argument("--course", action="append", default=None, metavar="ID",
                     help="a course id, repeatable (default: convcourse); each gets its own accounts and Formgrader")
    hub.add_argument("--students", type=int, default=3, help="students per course (default: 3)")
    hub.add_argument("--assignment", action="append", default=None, metavar="NAME",
                     help="release only this assignment, repeatable (default: all of them)")
    hub.add_argument("--ip", default="127.0.0.1", help="address the hub listens on (default: 127.0.0.1)")
    hub.add_argument("--port", type=int, default=8000, help="its port (default: 8000)")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 on success, 1 when a check found a difference, 2 on the course's own errors."""
    args = parser().parse_args(argv)
    try:
        root = course_root(args.root)
        if args.command == "release":
            return _release(root, check=args.check)
        if args.command == "export":
            return _export(root, args)
        if args.command == "archive":
            return _archive(root, args.out if args.out is not None else root / "dist")
        if args.command == "report":
            from convcourse.grading.course import class_report  # nbgrader and matplotlib: only for this command

            path, classes = class_report.write(root, args.out, compare=not args.no_similarity)
            print(f"{class_report.summary(classes)}\nwrote {path}")
            return 0
        if args.command == "similarity":
            if args.top < 1 or args.max_shared < 1:
                raise GradingError("--top and --max-shared must be at least 1")
            print(similarity.table(similarity.compare(root, args.assignment, max_shared=args.max_shared), args.top))
            return 0
        if args.command == "hub":
            return _hub(root, args)
        settings.check()  # a bad $CONVCOURSE_MAX_STEPS or limit stops here, not inside nbgrader's config loading
        from convcourse.grading.rounds import pipeline  # nbgrader's imports: only for the commands that grade

        if args.command == "demo":
            return pipeline.demo(root, workers=args.jobs, force=args.force, hostile=args.hostile,
                                 allow_unsandboxed=args.allow_unsandboxed, scheduler=args.scheduler)
        report = pipeline.grade(root, workers=args.jobs, force=args.force, allow_unsandboxed=args.allow_unsandboxed,
                                scheduler=args.scheduler)
        print(pipeline.summary(report))
        return 0
    except COURSE_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _hub(root: Path, args: argparse.Namespace) -> int:
    if args.action == "down":
        removed = hub_demo.down(args.state)
        print("removed: " + ", ".join(removed) if removed else f"no demo hub at {args.state}: nothing to remove")
        return 0
    plan = hub_demo.Plan(courses=tuple(args.course or ("convcourse",)), students=args.students,
                         assignments=tuple(args.assignment or ()), state=args.state.resolve(), ip=args.ip, port=args.port)
    print(hub_demo.up(root, plan))
    return 0


def _release(root: Path, *, check: bool) -> int:
    names = tuple(require_assignments(root))
    shipped = released_cells.is_package_checkout(root)  # the course whose released cells the wheel carries
    if check:
        problems = release.check(root, names) + (released_cells.stale(root, names) if shipped else [])
        print("release/ is up to date" if not problems else "release/ is stale; run `make release`:\n  "
              + "\n  ".join(problems))
        return 1 if problems else 0
    print(f"wrote {release.generate(root, names)}")
    if shipped:
        print(f"wrote {released_cells.write(root, names)}")
    return 0


def _export(root: Path, args: argparse.Namespace) -> int:
    from convcourse.grading.course import export, platforms
    from convcourse.grading.rounds.pipeline import refresh_penalties

    roster = args.roster if args.roster is not None else root / "roster.csv"
    if args.format == "long" and args.roster is not None:
        raise export.ExportError("the long format names students by the course's ids: --roster is for canvas and moodle")
    for change in refresh_penalties(root):  # manual grades, due dates and extensions since the last round
        print(f"changed: {change.line()}")
    out = args.out if args.out is not None else root / "exports" / f"grades-{args.format}.csv"
    if args.format == "long":
        path, notes = export.write_long(root, out, args.assignment)
    else:
        path, notes = platforms.write_wide(root, platforms.PLATFORMS[args.format], out, names=args.assignment,
                                           roster=roster if roster.is_file() or args.roster is not None else None,
                                           key=args.roster_key)
    print("\n".join([*(f"note: {n}" for n in notes), f"wrote {path}"]))
    return 0


def _archive(root: Path, out: Path) -> int:
    names = tuple(require_assignments(root))
    problems = release.check(root, names)  # students must never get notebooks older than source/
    if problems:
        raise release.ReleaseError("release/ is stale; run `make release` first:\n  " + "\n  ".join(problems))
    print(f"wrote {archive.build(root, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
