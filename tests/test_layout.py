"""The package's two sides, and every contract that is spelled as a string (module paths, file names, commands).

A module moved or renamed without its string following it fails here, not in a student's kernel.
"""
from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import pytest

import convcourse.checks as checks
from convcourse.grading import sandbox
from convcourse.grading.nbgrader import preprocessors

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "convcourse"
# What students' notebooks import (directly or through these): the import paths released notebooks rely on;
# and `python -m convcourse`, the student's install check.
STUDENT_MODULES = {"__main__", "budget", "checks", "convviz", "data", "diagnosis", "evaluation", "hardware", "inputs",
                   "layerstack", "mnist_files", "models", "plots", "shapes", "train", "widgetkit", "widgets",
                   "exercise_checks"}  # the later hand exercises' checks (issue 21)


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a Python file imports (relative imports resolved against convcourse)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names.add(f"convcourse.{base}".rstrip(".") if node.level else base)
    return names


# `python -m convcourse check NOTEBOOK`, the check students run before handing in: it runs a notebook with nbclient
# (which comes with JupyterLab), like the grader, but never imports the grader's code or nbgrader.
STUDENT_MODULES |= {"check"}
RUNS_NOTEBOOKS = {"check"}
STUDENT_MODULES.add("translation")  # shifted digits, cnn_experiments 2.7 (issue 21)


def test_the_top_level_holds_student_modules_and_the_grading_package_only():
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert top == STUDENT_MODULES
    assert folders == {"grading"}


@pytest.mark.parametrize("module", sorted(STUDENT_MODULES))
def test_student_modules_never_import_the_grading_side_or_nbgrader(module):
    imports = imported_modules(PACKAGE / f"{module}.py")
    runner = ("nbclient", "jupyter_client") if module not in RUNS_NOTEBOOKS else ()
    assert not {m for m in imports if m.startswith(("convcourse.grading", "nbgrader", *runner))}


def test_torch_free_modules_stay_torch_free():
    """The grader reads the data and budget rules without paying for `import torch`."""
    for module in ("mnist_files", "budget"):
        assert not {m for m in imported_modules(PACKAGE / f"{module}.py") if m.split(".")[0] in {"torch", "numpy"}}


# ---------------------------------------------------------------- contracts spelled as strings


# The grading side's wings from the ground up: each imports only wings before it in this list (no circle, five
# floors). `preprocessors` is the old module path deployed configs name; `__main__` the instructor's commands.
GRADING_WINGS = ["settings", "demo", "sandbox", "course", "nbgrader", "preprocessors", "hub", "rounds", "__main__"]


def test_each_grading_wing_imports_only_the_wings_below_it():
    grading = PACKAGE / "grading"
    found = {path.relative_to(grading).parts[0].removesuffix(".py") for path in grading.glob("*")
             if path.suffix == ".py" or (path / "__init__.py").is_file()} - {"__init__"}
    assert found == set(GRADING_WINGS), "a new wing of convcourse/grading/ needs its place in GRADING_WINGS"
    upward = []
    for path in sorted(grading.rglob("*.py")):
        wing = path.relative_to(grading).parts[0].removesuffix(".py")
        if wing == "__init__":
            continue
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[:2] == ["convcourse", "grading"] and len(parts) > 2 and parts[2] != wing:
                if GRADING_WINGS.index(parts[2]) > GRADING_WINGS.index(wing):
                    upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not upward, "a wing imports one above it:\n" + "\n".join(upward)


def test_the_launcher_module_the_sandbox_runs_with_dash_m_exists():
    command = sandbox.launcher_command(["true"], sandbox.Spec())
    target = command[command.index("-m") + 1]
    assert target == sandbox.LAUNCHER_MODULE
    assert callable(importlib.import_module(target).main)


def test_the_fork_server_the_kernel_template_runs_with_dash_m_exists():
    from convcourse.grading.nbgrader import kernel_template

    assert kernel_template.TEMPLATE_MODULE == sandbox.FORK_SERVER_MODULE
    assert callable(importlib.import_module(sandbox.FORK_SERVER_MODULE).main)


def test_the_modules_a_workers_job_server_preloads_exist():
    from convcourse.grading.rounds import job_server

    for name in job_server.PRELOAD:
        assert importlib.util.find_spec(name) is not None, name


def test_the_guard_the_grader_imports_by_name_inside_kernels_exists():
    guard = importlib.import_module(preprocessors.GUARD_MODULE)
    assert callable(guard.install) and callable(guard.restore)


def test_the_layer_homes_of_checks_name_real_modules():
    for home in checks._LAYER_HOMES:
        module = importlib.import_module(home.rstrip("."))
        assert module.__name__.startswith(home.rstrip("."))
    from torch import nn

    from convcourse.models import PrintSize
    assert nn.Conv2d.__module__.startswith(checks._LAYER_HOMES) and PrintSize.__module__.startswith(checks._LAYER_HOMES)


