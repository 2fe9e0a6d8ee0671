"""The shape calculator and the visualiser in a real JupyterLab, driven by headless Chromium.

Starts JupyterLab on localhost with a random token in a temporary folder, opens a fresh notebook,
runs all its cells from the Run menu, types into the calculator's kernel box and steps the
visualiser's slider, and checks what the page shows. A screenshot goes to artifacts/.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browser import ARTIFACTS, CHROMIUM_ARGS
from browser import unavailable as _unavailable

from convcourse.shapes import ShapeError, conv2d_output_shape

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
SERVER_START_S = 60
UI_TIMEOUT_MS = 30_000

CELLS = [
    "from convcourse.widgets import ShapeCalculator, ConvVisualiser",
    "calc = ShapeCalculator()\ncalc",
    "viz = ConvVisualiser()\nviz",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_lab_home(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A notebook folder plus private Jupyter settings: no news pop-up, no workspace from a past run."""
    notebooks = tmp / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, notebooks / "calculator.ipynb")
    for plugin, values in (("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
                           # without this a slow start can leave the notebook waiting on a "Select Kernel" dialog
                           ("notebook-extension/tracker", {"autoStartDefaultKernel": True})):
        path = tmp / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update({
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "IPYTHONDIR": str(tmp / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    return notebooks, env


def _wait_until_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer {url} within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen, base: str, token: str) -> None:
    """Ask the server to shut down (it stops its kernels); kill the whole process group if it lingers."""
    if proc.poll() is None:
        try:
            request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=5).close()
            proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """A JupyterLab server on 127.0.0.1 with a random token; always shut down afterwards."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        _unavailable(f"{jupyter} is missing (install the project's 'course' extra)")
    tmp = tmp_path_factory.mktemp("lab")
    notebooks, env = _write_lab_home(tmp)
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log = tmp / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
             f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={notebooks}",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI runs as root
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=notebooks,
            start_new_session=True,  # its kernels share the group, so a last-resort kill reaches them too
        )
    try:
        _wait_until_ready(proc, f"{base}/api/status?token={token}", log)
        yield {"base": base, "token": token, "log": log}
    finally:
        _stop(proc, base, token)


def test_calculator_and_visualiser_respond_in_a_real_browser(chromium: Path, lab: dict) -> None:
    try:
        from playwright import sync_api
    except ImportError:
        _unavailable("playwright is not installed (it is in the project's 'test' extra)")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser-widgets.png"
    shot.unlink(missing_ok=True)  # a stale screenshot must not pass the check at the end
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(UI_TIMEOUT_MS)
            try:
                _drive(page, lab)
            finally:
                try:
                    page.screenshot(path=str(shot))
                except Exception as exc:  # noqa: BLE001 - must not hide the failure that got us here
                    print(f"screenshot failed: {exc}")
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def _wait_for_connected_kernel(lab: dict) -> None:
    """Until the server reports a kernel that is idle and has the page connected to it."""
    request = urllib.request.Request(f"{lab['base']}/api/kernels", headers={"Authorization": f"token {lab['token']}"})
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    kernels: list = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                kernels = json.load(response)
        except urllib.error.HTTPError as error:
            # jupyter_server answers 500 while a kernel it is starting has no last_activity yet: ask again.
            if error.code < 500:
                raise
            time.sleep(0.3)
            continue
        if any(k.get("connections", 0) > 0 and k.get("execution_state") == "idle" for k in kernels):
            return
        time.sleep(0.3)
    pytest.fail(f"no idle, connected kernel after {UI_TIMEOUT_MS / 1000:.0f} s: {kernels}\n"
                f"{lab['log'].read_text()[-2000:]}")


def _drive(page, lab: dict) -> None:
    # Should a "Select Kernel" dialog still appear, accept its choice (the notebook's python3).
    page.add_locator_handler(page.locator(".jp-Dialog:has-text('Select Kernel')"),
                             lambda dialog: dialog.locator(".jp-mod-accept").click())
    page.goto(f"{lab['base']}/lab/tree/calculator.ipynb?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    _wait_for_connected_kernel(lab)  # the toolbar can say "idle" before the kernel's websocket is up
    page.click("#jp-MainMenu .lm-MenuBar-item:has-text('Run')")
    page.locator(".lm-Menu-content").get_by_text("Run All Cells", exact=True).click()

    result = page.locator(".convcourse-calc-result")
    result.wait_for()
    assert "output shape: (32, 24, 24)" in result.inner_text()

    kernel_h = page.locator(".convcourse-kernel_h input")
    kernel_h.fill("3")
    kernel_h.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.convcourse-calc-shape')?.innerText.includes('(32, 26, 24)')")
    assert "H_out = floor((28 + 2*0 - 3) / 1) + 1 = 26" in result.inner_text()

    kernel_h.fill("-3")  # nonsense typed into a box: clamped to the box's minimum, 0, whose reason appears
    kernel_h.press("Enter")
    error = page.locator(".convcourse-calc-result.convcourse-error")
    error.wait_for()
    assert kernel_h.input_value() == "0"
    with pytest.raises(ShapeError) as reason:
        conv2d_output_shape((1, 28, 28), 32, (0, 5))
    assert str(reason.value) in error.inner_text()
    kernel_h.fill("3")
    kernel_h.press("Enter")
    page.wait_for_selector(".convcourse-calc-shape")

    viz = page.locator(".convcourse-viz")
    viz.wait_for()
    assert "step 1 of 9" in viz.inner_text()
    page.locator(".convcourse-viz-view").scroll_into_view_if_needed()
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function(
        "() => document.querySelector('.convcourse-viz')?.innerText.includes('step 2 of 9')")
    assert "output[0, 1] = 1×1 + 1×0 + 0×1" in page.locator(".convcourse-viz-sum").inner_text()  # GIF_INPUT
