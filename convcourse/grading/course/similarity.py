"""Similarity between submissions: ``python -m convcourse.grading similarity ASSIGNMENT``.

Compares the solution regions (nbgrader's solution cells) of every pair of submissions with
copydetect, which implements MOSS's winnowing: code is tokenised (names become one letter, comments
and spacing go), cut into k-grams and fingerprinted. Per region, the fingerprints of the released
starter code are subtracted, and so are fingerprints shared by more than ``max_shared`` submissions
(as MOSS's -m: the one right answer everybody writes is no evidence). A pair's score weighs each
region by its size, the tokens of the course's own answer: two identical answers to a tiny task (a
3x3 matrix) share a few dozen tokens of an assignment's hundreds, so they cannot rank a pair high.
A high score is a reason to look, never proof: the side-by-side view shows what matched.
"""
from __future__ import annotations

import io
import itertools
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from convcourse.grading.course.folder import GradingError, assignments, submissions
from convcourse.grading.course.released_cells import titles

MAX_SHARED = 10  # a fingerprint in more submissions than this is common code (MOSS's default -m)
# Written answers are fingerprinted by character, code by token (a name is one token): a word and its space
# are about six characters, so a sentence weighs about what a line of code of as many tokens does.
PROSE_CHARS_PER_TOKEN = 6
_MARKERS = re.compile(r"^\s*#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$", re.M)


@dataclass(frozen=True)
class Region:
    """One solution cell of an assignment: what counts, and how much."""

    grade_id: str
    title: str
    cell_type: str
    size: float  # tokens of the course's own answer, starter removed: the region's weight


@dataclass
class Pair:
    """Two submissions and what their solution regions share."""

    students: tuple[str, str]
    score: float  # the regions' shared tokens over their sizes, each region capped at its size
    shared: dict[str, float] = field(default_factory=dict)  # grade_id -> tokens the two share
    views: dict[str, tuple[str, str]] = field(default_factory=dict)  # grade_id -> both sides, HTML, matches marked


@dataclass
class Similarity:
    """The ranked pairs of one assignment."""

    assignment: str
    regions: list[Region]
    students: list[str]
    pairs: list[Pair]
    warnings: list[str] = field(default_factory=list)