def test_every_module_checks_loads_from_its_file_exists():
    names = re.findall(r"private_module\(\"(\w+)\"\)", (PACKAGE / "checks.py").read_text())
    assert names, "checks.py loads no private module any more: drop this test"
    for name in names:
        assert (PACKAGE / f"{name}.py").is_file()
        assert checks.private_module(name).__name__ == f"convcourse._private_{name}"


def documented_modules() -> set[str]:
    """Every `python -m convcourse...` / `-m authoring...` in the Makefile, README, CONTRIBUTING, CI and docs/."""
    found = set()
    names = ("Makefile", "README.md", "CONTRIBUTING.md", ".ci/run", "benchmarks/README.md")
    for path in [*(ROOT / name for name in names), *(ROOT / "docs").glob("*.md")]:
        found.update(re.findall(r"-m ((?:convcourse|authoring)[\w.]*)", path.read_text()))
    return found


def test_every_documented_module_command_resolves():
    modules = documented_modules()
    assert {"convcourse.grading", "authoring.build"} <= modules
    for module in modules:
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"documented `python -m {module}` does not exist"
        if spec.submodule_search_locations:  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, module


def test_nbgrader_config_plugs_in_the_grading_preprocessors():
    text = (ROOT / "nbgrader_config.py").read_text()
    module, name = re.search(r"from ([\w.]+) import (configure_autograde)", text).groups()
    assert callable(getattr(importlib.import_module(module), name))


# What nbgrader_config.py files deployed before the wings (issue 23) and the authoring scripts name.
KEPT_PATHS = ("convcourse.grading.preprocessors.configure_autograde", "convcourse.grading.preprocessors.GradingExecute",
              "convcourse.grading.preprocessors.RestoreCells", "convcourse.grading.course.ASSIGNMENTS")


@pytest.mark.parametrize("dotted", KEPT_PATHS)
def test_module_paths_deployed_configs_and_scripts_name_keep_working(dotted):
    module, _, name = dotted.rpartition(".")
    assert getattr(importlib.import_module(module), name, None) is not None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent of it is a module, not a package
        return False


def test_every_grading_module_named_in_a_string_or_docstring_exists():
    """A grading module path spelled in code, docs, notebooks or the Makefile names a module (or a name in one)."""
    pattern = re.compile(r"convcourse\.grading(?:\.\w+)+")
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").rglob("*.py"),
             *(ROOT / "authoring").glob("*.py"), ROOT / "nbgrader_config.py", ROOT / "Makefile",
             ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "benchmarks" / "README.md",
             *(ROOT / "docs").rglob("*.md"), *(ROOT / "release").rglob("*.ipynb")]
    unresolved = set()
    for path in files:
        for dotted in set(pattern.findall(path.read_text())):
            parts = dotted.split(".")
            while not _is_module(".".join(parts)):
                parts.pop()  # a trailing name inside a module: the module must exist, and hold it
            module = importlib.import_module(".".join(parts))
            rest = dotted.split(".")[len(parts):]
            if rest and not hasattr(module, rest[0]):
                unresolved.add(f"{dotted} ({path.relative_to(ROOT)})")
        for named in set(re.findall(r"convcourse/grading/[\w/]*\w\.py", path.read_text())):
            if not (ROOT / named).is_file():
                unresolved.add(f"{named} ({path.relative_to(ROOT)})")
    assert not unresolved, sorted(unresolved)


# ---------------------------------------------------------------- declared dependencies


def declared_distributions() -> set[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the course itself also runs on 3.10
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    return {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


def test_every_third_party_import_is_declared_in_pyproject():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "authoring").glob("*.py"), *(ROOT / "tests").glob("*.py"),
             *(ROOT / "benchmarks").glob("*.py")]
    local = {"convcourse", "authoring", "conftest", *(p.stem for p in (ROOT / "tests").glob("*.py")),  # tests' helpers
             *(p.stem for p in (ROOT / "benchmarks").glob("*.py"))}  # benchmarks share helpers too
    distributions = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    missing = {}
    for path in files:
        for module in imported_modules(path):
            top = module.split(".")[0]
            if not top or top in local or top in sys.stdlib_module_names:
                continue
            owners = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
            if not owners & declared:
                missing.setdefault(top, path.relative_to(ROOT).as_posix())
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_avx2_emulation_of_the_benchmarks_patches_what_it_names():
    import subprocess

    from convcourse.hardware import _cpuinfo_flags

    if "avx2" not in _cpuinfo_flags():
        pytest.skip("this CPU has no AVX2 to cap torch at")

    probe = ("import torch, convcourse.hardware as h, convcourse.grading.nbgrader.kernel_env as k; "
             "print(torch.backends.cpu.get_cpu_capability(), h.cpu_native_bf16(), "
             "k.allowed('ATEN_CPU_CAPABILITY') and k.allowed('ONEDNN_MAX_CPU_ISA'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "benchmarks" / "avx2_only")})
    assert done.stdout.split() == ["AVX2", "False", "True"], done.stderr
