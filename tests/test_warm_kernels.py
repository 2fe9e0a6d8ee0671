"""Warm kernels: forked from one template, in the same sandbox as cold ones, without the traps of forking after torch.

Runs as root (own uid per kernel) and, through ``test_as_user.py``, as an ordinary account (each kernel
in a user namespace of its own inside the template's bubblewrap). About 20 s.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.utils import run_sync
from test_sandbox import Listener, _alive, isolation_probe, link_a_venv, needs_sandbox, run_linked_kernel

from convcourse.grading import sandbox
from convcourse.grading.course.folder import private_paths
from convcourse.grading.nbgrader import kernel_template
from convcourse.grading.nbgrader.kernel_manager import RECONNECT_MS, GradingKernelClient, SandboxedKernelManager

pytestmark = [needs_sandbox]
ROOT_ROUTE = os.geteuid() == 0


@pytest.fixture(scope="module")
def outside():
    """A world-readable folder outside /tmp that the template may show its kernels (read-only)."""
    folder = Path(tempfile.mkdtemp(prefix="convcourse-warm-test-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def round_hidden(folder: Path) -> list[str]:
    """A file and a folder a round hides from its template and from each kernel (as Course.hidden names them)."""
    (folder / "source").mkdir(exist_ok=True)
    (folder / "source" / "solution.txt").write_text("the answers")
    (folder / "grades.csv").write_text("grades")
    return [str(folder / "source"), str(folder / "grades.csv")]


@pytest.fixture(scope="module")
def template(outside):
    started = kernel_template.start_template(hide=round_hidden(outside), expose=(str(outside),))
    yield started
    kernel_template.stop_template(started)
    assert not started.folder.exists()


def run_dir(template: kernel_template.Template) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="convcourse-kernel-", dir=template.runs))
    folder.chmod(0o700)
    return folder


def start_warm(template, code: str, spec: sandbox.Spec | None = None):
    """Start a Python snippet as a warm kernel (``python -c``); its process and the files of its stdout, stderr."""
    folder = run_dir(template)
    spec = spec or sandbox.Spec()
    spec = sandbox.Spec(limits=spec.limits, hide=spec.hide, expose=(*spec.expose, str(folder)), owned=(str(folder),))
    env = {"PATH": os.environ["PATH"], "HOME": str(folder), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    process = kernel_template.launch(template.folder, [sys.executable, "-c", textwrap.dedent(code)], env=env,
                                  cwd=str(folder), spec=spec, stdio=(0, out.fileno(), err.fileno()))
    return process, out, err


def run_warm(template, code: str, spec: sandbox.Spec | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run a Python snippet as a warm kernel (``python -c``); its exit status and output."""
    process, out, err = start_warm(template, code, spec)
    code = process.wait(timeout)
    out.seek(0), err.seek(0)
    return subprocess.CompletedProcess([], code, out.read().decode(), err.read().decode())


def test_the_template_copies_no_thread_pool_it_started_itself(template):
    # The only threads after its imports are OpenBLAS's (numpy, scipy), which shut down around a fork.
    assert template.threads is not None and template.threads <= 3


def test_a_warm_kernel_is_sandboxed_like_a_cold_one(template, outside):
    course = outside / f"course-{uuid.uuid4().hex[:6]}"
    (course / "source").mkdir(parents=True)
    (course / "source" / "solution.txt").write_text("the answers")
    (course / "gradebook.db").write_text("grades")
    sibling = run_dir(template)  # another student's kernel folder
    (sibling / "notebook.ipynb").write_text("someone else's work")
    listener = Listener()
    probe = textwrap.dedent(isolation_probe(listener.port, course)) + textwrap.dedent(f"""
        import ctypes, sys
        print("sibling", os.path.exists({str(sibling)!r}), "control", os.path.exists({str(template.folder / 'control.sock')!r}))
        print("fds", sorted(os.listdir("/proc/self/fd")))
        print("preloaded", "torch" in sys.modules)
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print("caps", status["CapEff"].strip(), "dumpable", ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))
        print("new user namespace:", ctypes.CDLL(None, use_errno=True).unshare(0x10000000))
    """)
    spec = sandbox.Spec(limits=sandbox.Limits(memory_mb=3000), hide=tuple(map(str, private_paths(course))),
                        expose=(str(course),))
    try:
        done = run_warm(template, probe, spec)
    finally:
        listener.close()
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "uid 0" not in out and "interfaces ['lo']" in out
    assert "loopback blocked" in out and listener.connections == 0
    assert "source []" in out and "gradebook ''" in out
    assert "WROTE" not in out and out.count("write blocked") == 2 and "host tmp files []" in out
    assert "sibling False control False" in out
    assert "pids [1, 2]" in out and "data limit 3000" in out
    assert "fds ['0', '1', '2', '3']" in out  # 3: listdir's own; nothing of the template or its warden
    assert "preloaded True" in out and "caps 0000000000000000" in out and "dumpable 1" in out
    if not ROOT_ROUTE:  # as bubblewrap's --disable-userns does for a cold kernel
        assert "new user namespace: -1" in out


