"""The kernel sandbox itself: network, files, processes, memory, and refusing to run without it (~6 s)."""
from __future__ import annotations

import ast
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from convcourse.grading import sandbox
from convcourse.grading.course.folder import private_paths
from convcourse.grading.nbgrader.kernel_python import checkout_private_paths
from convcourse.grading.sandbox.cgroup import memory_cgroup_available

ROOT = Path(__file__).resolve().parent.parent
STATUS = sandbox.sandbox_status()
needs_sandbox = pytest.mark.skipif(not STATUS.available, reason=f"sandbox unavailable here: {STATUS.reason}")


class Listener:
    """A TCP server on the grader's loopback that records whether anybody connected."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def run_sandboxed(code: str, spec: sandbox.Spec, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a Python snippet through the launcher, as a kernel would be."""
    command = sandbox.launcher_command([sys.executable, "-c", textwrap.dedent(code)], spec)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_spec_survives_the_command_line():
    spec = sandbox.Spec(limits=sandbox.Limits(memory_mb=123), hide=("/a",), expose=("/b",), owned=("/c",))
    assert sandbox.Spec.from_json(spec.to_json()) == spec


def test_private_course_paths_cover_solutions_submissions_and_grades(tmp_path):
    hidden = {p.name for p in private_paths(tmp_path)}
    assert {"source", "submitted", "autograded", "feedback", "gradebook.db", "grades.csv"} <= hidden
    assert {"extensions.csv", "roster.csv", "exports"} <= hidden  # who got more time, students' emails, exports


def test_refuses_without_the_sandbox_unless_allowed(monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "sandbox_status", lambda: sandbox.Status(False, "pretend: no namespaces"))
    monkeypatch.delenv(sandbox.ALLOW_ENV, raising=False)
    with pytest.raises(sandbox.SandboxUnavailable, match="(?s)pretend: no namespaces.*--allow-unsandboxed"):
        sandbox.require_sandbox()
    monkeypatch.setenv(sandbox.ALLOW_ENV, "1")
    assert sandbox.require_sandbox() is False
    assert "WITHOUT the sandbox" in capsys.readouterr().err


@pytest.fixture
def outside_tmp():
    """A world-readable folder outside /tmp (the sandbox gives kernels a private /tmp anyway)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="convcourse-test-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def isolation_probe(port: int, course: Path) -> str:
    """A program printing what a kernel can reach: the network, the course's private files, /tmp, processes, limits."""
    return f"""
        import os, socket, resource
        print("uid", os.getuid())
        print("interfaces", sorted(name for _, name in socket.if_nameindex()))
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2); print("REACHED host loopback")
        except OSError as e: print("loopback blocked", type(e).__name__)
        print("source", os.listdir({str(course / 'source')!r}))
        print("gradebook", repr(open({str(course / 'gradebook.db')!r}).read()))
        for target in ({str(course / 'gradebook.db')!r}, {str(course / 'escaped.txt')!r}):
            try: open(target, "w").write("x"); print("WROTE", target)
            except OSError as e: print("write blocked", type(e).__name__)
        print("host tmp files", [n for n in os.listdir("/tmp") if n.startswith("host-only-")])
        print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        print("data limit", resource.getrlimit(resource.RLIMIT_DATA)[0] // 2**20)
    """


@needs_sandbox
def test_kernel_sees_no_network_no_course_files_and_cannot_write(tmp_path, outside_tmp):
    course = outside_tmp / "course"
    (course / "source").mkdir(parents=True)
    (course / "source" / "solution.txt").write_text("the answers")
    (course / "gradebook.db").write_text("grades")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    host_file = Path("/tmp") / f"host-only-{uuid.uuid4().hex}"
    host_file.write_text("x")
    listener = Listener()
    probe = isolation_probe(listener.port, course)
    hidden = tuple(map(str, private_paths(course)))
    # The course is exposed on purpose (as an ordinary user the sandbox shows only what it is told to),
    # so that its private files are really there to be hidden.
    spec = sandbox.Spec(limits=sandbox.Limits(memory_mb=1500), hide=hidden,
                        expose=(str(course), str(run_dir)), owned=(str(run_dir),))
    try:
        done = run_sandboxed(probe, spec, run_dir)
    finally:
        listener.close()
        host_file.unlink()
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "uid 0" not in out
    assert "interfaces ['lo']" in out
    assert "loopback blocked" in out and listener.connections == 0
    assert "source []" in out and "gradebook ''" in out
    assert "WROTE" not in out and out.count("write blocked") == 2
    assert (course / "gradebook.db").read_text() == "grades" and not (course / "escaped.txt").exists()
    assert "host tmp files []" in out
    assert "pids [1, 2]" in out  # its own PID namespace: an init and the program
    assert "data limit 1500" in out


