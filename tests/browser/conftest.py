"""Fixtures for the real-browser tests: a JupyterLab server and Debian's Chromium via Playwright.

The server runs in its own process group with a random token on 127.0.0.1 and throw-away
settings/runtime folders (autosave off, so the stored notebooks are never rewritten). It is shut
down through its REST API and then killed by PID (its process group, then any child that is
still alive) even when a test fails.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
ARTIFACTS = REPO / "artifacts" / "browser"


def _require_or_skip(reason: str):
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (COURSE_REQUIRE_BROWSER=1 makes this an error)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """Lab settings for a test: every cell in the DOM, no autosave, no news/update pop-ups."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                       "autoStartDefaultKernel": True},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "checkForUpdates": False, "fetchNews": "false"},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def _api(base: str, token: str, path: str, method: str = "GET"):
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="package")
def playwright_browser():
    """A headless Debian Chromium driven by Playwright (no browser download).

    Package scope: Playwright's event loop is closed when the browser tests end. Left open for
    the rest of the session, it made jupyter_client (nbval, nbclient) run its kernel clients on a
    background loop, where a kernel's reply was once lost and a notebook run hung.
    """
    if not CHROMIUM.exists():
        _require_or_skip(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require_or_skip("the playwright Python package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def lab_server(playwright_browser):
    """``(base_url, token)`` of a JupyterLab serving ``notebooks/``; stopped by PID afterwards."""
    jupyter = REPO / ".venv" / "bin" / "jupyter"
    if not jupyter.exists():
        jupyter = Path(sys.executable).with_name("jupyter")
    checkpoints = REPO / "notebooks" / ".ipynb_checkpoints"   # Lab checkpoints a notebook it opens
    had_checkpoints = checkpoints.exists()
    old_checkpoints = set(checkpoints.iterdir()) if had_checkpoints else set()
    port, token = _free_port(), secrets.token_hex(16)
    tmp = Path(tempfile.mkdtemp(prefix="l2l-lab-"))
    _write_settings(tmp / "settings")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PYTHONUNBUFFERED="1")
    env.pop("MPLBACKEND", None)  # the kernels must use the inline backend, as learners do
    log = open(tmp / "server.log", "wb")
    cmd = [str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={REPO / 'notebooks'}", f"--LabApp.user_settings_dir={tmp / 'settings'}",
           f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.news_url=",
           "--ServerApp.open_browser=False", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                            start_new_session=True)  # its own process group
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}: "
                                   f"{(tmp / 'server.log').read_text(errors='replace')[-2000:]}")
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not answer /api/status within 120 s") from None
                time.sleep(0.5)
        yield base, token
    finally:
        _stop_server(proc, base, token)
        log.close()
        if checkpoints.is_dir():  # leave no trace: remove only the checkpoints this server made
            for made in set(checkpoints.iterdir()) - old_checkpoints:
                made.unlink(missing_ok=True)
            if not had_checkpoints and not any(checkpoints.iterdir()):
                checkpoints.rmdir()
        shutil.rmtree(tmp, ignore_errors=True)


def _stop_server(proc: subprocess.Popen, base: str, token: str) -> None:
    """Shut the kernels and the server down politely, then make sure by PID."""
    try:
        import psutil

        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing or the server already gone
        children = []
    try:
        for kernel in _api(base, token, "/api/kernels") or []:
            _api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE")
        _api(base, token, "/api/shutdown", method="POST")
        proc.wait(timeout=15)
    except Exception:  # noqa: BLE001 - fall through to signals
        pass
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    for child in children:  # kernels run in their own sessions: kill any survivor by PID
        try:
            if child.is_running():
                child.kill()
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