def test_what_the_template_hides_its_kernels_hide_again(template, outside):
    # As an ordinary user the template's bubblewrap already covers them: a hidden file is then an unlinked one.
    spec = sandbox.Spec(hide=tuple(round_hidden(outside)))
    done = run_warm(template, f"import os; print(os.listdir({str(outside / 'source')!r}), "
                              f"repr(open({str(outside / 'grades.csv')!r}).read()))", spec)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[] ''\n"


def test_a_warm_kernel_runs_with_a_venv_reached_through_a_symlink(tmp_path):
    # The template's view (bubblewrap's, as an ordinary user) and each kernel's mounts make the link too.
    link = link_a_venv(tmp_path)
    try:
        printed = run_linked_kernel(link, tmp_path, warm=True)
    finally:
        link.unlink()
    assert f"kernel runs {link / 'bin' / 'python'} preloaded True" in printed, printed


def test_fork_after_torch_traps_are_absent(template):
    # OpenMP/MKL pools, autograd threads and CUDA would break in a fork if the template had started them.
    done = run_warm(template, """
        import threading, numpy, torch
        from torch.utils.data import DataLoader, TensorDataset
        print("threads at start", threading.active_count(), "bad fork", torch.cuda._is_in_bad_fork())
        print("torch threads", torch.get_num_threads())
        a = torch.randn(1024, 1024)
        assert torch.allclose(a @ torch.eye(1024), a)
        w = torch.randn(64, 64, requires_grad=True)
        (torch.randn(8, 64) @ w).pow(2).sum().backward()
        print("grad", tuple(w.grad.shape))
        print("numpy", float((numpy.ones((512, 512)) @ numpy.ones((512, 512))).sum()))
        loader = DataLoader(TensorDataset(torch.arange(64.0)), batch_size=8, num_workers=2)
        print("loader", int(sum(batch[0].sum() for batch in loader)))
    """, timeout=120)
    assert done.returncode == 0, done.stderr
    cold = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get(
                              "OMP_NUM_THREADS", "2")}).stdout.strip()
    assert "threads at start 1 bad fork False" in done.stdout
    assert f"torch threads {cold}" in done.stdout  # the same pool a cold kernel gets
    assert "grad (64, 64)" in done.stdout and "numpy 134217728.0" in done.stdout and "loader 2016" in done.stdout


def test_each_warm_kernel_draws_its_own_random_numbers(template):
    code = "import random, numpy, torch; print(random.random(), numpy.random.rand(), torch.rand(1).item())"
    first, second = (run_warm(template, code).stdout.split() for _ in range(2))
    assert len(first) == 3 and all(a != b for a, b in zip(first, second))


