"""The one table of CONVCOURSE_* settings: what nbgrader's config, Dask workers, kernels, the sandbox and the docs get from it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from traitlets.config import Config

from convcourse.grading import sandbox, settings
from convcourse.grading.nbgrader import kernel_env
from convcourse.grading.nbgrader.kernel_manager import SandboxedKernelManager
from convcourse.grading.nbgrader.preprocessors import configure_autograde

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| variable | default | meaning |"


def test_every_convcourse_variable_the_grading_side_names_is_in_the_table():
    named = {name for path in (ROOT / "convcourse" / "grading").rglob("*.py")
             for name in re.findall(r"CONVCOURSE_[A-Z_]+", path.read_text())}
    assert named - {s.name for s in settings.SETTINGS} == set()


def test_the_limits_in_nbgrader_config_come_from_the_table_or_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.CELL_TIMEOUT.name, "33")
    monkeypatch.delenv(settings.KERNEL_MEMORY_MB.name, raising=False)
    c = Config()
    configure_autograde(c, tmp_path)
    assert c.Execute.timeout == 33
    assert c.SandboxedKernelManager.memory_mb == settings.KERNEL_MEMORY_MB.default
    assert c.GradingExecute.notebook_timeout == settings.NOTEBOOK_TIMEOUT.default


def test_a_limit_the_course_config_sets_itself_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.CELL_TIMEOUT.name, "33")
    c = Config()
    c.Execute.timeout = 7
    configure_autograde(c, tmp_path)
    assert c.Execute.timeout == 7


def test_the_projects_nbgrader_config_takes_its_limits_from_the_environment(monkeypatch):
    from convcourse.grading.course.gradebook import load_config

    monkeypatch.setenv(settings.NOTEBOOK_TIMEOUT.name, "77")
    assert load_config(ROOT).GradingExecute.notebook_timeout == 77


def test_a_kernel_sees_exactly_the_settings_marked_for_kernels(tmp_path):
    grader = {s.name: "1" for s in settings.SETTINGS}
    env = kernel_env.kernel_environment(grader, tmp_path)
    assert {n for n in env if n.startswith("CONVCOURSE_")} == set(settings.KERNEL_VISIBLE)
    assert settings.ALLOW_UNSANDBOXED.name not in env and settings.SCHEDULER.name not in env


def test_forwarded_settings_are_those_marked_and_set():
    environ = {s.name: "5" for s in settings.SETTINGS} | {settings.DATASET.name: " "}
    forwarded = settings.forwarded(environ)
    assert set(forwarded) == set(settings.FORWARDED) - {settings.DATASET.name}
    assert settings.DATA.name not in forwarded  # each worker has its own data folder


def test_the_sandbox_and_kernel_manager_defaults_are_the_tables():
    limits = sandbox.Limits()
    assert (limits.memory_mb, limits.tmp_mb, limits.file_size_mb) == (
        settings.KERNEL_MEMORY_MB.default, settings.KERNEL_TMP_MB.default, settings.KERNEL_FILE_MB.default)
    traits = SandboxedKernelManager.class_traits()
    for setting in (settings.KERNEL_MEMORY_MB, settings.KERNEL_TMP_MB, settings.KERNEL_FILE_MB):
        section, name = setting.trait.split(".")
        assert section == "SandboxedKernelManager" and traits[name].default() == setting.default


@pytest.mark.parametrize("value", ["ten", "1.5"])
def test_a_setting_that_is_no_number_is_one_clear_error(value):
    with pytest.raises(settings.SettingError, match=f"CONVCOURSE_CELL_TIMEOUT must be a whole number, got '{value}'"):
        settings.check({settings.CELL_TIMEOUT.name: value})


def test_the_markdown_table_has_a_row_per_setting_with_its_default():
    rows = settings.markdown_table().splitlines()
    assert rows[0] == HEADER and len(rows) == 2 + len(settings.SETTINGS)
    assert rows[2] == f"| `CONVCOURSE_CELL_TIMEOUT` | {settings.CELL_TIMEOUT.default} | {settings.CELL_TIMEOUT.meaning} |"


def docs_tables() -> list[tuple[Path, str]]:
    """Every settings table of docs/: the lines from its header to its last row."""
    found = []
    for path in sorted((ROOT / "docs").rglob("*.md")):
        lines = path.read_text().splitlines()
        for start, line in enumerate(lines):
            if line.strip() == HEADER:
                end = start
                while end + 1 < len(lines) and lines[end + 1].startswith("|"):
                    end += 1
                found.append((path, "\n".join(lines[start:end + 1])))
    return found


def test_the_documented_settings_table_is_the_rendered_one():
    tables = docs_tables()
    if not (ROOT / "docs").is_dir():
        pytest.skip("docs/ has not landed yet")
    assert tables, f"no settings table ({HEADER}) in docs/"
    for path, table in tables:
        assert table == settings.markdown_table(), f"{path.relative_to(ROOT)}: regenerate it from settings.markdown_table()"
