"""Seconds to rank every pair of a class by similarity, and where a planted copy lands: ``similarity`` at class scale.

    .venv/bin/python benchmarks/similarity_scale.py [--students 50 150 300] [--seed 0]

Copies manual_convolution (source/, release/) into a scratch course and hands in, for each student,
the solution cells written one of several ways (the loops of conv2d_naive and maxpool2d in different
shapes, extra checks and intermediate names drawn at random, the right or a wrong 3x3 matrix, a
written answer from a few sentences, and a line of each student's own), plus one planted pair: a
student's notebook copied with every name changed. For each class size it prints the seconds of
``similarity.compare`` (no kernel runs), the pairs it ranked, the planted pair's rank and score, and
the best score of any other pair.
"""
from __future__ import annotations

import argparse
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from convcourse.grading.course import similarity

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "manual_convolution"
CONV = [
    """def conv2d_naive(x, k):
    rows, cols = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
    out = np.zeros((rows, cols)){extra}
    for i in range(rows):
        for j in range(cols):
            out[i, j] = np.sum(x[i:i + k.shape[0], j:j + k.shape[1]] * k)
    return out""",
    """def conv2d_naive(x, k):
    kh, kw = k.shape{extra}
    return np.array([[(x[i:i + kh, j:j + kw] * k).sum() for j in range(x.shape[1] - kw + 1)]
                     for i in range(x.shape[0] - kh + 1)])""",
    """def conv2d_naive(x, k):
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1)){extra}
    for a in range(kh):
        for b in range(kw):
            out += k[a, b] * x[a:a + out.shape[0], b:b + out.shape[1]]
    return out""",
]
POOL = [
    """def maxpool2d(x, size, stride):
    rows, cols = (x.shape[0] - size) // stride + 1, (x.shape[1] - size) // stride + 1{extra}
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            out[i, j] = x[i * stride:i * stride + size, j * stride:j * stride + size].max()
    return out""",
    """def maxpool2d(x, size, stride):
    starts = [range(0, n - size + 1, stride) for n in x.shape]{extra}
    return np.array([[np.max(x[i:i + size, j:j + size]) for j in starts[1]] for i in starts[0]])""",
]
EXTRAS = ["\n    assert x.ndim == 2, 'x must be 2-D'", "\n    x = np.asarray(x, dtype=float)",
          "\n    if x.shape[0] < 1:\n        raise ValueError('empty input')", "\n    count = 0", "",
          "\n    h, w = x.shape\n    assert h >= 1 and w >= 1", "\n    x = x.astype(np.float64)"]
SENTENCES = ["The weights are learnt, so a flipped kernel is learnt just as easily.",
             "Training finds whichever orientation of the kernel works; flipping only renames the weights.",
             "It matters when the kernel is given by hand, e.g. an edge detector from a textbook.",
             "Signal processing libraries flip the kernel, so results differ from PyTorch's for fixed filters.",
             "For symmetric kernels nothing changes at all.", "A learnt network does not care which way round."]


def hand_in(rng: random.Random) -> dict[str, str]:
    """One student's solution cells by grade_id, written one of the ways above."""
    def code(variants: list[str]) -> str:
        own = f"\n    limit = {rng.randint(10_000, 99_999)}  # a line of this student's own"
        body = rng.choice(variants).format(extra="".join(rng.sample(EXTRAS, 2)) + own)
        return re.sub(r"\bout\b", rng.choice(["out", "result", "res", "y", "output"]), body)

    right = "conv_by_hand = [[-1, 5, 9], [3, 4, 2], [7, -2, 6]]"
    return {"mc-conv2d-naive": code(CONV), "mc-maxpool2d": code(POOL),
            "mc-conv-by-hand": right if rng.random() < 0.7 else right.replace("9", "8"),
            "mc-flip-answer": " ".join(rng.sample(SENTENCES, 3))}


def make_class(root: Path, students: int, rng: random.Random) -> None:
    source = nbformat.read(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = {f"s{n:04d}": hand_in(rng) for n in range(students - 2)}
    answers["copy-a"] = hand_in(rng)
    answers["copy-b"] = {g: re.sub(r"\b(out|result|res|y|output|rows|cols|kh|kw|starts)\b", lambda m: m.group(1) + "_",
                                   text) for g, text in answers["copy-a"].items()}  # every name changed
    for student, cells in answers.items():
        nb = nbformat.from_dict(source)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in cells:
                cell.source = cells[grade_id]
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[50, 150, 300])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for students in args.students:
        with tempfile.TemporaryDirectory(prefix="convcourse-similarity-") as scratch:
            root = Path(scratch)
            shutil.copy2(ROOT / "nbgrader_config.py", root)
            for kind in ("source", "release"):
                shutil.copytree(ROOT / kind / ASSIGNMENT, root / kind / ASSIGNMENT)
            make_class(root, students, random.Random(args.seed))
            started = time.perf_counter()
            result = similarity.compare(root, ASSIGNMENT)
            seconds = time.perf_counter() - started
        rank = next(i for i, p in enumerate(result.pairs, 1) if p.students == ("copy-a", "copy-b"))
        others = max((p.score for p in result.pairs if p.students != ("copy-a", "copy-b")), default=0.0)
        print(f"students={students} pairs_possible={students * (students - 1) // 2} pairs_ranked={len(result.pairs)} "
              f"seconds={seconds:.2f} planted_rank={rank} planted_score={result.pairs[rank - 1].score:.3f} "
              f"best_other_score={others:.3f}", flush=True)


if __name__ == "__main__":
    main()