def test_a_warm_kernel_dies_when_its_grader_lets_go(template):
    token = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    folder = run_dir(template)
    spec = sandbox.Spec(expose=(str(folder),), owned=(str(folder),))
    code = f"import subprocess; subprocess.run(['sleep', '{token}'])"
    process = kernel_template.launch(template.folder, [sys.executable, "-c", code], env={"PATH": os.environ["PATH"]},
                                  cwd=str(folder), spec=spec)
    deadline = time.monotonic() + 10
    while not _alive(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(token)
    process._conn.close()  # as when the grader dies
    deadline = time.monotonic() + 5
    while _alive(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(token)


def test_a_memory_cap_the_preloaded_modules_would_eat_is_refused(template):
    folder = run_dir(template)
    spec = sandbox.Spec(limits=sandbox.Limits(memory_mb=512), expose=(str(folder),), owned=(str(folder),))
    with pytest.raises(kernel_template.WarmKernelError, match="preloaded modules take"):
        kernel_template.launch(template.folder, [sys.executable, "-c", "pass"], env={}, cwd=str(folder), spec=spec)


@contextmanager
def kernel(manager: SandboxedKernelManager, cwd: Path):
    """Start ``manager``'s kernel; a ready client, and (printed text of a cell) run; shut down afterwards."""
    run_sync(manager.start_kernel)(cwd=str(cwd))
    client = BlockingKernelClient(connection_file=manager.connection_file)
    client.load_connection_file()
    client.start_channels()

    def run(code: str) -> str:
        printed = []
        reply = client.execute_interactive(code, timeout=30,
                                           output_hook=lambda msg: printed.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(printed)

    try:
        client.wait_for_ready(timeout=60)
        yield client, run
    finally:
        client.stop_channels()
        run_sync(manager.shutdown_kernel)(now=True)


def test_a_warm_ipykernel_runs_cells_plots_inline_and_can_be_interrupted(template, tmp_path):
    manager = SandboxedKernelManager(kernel_name="python3", isolate=True, template=str(template.folder))
    with kernel(manager, tmp_path) as (client, run):
        assert isinstance(manager.provisioner.process, kernel_template.WarmProcess)
        printed = run("import sys, matplotlib; print('warm', 'torch' in sys.modules, matplotlib.get_backend())")
        assert "warm True module://matplotlib_inline.backend_inline" in printed
        msg_id = client.execute("import time; time.sleep(60)")
        time.sleep(1)
        run_sync(manager.interrupt_kernel)()
        reply = client.get_shell_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["ename"] == "KeyboardInterrupt"
        run_dir_path = manager._run_dir
    assert not run_sync(manager.is_alive)() and not run_dir_path.exists()


def test_a_kernel_the_template_cannot_serve_starts_cold_and_still_works(template, tmp_path):
    manager = SandboxedKernelManager(kernel_name="python3", isolate=True, memory_mb=512,
                                     template=str(template.folder))  # below the preloaded modules
    with kernel(manager, tmp_path) as (_, run):
        assert isinstance(manager.provisioner.process, subprocess.Popen)  # the launcher's process: cold
        assert "cold False" in run("import sys; print('cold', 'torch' in sys.modules)")


def test_the_grading_client_reaches_a_new_kernel_without_zmqs_100_ms_retry(template, tmp_path):
    manager = SandboxedKernelManager(kernel_name="python3", isolate=True, template=str(template.folder))
    run_sync(manager.start_kernel)(cwd=str(tmp_path))
    client = manager.client()  # what nbclient asks the manager for
    try:
        assert isinstance(client, GradingKernelClient)
        client.start_channels()  # at once: the forked kernel has not bound its sockets yet
        channels = (client.shell_channel, client.iopub_channel, client.stdin_channel, client.control_channel)
        assert {c.socket.getsockopt(zmq.RECONNECT_IVL) for c in channels} == {RECONNECT_MS}
        run_sync(client.wait_for_ready)(timeout=60)
    finally:
        client.stop_channels()
        run_sync(manager.shutdown_kernel)(now=True)


def test_a_kernel_asked_for_while_the_template_imports_starts_at_once_one_at_a_time(outside):
    fresh = kernel_template.start_template(hide=[], wait=False)  # as a round starts it
    try:
        early, out, _ = start_warm(fresh, "import sys, time; print('early', 'torch._dynamo' not in sys.modules, "
                                          "flush=True); import torch; print('works', int(torch.ones(3).sum()), "
                                          "flush=True); time.sleep(120)")
        deadline = time.monotonic() + 60
        while b"works 3" not in (out.seek(0) or out.read()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"early True" in (out.seek(0) or out.read())  # forked before the last import: it imported torch itself
        assert b"works 3" in (out.seek(0) or out.read())
        # A second one, while the early kernel runs, waits for the template's imports.
        second = run_warm(fresh, "import sys; print('loaded', 'torch._dynamo' in sys.modules)")
        assert second.returncode == 0 and "loaded True" in second.stdout, second.stderr
        early.kill()
        assert early.wait(30) != 0
    finally:
        kernel_template.stop_template(fresh)


def test_a_template_that_dies_while_importing_is_reported_at_once_even_with_an_early_kernel(outside):
    fresh = kernel_template.start_template(hide=[], wait=False)
    try:
        early, _, _ = start_warm(fresh, "import time; time.sleep(120)")
        fresh.process.kill()  # the template only: its early kernel's warden lives on
        began = time.monotonic()
        with pytest.raises(kernel_template.WarmKernelError, match="did not start"):
            fresh.wait_ready(timeout=60)
        assert time.monotonic() - began < 10  # the end of its "ready" pipe, not the timeout
        early.kill()
    finally:
        kernel_template.stop_template(fresh)
