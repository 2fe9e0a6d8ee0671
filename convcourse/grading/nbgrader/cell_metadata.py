"""nbgrader's check of the cells' nbgrader metadata, with its JSON schema checked once per process, not once per cell.

nbgrader's ``CheckCellMetadata`` validates every cell with ``jsonschema.validate(metadata, schema)``, which
first checks the *schema* itself against the JSON Schema meta-schema: nine tenths of the work, the same for
every cell. Autograde runs the check twice per notebook (sanitize and autograde), so a 91-cell
``cnn_experiments`` spent 0.33 s of its job there (cProfile of one job: 180 ``check_schema`` calls, 0.30 s).
:class:`CheckCellMetadataOnce` runs nbgrader's own validator, rules and messages unchanged, with
``jsonschema.validate`` answered by a validator built once per schema: the same errors (jsonschema's
``best_match``, as ``validate`` raises), the meta-schema check paid once.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

import jsonschema
from jsonschema import exceptions, validators
from nbgrader.nbgraderformat import common
from nbgrader.preprocessors import CheckCellMetadata


@lru_cache(maxsize=8)
def _validator(schema_json: str) -> Any:
    """A validator of the schema spelled by ``schema_json``, the schema checked against its meta-schema once."""
    schema = json.loads(schema_json)
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(instance: Any, schema: dict) -> None:
    """``jsonschema.validate(instance, schema)``, with the schema's own check and the validator kept."""
    error = exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
    if error is not None:
        raise error


class _Jsonschema:
    """What nbgrader's validator uses of the ``jsonschema`` module, with :func:`validate` in it."""

    ValidationError = jsonschema.ValidationError
    validate = staticmethod(validate)


@contextmanager
def schema_checked_once() -> Iterator[None]:
    """While inside, nbgrader's metadata validators validate through :func:`validate`."""
    saved, common.jsonschema = common.jsonschema, _Jsonschema
    try:
        yield
    finally:
        common.jsonschema = saved


class CheckCellMetadataOnce(CheckCellMetadata):
    """nbgrader's CheckCellMetadata (same validator, same errors) with the schema checked once per process."""

    def preprocess(self, nb: Any, resources: dict) -> tuple[Any, dict]:
        """Validate every cell's nbgrader metadata, as nbgrader does."""
        with schema_checked_once():
            return super().preprocess(nb, resources)
