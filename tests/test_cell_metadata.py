"""The grading's check of nbgrader cell metadata: nbgrader's own rules and errors, its schema checked once."""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import common
from nbgrader.preprocessors import CheckCellMetadata
from traitlets.config import Config

from convcourse.grading.nbgrader import cell_metadata
from convcourse.grading.nbgrader.cell_metadata import CheckCellMetadataOnce
from convcourse.grading.nbgrader.preprocessors import configure_autograde

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "source" / "output_dimensions" / "output_dimensions.ipynb"


def graded_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The cells that carry nbgrader metadata."""
    return [cell for cell in nb.cells if "nbgrader" in cell.metadata]


def outcome(preprocessor: type, nb: nbformat.NotebookNode) -> str:
    """What ``preprocessor`` says of ``nb``: 'ok', or the error's type and message."""
    try:
        preprocessor().preprocess(copy.deepcopy(nb), {})
    except Exception as error:  # noqa: BLE001 - whatever either raises is compared
        return f"{type(error).__name__}: {error}"
    return "ok"


def corrupted(change) -> nbformat.NotebookNode:
    """The source notebook with its first graded test cell's metadata changed by ``change``."""
    nb = nbformat.read(SOURCE, as_version=4)
    cell = next(c for c in graded_cells(nb) if c.metadata.nbgrader.get("grade") and c.cell_type == "code")
    change(cell.metadata.nbgrader)
    return nb


CORRUPTIONS = {
    "as released": lambda meta: None,
    "points not a number": lambda meta: meta.update(points="two"),
    "grade not a boolean": lambda meta: meta.update(grade="yes"),
    "no points": lambda meta: meta.pop("points"),
    "empty grade id": lambda meta: meta.update(grade_id=""),
    "schema too old": lambda meta: meta.update(schema_version=1),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_the_check_says_what_nbgraders_says(name):
    nb = corrupted(CORRUPTIONS[name])
    assert outcome(CheckCellMetadataOnce, nb) == outcome(CheckCellMetadata, nb)
    assert (outcome(CheckCellMetadata, nb) == "ok") == (name == "as released")


def test_the_schema_is_checked_once_for_all_cells_and_nbgraders_module_is_left_as_it_was():
    nb = nbformat.read(SOURCE, as_version=4)
    assert len(graded_cells(nb)) > 10
    cell_metadata._validator.cache_clear()
    CheckCellMetadataOnce().preprocess(nb, {})
    CheckCellMetadataOnce().preprocess(nb, {})
    info = cell_metadata._validator.cache_info()
    assert info.misses == 1 and info.hits == 2 * len(graded_cells(nb)) - 1
    assert common.jsonschema.validate is not cell_metadata.validate


def test_autograde_checks_cell_metadata_with_it_in_both_passes():
    c = Config()
    configure_autograde(c, ROOT)
    for passes in (c.Autograde.sanitize_preprocessors, c.Autograde.autograde_preprocessors):
        assert CheckCellMetadataOnce in passes and CheckCellMetadata not in passes
