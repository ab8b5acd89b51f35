"""Start and stop ``streamlit run app.py`` for the browser tests: a free port, ``/_stcore/health`` polled."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app_server(*, log_name: str, workspace: Path | None = None, timeout_s: float = 90.0):
    """Start the app and wait until it is healthy; returns ``(process, url, log)``.

    With ``workspace`` the server uses that workspace file and runs with no planner login configured.
    """
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    if workspace is not None:
        env["LTCI_WORKSPACE"] = str(workspace)
        for name in ("LTCI_PLANNER_PASSWORD_HASH", "LTCI_PLANNER_USER"):
            env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {ARTIFACTS / log_name}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return proc, url, log
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_app_server(proc, log)
            raise RuntimeError(f"streamlit did not become healthy within {timeout_s:g} s")
        time.sleep(0.5)


def stop_app_server(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
