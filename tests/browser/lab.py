"""A real JupyterLab server for a test: loopback only, a free port, a token, every Jupyter
directory (config, data, runtime, settings, workspaces) in a tmp dir, stopped by its PID."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import free_port, wait_until

#: User settings the test needs: every cell in the DOM (not only those in view), no news or
#: update checks (this machine has no internet and the toast would cover the page).
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}


def copy_cleared(src: Path, dest: Path) -> Path:
    """Copy the notebooks of ``src`` to ``dest`` with every output and execution count removed,
    so that whatever the page shows afterwards comes from this run."""
    dest.mkdir(parents=True)
    for path in sorted(src.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        (dest / path.name).write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n")
    return dest


class JupyterLab:
    """``python -m jupyterlab`` serving ``root_dir`` on 127.0.0.1; ``env`` is added to the
    server's environment (and so to its kernels'). Use as a context manager."""

    def __init__(self, root_dir: Path, home: Path, env: dict[str, str]):
        self.root_dir = root_dir
        self.home = home
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.env = {**env, **self._jupyter_dirs()}
        self.log = home / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None

    def _jupyter_dirs(self) -> dict[str, str]:
        dirs = {name: self.home / name for name in ("config", "data", "runtime", "settings", "workspaces")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        for name, values in SETTINGS.items():
            target = dirs["settings"] / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        return {"JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
                "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
                "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
                "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"])}

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until its REST API answers."""
        argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                f"--port={self.port}", "--port-retries=0", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}", "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False"]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        if not wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout):
            raise AssertionError(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")
        if self.proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            self.api("/api/status")
        except (OSError, urllib.error.URLError):
            return False
        return True

    def api(self, path: str) -> Any:
        """GET ``path`` from the server's REST API, as JSON."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.load(reply)

    def url(self, path: str) -> str:
        """The page ``path`` (e.g. ``/lab/tree/x.ipynb``) with the token that logs the browser in."""
        return f"http://127.0.0.1:{self.port}{path}?token={self.token}"

    def kernel_of(self, notebook: str) -> dict[str, Any] | None:
        """The kernel model (``name``, ``execution_state`` ...) of ``notebook``'s session, if any."""
        for session in self.api("/api/sessions"):
            if session["path"] == notebook:
                return session["kernel"]
        return None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log, to explain a failure."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the server's PID (it shuts its kernels down), SIGKILL if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def __enter__(self) -> JupyterLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
