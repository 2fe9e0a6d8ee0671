"""The documentation: docs/ builds strictly as a site, and every link and module path it gives leads somewhere.

`mkdocs build --strict` with mkdocs.yml's validation settings turns a link to a missing page, a missing
anchor or a page left out of the nav into an error; a copy of the docs with broken links proves it does.
The README is read on GitHub, not built: its relative links are checked here. Every `convcourse.…` dotted
path and `convcourse/…` file path that the pages, the README and the files the site includes name must
resolve to a module, an attribute or a file. A few seconds in all (each build ~1 s).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::[\w-]+)?"', re.MULTILINE)  # pymdownx.snippets' include lines
DOTTED = re.compile(r"(?<![\w/.-])convcourse(?:\.\w+)+")
FILE_PATH = re.compile(r"(?<![\w/.-])convcourse/[\w/]*\w(?:\.py)?")
WINGS = "convcourse/grading"



def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of one mkdocs.yml into `site`, its log captured."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor, printed on every build
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, env=env, timeout=300)


def included_files() -> list[Path]:
    """The files outside docs/ that pages include with pymdownx.snippets, found from the include lines."""
    named = {name for page in DOCS.glob("*.md") for name in SNIPPET.findall(page.read_text())}
    return sorted(ROOT / name for name in named)


def test_the_site_builds_strictly_without_a_warning(tmp_path):
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert included_files(), "no page includes another file any more: drop the copying below"


def test_a_broken_link_or_anchor_stops_the_build(tmp_path):
    """A copy of the docs with one broken link of each kind: the strict build fails and names all three."""
    copy = tmp_path / "project"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy2(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    for path in included_files():
        (copy / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy / path.relative_to(ROOT))
    assert build(copy / "mkdocs.yml", tmp_path / "intact").returncode == 0  # the copy alone builds
    page = copy / "docs" / "tests.md"
    page.write_text(page.read_text() + "\n[gone](no-such-page.md) [nowhere](students.md#no-such-heading) "
                    "[here](#no-such-anchor)\n")
    done = build(copy / "mkdocs.yml", tmp_path / "broken")
    assert done.returncode != 0
    for link in ("no-such-page.md", "students.md#no-such-heading", "#no-such-anchor"):
        assert f"contains a link '{link}'" in done.stderr, done.stderr


def limits_table() -> str:
    """The limits table of the sandbox page: what stands between its two markers."""
    text = (DOCS / "sandbox.md").read_text()
    table = re.search(r"<!-- limits-table -->\n(.*?)<!-- /limits-table -->", text, re.DOTALL)
    assert table, "docs/sandbox.md lost its <!-- limits-table --> markers"
    return table.group(1).strip()


def test_the_limits_table_is_marked_for_its_generated_twin():
    rows = [line for line in limits_table().splitlines() if line.startswith("| `CONVCOURSE_")]
    assert len(rows) >= 5, limits_table()


def test_the_limits_table_is_the_settings_table():
    """Once the grading side has its one table of settings (branch i23-wings), the page shows exactly its rendering."""
    settings = pytest.importorskip("convcourse.grading.settings", reason="convcourse.grading.settings lands with i23-wings")
    assert limits_table() == settings.markdown_table().strip(), (
        "paste convcourse.grading.settings.markdown_table() between the limits-table markers of docs/sandbox.md")


def test_every_relative_link_of_the_readme_leads_to_a_file():
    text = (ROOT / "README.md").read_text()
    links = [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", target)]
    assert links
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, missing


def documented_paths() -> list[str]:
    """Every `convcourse.…` and `convcourse/…` path the site's pages, their included files and the README name."""
    found: set[str] = set()
    for path in [*DOCS.glob("*.md"), *included_files(), ROOT / "README.md"]:
        text = path.read_text()
        found.update(DOTTED.findall(text), FILE_PATH.findall(text))
    return sorted(found | grading_paths())


def grading_paths() -> set[str]:
    """The grading side's files named short: in the README's wings table, the round on the architecture page, and
    CONTRIBUTING's layout table (`job_server.py` after `convcourse/grading/rounds/cluster.py` lives beside it)."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("[start:wings]"):readme.index("[end:wings]")].splitlines()[3:]
    named = [span for row in table for span in re.findall(r"`([^`]+)`", row.split(" | ")[0])]
    wings = "|".join(span.rstrip("/") for span in named if span.endswith("/"))
    found = {f"{WINGS}/{span}" for span in named}
    found |= {f"{WINGS}/{span}" for span in re.findall(rf"`((?:{wings})/\w+\.py)`", (DOCS / "architecture.md").read_text())}
    for row in (ROOT / "CONTRIBUTING.md").read_text().splitlines():
        if not row.startswith("| `convcourse/"):
            continue
        first = row.split(" | ")[0]
        lead = re.search(r"`([^`]+)`", first).group(1)
        folder = lead if lead.endswith("/") else lead.rpartition("/")[0] + "/"
        where = row if lead.endswith("/") else first  # a folder's row names its files in the description
        found |= {folder + name for name in re.findall(r"`(\w+\.py)`", where)}
    return found


def resolves(path: str) -> bool:
    """A file path names a file or folder of the checkout; a dotted path a module, or a name inside one."""
    if "/" in path:
        return (ROOT / path).exists()
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent of it is a module, not a package
            found = False
        if found:
            target = importlib.import_module(module)
            for name in parts[cut:]:
                if not hasattr(target, name):
                    return False
                target = getattr(target, name)
            return True
    return False


def test_the_documented_paths_are_found():
    paths = documented_paths()
    assert "convcourse.grading.course.ASSIGNMENTS" in paths and f"{WINGS}/rounds/pipeline.py" in paths


@pytest.mark.parametrize("path", documented_paths())
def test_every_path_the_docs_name_resolves(path):
    assert resolves(path), f"the docs name {path}, which is no module, attribute or file"


def test_every_module_of_the_package_has_a_row_in_contributings_layout_table():
    """A new module is described where a newcomer looks for it (the other direction of the test above)."""
    named = set(grading_paths())
    for row in (ROOT / "CONTRIBUTING.md").read_text().splitlines():
        if row.startswith("| `convcourse/"):
            first = row.split(" | ")[0]
            lead = re.search(r"`([^`]+)`", first).group(1)
            folder = lead.rpartition("/")[0] + "/"
            named |= {lead} | {folder + name for name in re.findall(r"`(\w+\.py)`", first)}
            named |= set(re.findall(r"`(convcourse/[\w/]+\.py)`", row))  # a whole path anywhere in the row
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "convcourse").rglob("*.py") if p.name != "__init__.py"}
    folders = {name for name in named if name.endswith("/")}
    missing = {m for m in modules if m not in named and not any(m.startswith(f) for f in folders)}
    assert not missing, f"modules without a row in CONTRIBUTING.md's layout table: {sorted(missing)}"
