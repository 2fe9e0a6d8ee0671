"""Approximate an AVX2-only CPU (no AVX-512, no AMX, so no native bfloat16) on a newer x86 machine.

    PYTHONPATH=benchmarks/avx2_only .venv/bin/python benchmarks/grading_speed.py --students 2

Python imports this module at start-up in every process that has it on its path: the benchmark, plain
nbgrader and its kernels, the grader, its kernel template (and so every warm kernel) and cold kernels
(graded kernels inherit ``PYTHONPATH``). It caps ATen's and oneDNN's instruction sets at AVX2, lets those
two variables through to graded kernels, and makes ``convcourse.hardware`` see no native bf16, so
``fit`` trains in float32 as it does on an AVX2-only CPU. Only an approximation: the clock, caches and
memory of the machine stay what they are. A measurement aid, never imported by convcourse itself.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
os.environ.update(CAPS)


def _patch(name: str, module) -> None:
    if name == "convcourse.hardware":
        module.cpu_native_bf16 = lambda: False
    elif name == "convcourse.grading.nbgrader.kernel_env":
        module.ALLOWED = (*module.ALLOWED, *CAPS)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches the two convcourse modules right after they are first imported."""

    def find_spec(self, name, path, target=None):
        if name not in ("convcourse.hardware", "convcourse.grading.nbgrader.kernel_env"):
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module, run=run):
            run(module)
            _patch(name, module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport())