def solution_cells(nb: nbformat.NotebookNode) -> dict[str, tuple[str, str]]:
    """{grade_id: (cell type, text)} of a notebook's solution cells, nbgrader's marker lines removed."""
    return {c.metadata["nbgrader"]["grade_id"]: (c.cell_type, _MARKERS.sub("", c.source))
            for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def _normalise(cell_type: str, text: str) -> str:
    """Prose is compared as lower-case words (retyping spaces or capitals changes nothing); code as written."""
    return " ".join(text.lower().split()) if cell_type == "markdown" else text


def _fingerprint(cell_type: str, text: str, boilerplate=None):
    from copydetect import CodeFingerprint, defaults

    k = defaults.NOISE_THRESHOLD
    window = defaults.GUARANTEE_THRESHOLD - defaults.NOISE_THRESHOLD + 1
    code = cell_type == "code"  # prose is not Python: fingerprinted as characters, not tokens
    return CodeFingerprint("answer.py" if code else "answer.txt", k, window, boilerplate=boilerplate, filter=code,
                           language="python" if code else None, fp=io.StringIO(_normalise(cell_type, text)))


def _read(path: Path) -> nbformat.NotebookNode | None:
    try:
        return nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - a broken hand-in is reported, not fatal to the comparison
        return None


def compare(root: Path, assignment: str, *, max_shared: int = MAX_SHARED, views: int = 10) -> Similarity:
    """Every pair of ``assignment``'s submissions, most similar first; side-by-side views for the first ``views``."""
    import numpy as np

    root = Path(root)
    if assignment not in assignments(root):
        raise GradingError(f"no assignment {assignment!r} in {root / 'source'} (known: {', '.join(assignments(root))})")
    release = _read(root / "release" / assignment / f"{assignment}.ipynb")
    if release is None:
        raise GradingError(f"no released notebook for {assignment}: run `make release` first")
    source = _read(root / "source" / assignment / f"{assignment}.ipynb") or release
    starters, answers, named = solution_cells(release), solution_cells(source), titles(release)
    given = "\n".join(c.source for c in release.cells if c.cell_type == "code")
    boilerplate = {g: np.array(sorted(_fingerprint(kind, f"{given}\n{text}").hashes | _fingerprint(kind, text).hashes))
                   for g, (kind, text) in starters.items()}
    texts, warnings = {}, []
    for student, name in submissions(root, [assignment])[0]:
        nb = _read(root / "submitted" / student / name / f"{assignment}.ipynb")
        if nb is None:
            warnings.append(f"{student}: no readable {assignment}.ipynb in the submission; left out")
            continue
        texts[student] = {g: cell for g, cell in solution_cells(nb).items() if g in starters}
    if not texts:
        raise GradingError(f"no submissions of {assignment} in {root / 'submitted'}")
    ignored = _ignored(texts, boilerplate, max_shared)
    prints = {(s, g): _fingerprint(kind, text, ignored[g]) for s, cells in texts.items()
              for g, (kind, text) in cells.items()}
    regions = [Region(g, named.get(g, ""), kind, _region_size(kind, answers.get(g, (kind, ""))[1], boilerplate[g],
                                                              [f for (_, r), f in prints.items() if r == g]))
               for g, (kind, _) in starters.items()]
    ranked = _ranked(prints, regions, views)
    return Similarity(assignment, regions, sorted(texts), ranked, warnings)


def _ignored(texts: dict[str, dict[str, tuple[str, str]]], boilerplate: dict, max_shared: int) -> dict:
    """Per region, the starter's fingerprints and those found in more than ``max_shared`` submissions."""
    import numpy as np

    seen = defaultdict(set)
    for student, cells in texts.items():
        for g, (kind, text) in cells.items():
            for h in _fingerprint(kind, text, boilerplate[g]).hashes:
                seen[g, h].add(student)
    common = defaultdict(set)
    for (g, h), who in seen.items():
        if len(who) > max_shared:
            common[g].add(h)
    return {g: np.union1d(hashes, np.array(sorted(common[g]), dtype=hashes.dtype)) for g, hashes in boilerplate.items()}


def _ranked(prints: dict, regions: list[Region], views: int) -> list[Pair]:
    """The pairs that share a fingerprint, scored region by region and ranked; the first ``views`` get their views."""
    from copydetect import compare_files

    candidates = defaultdict(set)  # only pairs sharing a fingerprint can score above 0
    for (student, g), fingerprint in prints.items():
        for h in fingerprint.hashes:
            candidates[g, h].add(student)
    pairs = {(a, b) for who in candidates.values() for a, b in itertools.combinations(sorted(who), 2)}
    total = sum(r.size for r in regions) or 1.0
    scored, matched = [], {}
    for a, b in sorted(pairs):
        pair = Pair((a, b), 0.0)
        for region in regions:
            g = region.grade_id
            if (a, g) in prints and (b, g) in prints:
                tokens, _, (left, right) = compare_files(prints[a, g], prints[b, g])  # tokens compared; text slices
                if tokens:
                    pair.shared[g] = float(tokens) / (PROSE_CHARS_PER_TOKEN if region.cell_type == "markdown" else 1)
                    matched[a, b, g] = (left, right)
        pair.score = sum(min(pair.shared.get(r.grade_id, 0.0), r.size) for r in regions) / total
        scored.append(pair)
    ranked = sorted((p for p in scored if p.score > 0), key=lambda p: (-p.score, p.students))
    for pair in ranked[:views]:
        a, b = pair.students
        pair.views = {g: (_view(prints[a, g], matched[a, b, g][0]), _view(prints[b, g], matched[a, b, g][1]))
                      for g in pair.shared}
    return ranked


def _region_size(kind: str, answer: str, boilerplate, students: list) -> float:
    """The tokens of the course's answer left after the starter; the students' median where the source has none."""
    size = _fingerprint(kind, answer, boilerplate).token_coverage if answer.strip() else 0.0
    size = float(size or (statistics.median(f.token_coverage for f in students) if students else 0.0))
    return size / PROSE_CHARS_PER_TOKEN if kind == "markdown" else size


def _view(fingerprint, slices) -> str:
    """One side of a pair as HTML, escaped, the stretches the other side shares marked with <mark>."""
    from copydetect.utils import highlight_overlap

    return highlight_overlap(fingerprint.raw_code, slices, "<mark>", "</mark>", escape_html=True)[0]


def table(result: Similarity, top: int = 20) -> str:
    """The ranked list as text: rank, the two students, score, shared tokens and where."""
    sizes = ", ".join(f"{r.grade_id} {r.size:.0f}" for r in result.regions)
    lines = [f"similarity of {result.assignment}: {len(result.students)} submissions, {len(result.pairs)} pair(s) "
             f"sharing code beyond the starter; region weights (tokens): {sizes}"]
    if not result.pairs:
        lines.append("no two submissions share code beyond the starter and what most students write")
    for rank, pair in enumerate(result.pairs[:top], 1):
        where = ", ".join(f"{g} {tokens:.0f}" for g, tokens in sorted(pair.shared.items(), key=lambda kv: -kv[1]))
        lines.append(f"{rank:>4}  {pair.students[0]} ~ {pair.students[1]}  {pair.score:6.1%}  shared tokens: {where}")
    return "\n".join(lines + [f"warning: {w}" for w in result.warnings])
