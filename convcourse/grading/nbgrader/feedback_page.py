"""The exporter of feedback pages: nbconvert's HTML exporter, with its compiled Jinja templates kept for the process.

nbgrader's ``generate_feedback`` builds a new exporter, so a new Jinja environment, for every run, and
Jinja parses and compiles the ~10 templates of a feedback page again each time (~0.1 s a page). With
:class:`FeedbackExporter` the compiled templates stay in memory for the process: the grader compiles
them once in :func:`convcourse.grading.rounds.preload.pay_once`, and every job forked after it starts with
them. A template is compiled again when its source changes (the cache is keyed by its checksum).
``configure_autograde`` makes it the course's ``GenerateFeedback.exporter_class``; the page is the same.
"""
from __future__ import annotations

from jinja2 import BytecodeCache, Environment
from jinja2.bccache import Bucket
from nbconvert.exporters import HTMLExporter


class CompiledTemplates(BytecodeCache):
    """Jinja's bytecode cache, in this process's memory: compiled code by template name and source checksum."""

    def __init__(self) -> None:
        self._code: dict[tuple[str, str], object] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        """Give ``bucket`` the code compiled before from the same source, if any."""
        bucket.code = self._code.get((bucket.key, bucket.checksum))

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep what Jinja just compiled."""
        self._code[(bucket.key, bucket.checksum)] = bucket.code

    def clear(self) -> None:
        """Forget every compiled template."""
        self._code.clear()

    def __len__(self) -> int:
        return len(self._code)


COMPILED = CompiledTemplates()


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter whose Jinja environment shares :data:`COMPILED` with every other one here."""

    def _create_environment(self) -> Environment:
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED
        return environment
