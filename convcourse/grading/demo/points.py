"""Points and dependencies of an nbgrader notebook: which cells are tests, what they are worth, what they need.

Pure functions over notebook JSON; :mod:`convcourse.grading.demo.samples` uses them to compute the exact score an
example submission must get.
"""
from __future__ import annotations

import ast

from nbformat import NotebookNode


def nbgrader_meta(cell: NotebookNode) -> dict:
    """The nbgrader metadata of a cell ({} for an ordinary cell)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test(cell: NotebookNode) -> bool:
    """An autograded test cell: graded code that is not a solution."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_solution_code(cell: NotebookNode) -> bool:
    """A code cell the student writes in."""
    return cell.cell_type == "code" and bool(nbgrader_meta(cell).get("solution"))


def tests(nb: NotebookNode) -> list[tuple[int, str, float]]:
    """(cell index, grade_id, points) of every autograded test cell, in order."""
    return [(i, nbgrader_meta(c)["grade_id"], float(nbgrader_meta(c).get("points", 0))) for i, c in enumerate(nb.cells)
            if is_test(c)]


def total_points(nb: NotebookNode) -> float:
    """All autograded points of a notebook."""
    return sum(points for _, _, points in tests(nb))


def points_before(nb: NotebookNode, index: int) -> float:
    """Autograded points of the test cells before cell ``index``."""
    return sum(points for i, _, points in tests(nb) if i < index)


# ---------------------------------------------------------------------------------- which tests pass


def names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds at top level, names it reads that it did not bind: its inputs from earlier cells)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(), {"<unparsable cell>"}
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            bound.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return bound, _free_names(tree) - bound


def _free_names(node: ast.AST, local: frozenset[str] = frozenset()) -> set[str]:
    """Names read in ``node`` that are not local to the function they are read in."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        body = node.body if isinstance(node.body, list) else [node.body]
        stored = {n.id for part in body for n in ast.walk(part)
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        inner = local | params | stored
        defaults = args.defaults + [d for d in args.kw_defaults if d is not None]
        found = {name for default in defaults for name in _free_names(default, local)}
        found |= {name for part in body for name in _free_names(part, frozenset(inner))}
        return found | {n for d in getattr(node, "decorator_list", []) for n in _free_names(d, local)}
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        return set() if node.id in local else {node.id}
    return {name for child in ast.iter_child_nodes(node) for name in _free_names(child, local)}


def passing_tests(source: NotebookNode, unfinished: set[str]) -> set[str]:
    """grade_ids of the tests that still pass when the solution cells ``unfinished`` are left as released.

    Names bound by an unfinished cell are broken; a cell reading a broken name breaks what it binds
    (so a helper calling an unfinished function is broken too); a test reading none passes.
    """
    broken: set[str] = set()
    passing: set[str] = set()
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        bound, read = names(cell.source)
        if nbgrader_meta(cell).get("grade_id") in unfinished:
            broken |= bound
        elif is_test(cell):
            if not read & broken:
                passing.add(nbgrader_meta(cell)["grade_id"])
        elif read & broken:
            broken |= bound
        else:
            broken -= bound
    return passing
