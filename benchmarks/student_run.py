"""A student's default run of each release notebook on the CPU: seconds per notebook, on this machine.

Each notebook of release/ gets its solution cells from source/ (what a student who solved it has) and runs
top to bottom in a fresh python3 kernel, as "Restart Kernel and Run All Cells" does: the default settings,
no training budget ($CONVCOURSE_MAX_STEPS is removed), no GPU (CUDA and MPS hidden from the kernel),
real MNIST from $CONVCOURSE_DATA. Prints the CPU (model, cores, the instruction sets that decide torch's
speed), then per notebook its wall seconds, the kernel's CPU seconds (user + system, every thread; on a
shared machine CPU seconds / cores is the better guess of an idle machine's wall time) and the load
average; for cnn_experiments also every accuracy the written questions ask students to quote. Last line:

    seconds manual_convolution=<s> output_dimensions=<s> cnn_experiments=<s>

    CONVCOURSE_DATA=/work/shared/data .venv/bin/python benchmarks/student_run.py [NOTEBOOK ...]
    PYTHONPATH=$PWD/benchmarks/avx2_only ... benchmarks/student_run.py cnn_experiments  # as an AVX2-only CPU

`--threads 1` gives the kernel one thread (OMP_NUM_THREADS): its CPU seconds then barely depend on what else
the machine runs (no thread waits for another that lost its core), and they bound what an idle machine with
more cores needs in wall time.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # student_notebooks: how a solved release notebook is made

from student_notebooks import fill_solutions  # noqa: E402

from convcourse.budget import BUDGET_ENV  # noqa: E402
from convcourse.data import MNISTCorruptError, MNISTMissingError, verify_mnist  # noqa: E402
from convcourse.grading.course import ASSIGNMENTS  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # what decides which kernels torch can use
QUOTED = ("validation accuracy", "training batches")  # the lines of cnn_experiments the questions quote


def cpu_description() -> str:
    """The CPU model, its cores and which of FLAGS it has (Linux /proc/cpuinfo; the platform elsewhere)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((set(line.split(":", 1)[1].split()) for line in info.splitlines() if line.startswith("flags")), set())
    has = [flag for flag in FLAGS if flag in flags]
    return f"{model}, {os.cpu_count()} cores, {' '.join(has) or 'none of ' + ' '.join(FLAGS)}"


def solved(assignment: str) -> nbformat.NotebookNode:
    """The release notebook with the source's solution cells filled in."""
    read = lambda folder: nbformat.read(ROOT / folder / assignment / f"{assignment}.ipynb", as_version=4)  # noqa: E731
    return fill_solutions(read("release"), read("source"))


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(assignment: str, folder: Path) -> tuple[nbformat.NotebookNode, float, float]:
    """Execute the solved notebook in ``folder``; (executed notebook, wall seconds, kernel CPU seconds)."""
    notebook = solved(assignment)
    cpu, start = children_cpu_seconds(), time.perf_counter()
    client = NotebookClient(notebook, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()  # the kernel is shut down and reaped here, so its CPU time is counted below
    return notebook, time.perf_counter() - start, children_cpu_seconds() - cpu


def quoted(notebook: nbformat.NotebookNode) -> list[str]:
    """What the written questions of cnn_experiments ask students to quote: run lines and the tables."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                found += [line for line in output.text.splitlines() if any(key in line for key in QUOTED)]
            elif output.output_type == "display_data" and "text/html" in output.data:  # a DataFrame
                found.append(output.data["text/plain"])
    return found


def main() -> None:
    """Run the notebooks named (default: all) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help=f"any of {', '.join(ASSIGNMENTS)}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the kernel (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None and args.threads < 1:
        parser.exit(2, f"error: --threads must be at least 1, got {args.threads}\n")
    unknown = sorted(set(args.notebooks) - set(ASSIGNMENTS))
    if unknown:
        parser.exit(2, f"error: unknown notebook(s) {', '.join(unknown)}; choose from {', '.join(ASSIGNMENTS)}\n")
    try:
        verify_mnist(check_md5=False)  # the kernels read it from $CONVCOURSE_DATA; a student's run needs real MNIST
    except (MNISTMissingError, MNISTCorruptError) as error:
        parser.exit(2, f"error: {error}\n")  # the data's own advice, without a traceback
    if os.environ.pop(BUDGET_ENV, None) is not None:
        print(f"note: {BUDGET_ENV} removed: a student's run has no training budget")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the kernel inherits it: no GPU (Apple's MPS exists on macOS only)
    if args.threads is not None:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    avx2 = "avx2_only" in os.environ.get("PYTHONPATH", "")
    print(f"CPU: {cpu_description()}" + (" (run as an AVX2-only CPU: benchmarks/avx2_only)" if avx2 else ""))
    threads = f"{args.threads} thread(s) in the kernel" if args.threads else "torch's default threads"
    print(f"python {platform.python_version()}, {threads}, load average {os.getloadavg()[0]:.2f}", flush=True)
    seconds = {}
    for assignment in args.notebooks or ASSIGNMENTS:
        with tempfile.TemporaryDirectory() as folder:
            load = os.getloadavg()[0]
            try:
                notebook, wall, cpu = run(assignment, Path(folder))
            except CellExecutionError as error:
                parser.exit(2, f"error: {assignment} failed in a cell: {error.ename}: {error.evalue}\n")
        seconds[assignment] = wall
        print(f"{assignment}: {wall:.1f} s wall, {cpu:.1f} s CPU in the kernel, load average {load:.2f} -> "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        if assignment == "cnn_experiments":
            print("\n".join(quoted(notebook)), flush=True)
    print("seconds " + " ".join(f"{name}={value:.1f}" for name, value in seconds.items()))


if __name__ == "__main__":
    main()
