"""The exporter of feedback pages: nbconvert's HTML exporter, with compiled templates kept and no second parse.

nbgrader's ``generate_feedback`` builds a new exporter, so a new Jinja environment, for every run, and
Jinja parses and compiles the ~10 templates of a feedback page again each time (~0.1 s a page). With
:class:`FeedbackExporter` the compiled templates stay in memory for the process: the grader compiles
them once in :func:`convcourse.grading.rounds.preload.pay_once`, and every job forked after it starts with
them. A template is compiled again when its source changes (the cache is keyed by its checksum).

nbconvert's HTML exporter then parses the rendered page with BeautifulSoup's pure-Python parser to give
every ``<img>`` without ``alt`` a placeholder text and the cells of its *lab* template a ``tabindex``,
and serialises the page again: 0.4 s of a 1.2 MB ``cnn_experiments`` page, half of the page's cost
(cProfile, 2026-12-04). nbgrader's feedback template extends the *classic* one, which has no such cells,
so only the ``alt`` text matters; :func:`described_images` adds it to the start tags directly.
``tests/test_round_setup.py`` holds the page to nbconvert's, parsed: the same document.
``configure_autograde`` makes it the course's ``GenerateFeedback.exporter_class``.
"""
from __future__ import annotations

import re
from typing import Any

from jinja2 import BytecodeCache, Environment
from jinja2.bccache import Bucket
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbformat import NotebookNode

NO_DESCRIPTION = "No description has been provided for this image"  # nbconvert's placeholder, word for word
# What Python's html.parser (BeautifulSoup's "html.parser") reads as markup: a comment, a script or style (raw text,
# no tags inside; unclosed, to the end) or a start tag, attribute by attribute (a '>' inside a quoted value does not
# end it). Names and unquoted values hold no '<', as HTML spells them, so a page a student fills with unclosed tags
# costs one pass, not one per tag: a match that cannot fail, or fails at the next '<'.
_NAME = r"""(?<=['"\s/])[^\s"'<>/=][^\s<>/=]*"""
_VALUE = r"""(?:\s*=+\s*(?:'[^']*'|"[^"]*"|[^\s"'=<>`]+))?"""
_MARKUP = re.compile(r"<!--.*?(?:-->|\Z)|<(?P<raw>script|style)\b.*?(?:</(?P=raw)\s*>|\Z)"
                     rf"|<(?P<name>[a-zA-Z][^\t\n\r\f />\x00<]*)(?P<attributes>(?:[\s/]*{_NAME}{_VALUE})*)(?P<end>[\s/]*>)",
                     re.IGNORECASE | re.DOTALL)
_ATTRIBUTES = re.compile(f"({_NAME}){_VALUE}")


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


def described_images(html: str) -> str:
    """``html`` with nbconvert's placeholder ``alt`` text on every ``<img>`` that has none, as nbconvert's
    BeautifulSoup pass gives it (comments, scripts and styles hold no tags)."""
    def described(markup: re.Match) -> str:
        if (markup["name"] or "").lower() != "img":
            return markup[0]
        names = {attribute[1].lower() for attribute in _ATTRIBUTES.finditer(markup["attributes"])}
        if "alt" in names:
            return markup[0]
        return f'<{markup["name"]}{markup["attributes"]} alt="{NO_DESCRIPTION}"{markup["end"]}'

    return _MARKUP.sub(described, html)


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter whose Jinja environment shares :data:`COMPILED` with every other one here,
    without the BeautifulSoup pass (see the module docstring)."""

    def _create_environment(self) -> Environment:
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED
        return environment

    def from_notebook_node(self, nb: NotebookNode, resources: dict[str, Any] | None = None,
                           **kw: Any) -> tuple[str, dict[str, Any]]:
        """The page as :meth:`HTMLExporter.from_notebook_node` makes it, its images described without a re-parse."""
        # nbconvert 7's HTMLExporter.from_notebook_node up to its BeautifulSoup pass, line for line.
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight_code = self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
        resources = self._init_resources(resources)
        filter_data_type = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources)
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", filter_data_type)
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return described_images(html), resources
