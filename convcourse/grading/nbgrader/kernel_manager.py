"""The kernel manager of autograding: every kernel starts inside :mod:`convcourse.grading.sandbox`, in a scratch folder.

nbgrader's Execute (here :class:`convcourse.grading.nbgrader.preprocessors.GradingExecute`) creates one of these per notebook.
The kernel talks to the grader over Unix sockets (ipc), because it has a network namespace of its
own, works in a private copy of the notebook's folder, so nothing it writes lands in the course, and
gets a minimal environment (:mod:`convcourse.grading.nbgrader.kernel_env`), never the grader's. In a grade round
with a kernel template (:mod:`convcourse.grading.nbgrader.kernel_template`) the kernel is forked from it, warm, into the
same sandbox (the round names it in the job's config: ``SandboxedKernelManager.template``); otherwise, or if
the template fails, it starts cold through the launcher.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Dict, Integer, List, Unicode, default

from convcourse.grading import sandbox
from convcourse.grading.nbgrader import kernel_template
from convcourse.grading.nbgrader.kernel_env import kernel_environment
from convcourse.mnist_files import DATA_ENV

RECONNECT_MS = 10  # how soon a client tries again to reach a kernel that has not bound its sockets yet


class GradingKernelClient(AsyncKernelClient):
    """jupyter_client's client without the ~0.3 s it idles, per kernel, before and after the kernel first answers."""

    def _context_default(self) -> zmq.asyncio.Context:
        # The client connects as soon as the kernel is launched, before a fresh kernel has bound its
        # sockets, and ZeroMQ tries an ipc path again only after RECONNECT_IVL: 100 ms by default.
        context = super()._context_default()
        context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        return context

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Return once the kernel answered kernel_info and IOPub carries its messages (as jupyter_client checks).

        jupyter_client then waits until IOPub stays quiet for 0.2 s; nbclient takes only the messages of
        the request it sent, so what is still queued is dropped here at once instead.
        """
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # its busy/idle status: IOPub is subscribed (a PUB socket drops messages until it is)
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        while await self.iopub_channel.msg_ready():
            await self.iopub_channel.get_msg(timeout=0)


class SandboxedKernelManager(AsyncKernelManager):
    """Starts each kernel through the sandbox launcher, in a private scratch copy of its folder."""

    isolate = Bool(None, allow_none=True,
                   help="namespaces + own uid; False: only resource limits; None: decide by probing").tag(config=True)
    memory_mb = Integer(sandbox.Limits.memory_mb, help="data-segment cap of the kernel, MiB").tag(config=True)
    tmp_mb = Integer(sandbox.Limits.tmp_mb, help="size of the kernel's private /tmp, MiB").tag(config=True)
    file_size_mb = Integer(sandbox.Limits.file_size_mb, help="largest file the kernel may write, MiB").tag(config=True)
    max_processes = Integer(sandbox.Limits.max_processes, help="processes/threads of the kernel").tag(config=True)
    hide = List(Unicode(), help="paths the kernel must not see (solutions, gradebook, others' work)").tag(config=True)
    expose = List(Unicode(), help="extra paths the kernel must reach (e.g. the data folder)").tag(config=True)
    kernel_env = Dict(Unicode(), help="environment variables set for graded kernels (the training budget)").tag(
        config=True)
    template = Unicode("", help="folder of the round's kernel template: kernels fork from it ('': cold)").tag(config=True)

    @default("client_factory")
    def _grading_client(self) -> type[AsyncKernelClient]:
        return GradingKernelClient

    _run_dir: Path | None = None
    _warm: str | None = None  # the round's template folder, when this kernel starts warm
    _kernel_cmd: list[str] | None = None

    def _spec(self) -> sandbox.Spec:
        limits = sandbox.Limits(memory_mb=self.memory_mb, file_size_mb=self.file_size_mb,
                                max_processes=self.max_processes, tmp_mb=self.tmp_mb)
        run_dir = str(self._run_dir) if self._run_dir else ""
        return sandbox.Spec(limits=limits, isolate=bool(self.isolate), hide=tuple(self.hide),
                            expose=tuple(self.expose) + (run_dir,), owned=(run_dir,))

    async def _async_pre_start_kernel(self, **kw: Any):
        """Scratch folder, ipc sockets (the kernel has its own network), a private copy of the cwd."""
        if self.isolate is None:
            self.isolate = sandbox.require_sandbox()  # raises SandboxUnavailable unless allowed
        folder = self.template
        self._warm = folder if self.isolate and folder and os.path.isdir(folder) else None
        runs = Path(self._warm) / "runs" if self._warm else None  # where its template can reach it
        self._run_dir = Path(tempfile.mkdtemp(prefix="convcourse-kernel-", dir=runs))
        try:
            kw = self._prepare_run_dir(kw)
            return await super()._async_pre_start_kernel(**kw)
        except BaseException:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
            raise

    def _prepare_run_dir(self, kw: dict) -> dict:
        """Fill the scratch folder (connection file, sockets, a copy of the cwd, HOME) and the kernel's env."""
        os.chmod(self._run_dir, 0o700)
        if self.isolate:
            self.transport = "ipc"  # tcp on 127.0.0.1 would not reach a kernel in its own network namespace
            self.cache_ports = False
            self.ip = str(self._run_dir / "ipc")
        self.connection_file = str(self._run_dir / "kernel.json")
        work = self._run_dir / "work"
        source = kw.get("cwd")
        if source and os.path.isdir(source):
            run_dir = self._run_dir.resolve()  # never copy the scratch folder into itself
            shutil.copytree(source, work, symlinks=True, ignore=lambda folder, names: [
                n for n in names if n == ".ipynb_checkpoints" or (Path(folder) / n).resolve() == run_dir])
        else:
            work.mkdir()
        kw["cwd"] = str(work)
        (self._run_dir / "home").mkdir()
        # An allow-list, never the grader's whole environment: a submission can print what it gets into its feedback.
        env = kernel_environment(kw.get("env") or os.environ, self._run_dir, self.kernel_env)
        kw["env"] = env
        if self.isolate:
            self.expose = [*self.expose, env[DATA_ENV]]
        return kw

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The kernelspec's command, wrapped in the sandbox launcher."""
        self._kernel_cmd = super().format_kernel_cmd(extra_arguments)
        return sandbox.launcher_command(self._kernel_cmd, self._spec())

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        """Fork the kernel from the round's template when there is one and it runs this kernelspec; else cold."""
        if self._warm and self._kernel_cmd and kernel_template.qualifies(self._kernel_cmd):
            try:
                process = kernel_template.launch(self._warm, self._kernel_cmd, env=kw["env"], cwd=kw["cwd"],
                                              spec=self._spec())
            except kernel_template.WarmKernelError as error:
                self.log.warning("%s: %s", kernel_template.COLD_START, error)
            else:
                provisioner = self.provisioner
                provisioner.process, provisioner.pid, provisioner.pgid = process, process.pid, None
                provisioner.cwd = kw["cwd"]
                self._reconcile_connection_info(provisioner.connection_info)
                self.log.info("%s in %s", kernel_template.WARM_START, self._warm)
                return
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # jupyter_client looks every 0.1 s whether a killed kernel has gone; it takes milliseconds here.
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        try:
            await super()._async_cleanup_resources(restart=restart)
        finally:  # also when the kernel died and closing its sockets fails
            if self._run_dir is not None and not restart:
                shutil.rmtree(self._run_dir, ignore_errors=True)
                self._run_dir = None

    # AsyncKernelManager binds the base coroutine to this name (nbclient calls it for dead kernels).
    cleanup_resources = _async_cleanup_resources

