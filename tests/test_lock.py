"""The lock (requirements.txt, compiled by `make lock`) agrees with pyproject.toml and is what this environment runs.

pyproject.toml keeps loose ranges for people who install the package into an environment of their own; every
install of this project (`make venv`, CI, the hub's and the Dask workers' documented commands) installs the
lock's exact versions instead. These tests fail when the two drift apart: a dependency added to pyproject.toml
but not locked, a pin outside its range, a pin nothing needs any more, or an environment not built from the lock.
"""
from __future__ import annotations

import re
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.txt"
CAPS = ROOT / "lock-caps.txt"
tomllib = pytest.importorskip("tomllib", reason="the lock is compiled for Python 3.11")
# The venv's own site-packages: not the copies setuptools vendors and puts on sys.path once it is imported.
SITE = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
NOT_LOCKED = {"pip", "convcourse"}  # the installer itself and this project (installed editable beside the lock)


def read_lock(text: str) -> dict[str, Version]:
    """{canonical name: pinned version} of a pip-compile output (``name==version`` lines, comments ignored)."""
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        assert found, f"not a plain pin in the lock: {line!r}"
        pins[canonicalize_name(found[1])] = Version(found[2])
    return pins


def project_requirements(pyproject: dict) -> list[Requirement]:
    """The project's dependencies and those of every extra: what `make lock` compiles."""
    project = pyproject["project"]
    listed = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return [Requirement(text) for text in listed]


def needed(roots: list[Requirement]) -> set[str]:
    """Every distribution ``roots`` need on this machine, following installed metadata (markers and extras honoured)."""
    seen: set[str] = set()
    todo = [(req, frozenset()) for req in roots]
    while todo:
        req, parent_extras = todo.pop()
        env = [{"extra": extra} for extra in parent_extras] or [{"extra": ""}]
        if req.marker is not None and not any(req.marker.evaluate(e) for e in env):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        found = next(iter(metadata.distributions(path=SITE, name=name)), None)
        if found is None:
            continue  # reported by test_this_environment_is_the_lock (the lock has it but it is missing here)
        requires = found.requires or []
        todo.extend((Requirement(text), frozenset(req.extras)) for text in requires)
    return {name for name, _ in seen}


def test_every_dependency_of_pyproject_is_pinned_in_the_lock_within_its_range():
    pins = read_lock(LOCK.read_text())
    problems = []
    for req in project_requirements(tomllib.loads((ROOT / "pyproject.toml").read_text())):
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req} but the lock pins {pin}")
    for cap in (Requirement(line) for line in CAPS.read_text().splitlines() if line and not line.startswith("#")):
        if not cap.specifier.contains(pins[canonicalize_name(cap.name)], prereleases=True):
            problems.append(f"lock-caps.txt says {cap} but the lock pins {pins[canonicalize_name(cap.name)]}")
    assert not problems, "the lock disagrees with pyproject.toml; run `make lock`:\n  " + "\n  ".join(problems)


def test_this_environment_is_the_lock():
    pins = read_lock(LOCK.read_text())
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions(path=SITE)}
    wrong = {name: (pin, installed.get(name)) for name, pin in pins.items() if installed.get(name) != pin}
    extra = sorted(set(installed) - set(pins) - NOT_LOCKED)
    assert not wrong and not extra, (f"this environment is not the lock (`make venv` installs it; packages the lock lacks "
                                     f"stay until the venv is made anew: rm -r .venv && make venv): "
                                     f"{{name: (locked, installed)}} = {wrong}; installed but not locked: {extra}")


def test_the_lock_holds_nothing_that_pyproject_does_not_need():
    pins = read_lock(LOCK.read_text())
    reached = needed(project_requirements(tomllib.loads((ROOT / "pyproject.toml").read_text())))
    assert set(pins) - reached == set(), f"stale pins nothing in pyproject.toml needs; run `make lock`: {set(pins) - reached}"
    assert reached - set(pins) == set(), f"needed but not locked; run `make lock`: {reached - set(pins)}"


def test_read_lock_and_needed_catch_what_they_are_for():
    assert read_lock("# header\nfoo-Bar==1.2\n    # via x\n") == {"foo-bar": Version("1.2")}
    assert needed([Requirement("packaging")]) == {"packaging"}
    assert needed([Requirement('packaging; python_version < "3"')]) == set()