def link_a_venv(folder: Path) -> Path:
    """A venv in ``folder`` reached through a new symlink in /tmp, as ``make VENV=/tmp/link grade`` (this venv's packages)."""
    import site
    import venv

    real = folder / "venv"
    venv.create(real, symlinks=True, with_pip=False)
    packages = next(real.glob("lib/python*/site-packages"))
    (packages / "convcourse-test.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    link = Path("/tmp") / f"convcourse-link-{uuid.uuid4().hex[:12]}"
    link.symlink_to(real)
    return link


@pytest.fixture
def linked_venv(tmp_path):
    link = link_a_venv(tmp_path)
    yield link
    link.unlink()


LINKED_KERNEL = """
import sys
import nbformat
from nbclient import NotebookClient
from convcourse.grading import sandbox
from convcourse.grading.nbgrader import kernel_template
from convcourse.grading.nbgrader.kernel_manager import SandboxedKernelManager
print("probe", sandbox.sandbox_status())
template = kernel_template.start_template([]) if sys.argv[1:] == ["warm"] else None
code = "import sys, on_pythonpath; print('kernel runs', sys.executable, 'preloaded', 'torch' in sys.modules)"
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
manager = SandboxedKernelManager(kernel_name="python3", isolate=True, template=str(template.folder) if template else "")
NotebookClient(nb, km=manager, timeout=60).execute()
print(nb.cells[0].outputs[0].text)
if template:
    kernel_template.stop_template(template)
"""


def run_linked_kernel(link: Path, cwd: Path, *, warm: bool = False) -> str:
    """Probe the sandbox and run a graded kernel (cold, or forked from a template) with the venv spelled as ``link``,
    importing a module from a ``PYTHONPATH`` folder in /tmp too (outside the venv, under the kernel's own /tmp)."""
    python = str(link / "bin" / "python")
    extra = cwd / "pythonpath"
    extra.mkdir()
    (extra / "on_pythonpath.py").write_text("")
    done = subprocess.run([python, "-c", LINKED_KERNEL, *(["warm"] if warm else [])], cwd=cwd, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(extra)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "probe Status(available=True" in done.stdout, done.stdout
    return done.stdout


@needs_sandbox
def test_an_interpreter_reached_through_a_symlink_runs_sandboxed(linked_venv, tmp_path):
    """The probe and a graded kernel work with the venv spelled through a link (issue 23: grading refused)."""
    printed = run_linked_kernel(linked_venv, tmp_path)
    assert f"kernel runs {linked_venv / 'bin' / 'python'} preloaded False" in printed, printed


def fake_checkout(folder: Path) -> Path:
    """Another course checkout whose ``convcourse`` (a copy of this one) a kernel may import, with solutions."""
    shutil.copytree(ROOT / "convcourse", folder / "convcourse", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    for path in ("source/a/a.ipynb", "authoring/a.py"):
        (folder / path).parent.mkdir(parents=True)
        (folder / path).write_text("the answers")
    return folder


@needs_sandbox
def test_a_kernel_sees_no_solutions_of_the_checkout_it_imports_convcourse_from(outside_tmp, tmp_path, monkeypatch):
    """The kernel's interpreter imports convcourse from another checkout than the grader's (issue 23)."""
    other = fake_checkout(outside_tmp / "clone")
    monkeypatch.setenv("PYTHONPATH", str(other))  # for the kernels only: this process imported its convcourse already
    spec = sandbox.Spec(hide=tuple(map(str, checkout_private_paths())))
    done = run_sandboxed(f"""
        import convcourse, pathlib
        print("imports from", pathlib.Path(convcourse.__file__).parent.parent)
        for checkout in ({str(other)!r}, {str(ROOT)!r}):
            for part in ("source", "authoring"):
                try: print(part, sorted(p.name for p in pathlib.Path(checkout, part).rglob("*") if p.is_file()))
                except OSError as error: print(part, type(error).__name__)
    """, spec, tmp_path)
    assert done.returncode == 0, done.stderr
    imports, *listed = done.stdout.splitlines()
    assert imports == f"imports from {other}"
    assert listed == ["source []", "authoring []"] * 2  # hidden (as root), or never shown (bubblewrap)


def test_a_kernel_interpreter_that_cannot_answer_is_named(monkeypatch):
    from convcourse.grading.course.folder import GradingError
    from convcourse.grading.nbgrader import kernel_python

    monkeypatch.setattr(kernel_python, "kernel_interpreter", lambda: "/bin/false")
    with pytest.raises(GradingError, match="/bin/false could not say what it imports.*no kernel can start"):
        checkout_private_paths()


@needs_sandbox
def test_memory_cap_raises_memory_error_but_torch_still_imports(tmp_path):
    # RLIMIT_AS would break `import torch` (it maps gigabytes); the data-segment cap does not.
    done = run_sandboxed("""
        import torch
        hog = []
        try:
            while len(hog) < 64:  # at most 4 GiB if nothing stops it
                hog.append(bytearray(64 * 2**20))
            print("NOT CAPPED")
        except MemoryError:
            print("capped at", 64 * len(hog), "MiB")
    """, sandbox.Spec(limits=sandbox.Limits(memory_mb=1536)), tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "capped at" in done.stdout, done.stdout


@needs_sandbox
@pytest.mark.skipif(not memory_cgroup_available(), reason="no memory cgroup can be created here")
def test_processes_of_one_sandbox_share_one_memory_cap(tmp_path):
    # Each child stays under the per-process cap (512 MiB) but three of them exceed the sandbox's 1 GiB.
    done = run_sandboxed("""
        import os, time
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                hog = bytearray(450 * 2**20)
                time.sleep(2)
                os._exit(0)
            children.append(pid)
        print(sorted(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children))
    """, sandbox.Spec(limits=sandbox.Limits(memory_mb=512)), tmp_path)
    assert done.returncode == 0, done.stderr
    exits = ast.literal_eval(done.stdout.strip())
    assert -9 in exits and 0 in exits  # the kernel's OOM killer took one, the others finished


@needs_sandbox
@pytest.mark.skipif(not memory_cgroup_available(), reason="no memory cgroup can be created here")
def test_a_launcher_killed_outright_leaves_no_cgroup_behind(tmp_path):
    launcher = subprocess.Popen(sandbox.launcher_command(["sleep", "30"], sandbox.Spec()), cwd=tmp_path)
    group = f"convcourse-sandbox-{launcher.pid}"
    deadline = time.monotonic() + 10
    while group not in Path(f"/proc/{launcher.pid}/cgroup").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    folder = next(Path("/sys/fs/cgroup").rglob(group))
    launcher.kill()  # SIGKILL: no clean-up of its own
    launcher.wait()
    time.sleep(0.5)  # its namespace dies with it
    assert run_sandboxed("print('next')", sandbox.Spec(), tmp_path).stdout == "next\n"
    assert not folder.exists()  # the next launcher removed the empty leftover


def _alive(token: str, program: str = "") -> bool:
    """Is any process running whose command line mentions ``token`` (and starts with ``program``)?"""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if token in cmdline and cmdline.startswith(program):
                return True
        except OSError:
            continue
    return False


@needs_sandbox
def test_processes_a_kernel_leaves_behind_die_with_it(tmp_path):
    token = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    done = run_sandboxed(f"""
        import subprocess
        subprocess.Popen(["sleep", "{token}"], start_new_session=True)  # a daemon that outlives the program
    """, sandbox.Spec(), tmp_path)
    assert done.returncode == 0, done.stderr
    time.sleep(0.5)
    assert not _alive(token)


@needs_sandbox
def test_kernel_dies_when_the_grader_that_started_it_dies(tmp_path):
    token = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    grader = subprocess.Popen([sys.executable, "-c", "import subprocess, time\nfrom convcourse.grading import sandbox\n"
                               f"subprocess.Popen(sandbox.launcher_command(['sleep', '{token}'], sandbox.Spec()))\n"
                               "time.sleep(60)"], cwd=tmp_path)
    deadline = time.monotonic() + 10
    while not _alive(token, "sleep") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(token, "sleep")
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 5
    while _alive(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(token)


@needs_sandbox
def test_a_fork_bomb_hits_the_process_cap_and_spares_the_grader(tmp_path):
    # Counted for the sandbox alone (its own uid as root, its own user namespace otherwise), so the
    # grader, which may be the same account, can still start processes while the bomb is at its cap.
    bomb = subprocess.Popen(sandbox.launcher_command([sys.executable, "-c", textwrap.dedent("""
        import os, time
        children = 0
        try:
            while children < 200:  # a bound of its own, should the cap fail
                if os.fork() == 0:
                    time.sleep(6)
                    os._exit(0)
                children += 1
            print("NOT CAPPED", flush=True)
        except OSError as error:
            print("capped after", children, type(error).__name__, flush=True)
        time.sleep(3)
    """)], sandbox.Spec(limits=sandbox.Limits(max_processes=64))), cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        line = bomb.stdout.readline()
        assert line.startswith("capped after"), line
        assert 40 <= int(line.split()[2]) < 64
        assert subprocess.run(["true"], timeout=10).returncode == 0  # the grader's own fork works meanwhile
    finally:
        bomb.wait(timeout=30)
    assert bomb.returncode == 0


@needs_sandbox
@pytest.mark.skipif(os.geteuid() == 0, reason="as root the kernel runs as its own uid, not in bubblewrap's view")
def test_an_ordinary_users_sandbox_shows_no_home_no_run_and_nothing_writable(tmp_path):
    secret = Path.home() / f".convcourse-secret-{uuid.uuid4().hex}"
    secret.write_text("the instructor's")
    # /home and /root are there only where the interpreter lives in one (then holding nothing but it).
    tops = [t for t in ("/home", "/root") if not any(p.startswith(t + "/") for p in (sys.prefix, sys.base_prefix))]
    try:
        done = run_sandboxed(f"""
            import ctypes, os
            for path in ("/run", "/var/tmp", {str(secret)!r}, {str(tmp_path)!r}, *{tops!r}):
                print(path, "visible" if os.path.exists(path) else "absent")
            for path in ("/etc/convcourse-probe", "/usr/convcourse-probe", "/convcourse-probe"):
                try: open(path, "w"); print("WROTE", path)
                except OSError as error: print("blocked", type(error).__name__)
            print("new user namespace:", ctypes.CDLL(None, use_errno=True).unshare(0x10000000))  # CLONE_NEWUSER
        """, sandbox.Spec(), Path("/"))
    finally:
        secret.unlink()
    assert done.returncode == 0, done.stderr
    assert "absent" in done.stdout and "visible" not in done.stdout, done.stdout
    assert "WROTE" not in done.stdout and done.stdout.count("blocked") == 3
    assert "new user namespace: -1" in done.stdout  # none of its own inside: bwrap --disable-userns


@needs_sandbox
@pytest.mark.skipif(os.geteuid() == 0, reason="as root the kernel runs as its own uid, not in bubblewrap's view")
def test_folders_leading_to_a_path_exposed_under_tmp_are_read_only(tmp_path):
    """A checkout under /tmp: the folders bwrap makes in the private /tmp to reach its venv are not writable."""
    venv = tmp_path / "checkout" / ".venv"
    venv.mkdir(parents=True)
    done = run_sandboxed(f"""
        for path in ({str(tmp_path / "checkout" / "escaped.txt")!r}, {str(tmp_path / "escaped.txt")!r},
                     {str(venv / "escaped.txt")!r}, "/tmp/scratch.txt"):
            try: open(path, "w").write("x"); print("WROTE", path)
            except OSError as error: print("blocked", path, type(error).__name__)
    """, sandbox.Spec(expose=(str(venv),)), Path("/"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("blocked") == 3, done.stdout  # the two shelves and the read-only venv
    assert "WROTE /tmp/scratch.txt" in done.stdout  # its own /tmp stays writable
    assert not list(tmp_path.rglob("escaped.txt"))


def test_shelves_are_the_first_folders_below_the_private_tmp():
    from convcourse.grading.sandbox.paths import shelves

    assert shelves(["/tmp/ci/main/.venv", "/tmp/convcourse-kernel-x", "/dev/shm/a/b", "/work/x"]) == \
        ["/tmp/ci", "/dev/shm/a"]
    assert shelves(["/tmp/ci", "/tmp/ci/main/.venv"]) == []  # bound itself: no shelf needed


def test_links_on_the_way_to_a_path_are_found_with_their_targets(tmp_path):
    from convcourse.grading.sandbox.paths import links

    (tmp_path / "real" / "bin").mkdir(parents=True)
    (tmp_path / "venv").symlink_to("real")  # relative, as `ln -s real venv`
    (tmp_path / "link").symlink_to(tmp_path / "venv")  # a link to a link
    (tmp_path / "real" / "bin" / "python3.11").write_text("")
    (tmp_path / "real" / "bin" / "python").symlink_to("python3.11")
    found = dict(links([str(tmp_path / "link" / "bin" / "python"), str(tmp_path / "real")]))
    assert found == {str(tmp_path / "link"): str(tmp_path / "venv"), str(tmp_path / "venv"): "real",
                     str(tmp_path / "real" / "bin" / "python"): "python3.11"}
    assert links([str(tmp_path / "real" / "bin" / "python3.11")]) == []


def test_an_ordinary_user_without_bubblewrap_is_told_what_to_install(monkeypatch):
    from convcourse.grading.sandbox import bwrap

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(bwrap, "bwrap_path", lambda: None)
    status = sandbox.sandbox_status.__wrapped__()
    assert not status.available and "apt-get install bubblewrap" in status.reason


def test_disabled_user_namespaces_are_named(monkeypatch, tmp_path):
    from convcourse.grading.sandbox import bwrap

    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "unprivileged_userns_clone").write_text("0\n")
    monkeypatch.setattr(bwrap, "_SYSCTL", tmp_path)
    assert "kernel.unprivileged_userns_clone=1" in bwrap.missing_userns_setting()


def test_limits_only_mode_needs_no_privileges(tmp_path):
    done = run_sandboxed("import resource; print(resource.getrlimit(resource.RLIMIT_DATA)[0] // 2**20)",
                         sandbox.Spec(limits=sandbox.Limits(memory_mb=3000), isolate=False), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3000"
