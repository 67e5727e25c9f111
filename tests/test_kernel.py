"""The kernelspec, a real kernel started from it with jupyter_client, and the nbval notebook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import commands_running

NOTEBOOKS = Path(__file__).parent / "notebooks"
SECRET = "kernel-Secret-0815"


@pytest.fixture
def kernel_prefix(tmp_path, monkeypatch) -> Path:
    """The kernelspec installed with the CLI into a tmp prefix that Jupyter searches."""
    prefix = tmp_path / "prefix"
    out = subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "kernel", "install",
                          "--prefix", str(prefix)], capture_output=True, text=True, check=True).stdout
    assert 'installed kernel "Python 3 (stackmagic)"' in out
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return prefix


def test_kernel_install_writes_a_spec_jupyter_finds(kernel_prefix):
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("stackmagic")
    assert spec.display_name == "Python 3 (stackmagic)"
    assert spec.argv[0] == sys.executable and spec.argv[-2:] == ["--ext", "stackmagic"]
    on_disk = json.loads((kernel_prefix / "share/jupyter/kernels/stackmagic/kernel.json").read_text())
    assert on_disk["argv"] == spec.argv


def execute(kc, code: str, timeout: float = 300, poll=None) -> list[dict]:
    """Run ``code``; return its iopub messages up to idle (``poll()`` is called ten times a second)."""
    from queue import Empty

    msg_id = kc.execute(code)
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poll:
            poll()
        try:
            msg = kc.get_iopub_msg(timeout=0.1)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"no reply to {code!r} within {timeout} s")


def text_of(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        c = m["content"]
        parts.append(c.get("text", ""))
        parts += [str(v) for v in c.get("data", {}).values()]
        parts += c.get("traceback", [])
    return "\n".join(parts)


@pytest.fixture
def kernel(kernel_prefix, tmp_path):
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    km, kc = start_new_kernel(kernel_name="stackmagic", cwd=str(tmp_path), env=env)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kernel_preloads_magics_streams_progress_and_interrupt_resumes(kernel, stack_dir):
    km, kc = kernel
    cell = "%%localrc\n" + stack_dir.localrc.read_text() + f"ADMIN_PASSWORD={SECRET}\nECHO_INIT_SLEEP=30\n"
    seen = execute(kc, cell)                                    # no %load_ext: the kernel preloaded it
    assert "echo-api" in text_of(seen) and "error" not in [m["msg_type"] for m in seen]

    step_log = stack_dir.root / "logs" / "stack" / "init-echo.log"
    interrupted = []

    def interrupt_when_slow_init_runs():
        if not interrupted and step_log.exists() and "slow init" in step_log.read_text():
            interrupted.append(True)
            km.interrupt_kernel()

    messages = execute(kc, "%stack", poll=interrupt_when_slow_init_runs)
    assert interrupted
    kinds = [m["msg_type"] for m in messages]
    assert "display_data" in kinds and "update_display_data" in kinds   # live progress
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert errors and "interrupted" in "\n".join(errors[0]["traceback"])
    assert "Traceback" not in "\n".join(errors[0]["traceback"])
    running = commands_running()   # exact lines: a "sleep 300" elsewhere is not ours
    assert "sleep 30" not in running
    assert not [c for c in running if "slow init'; sleep 30" in c]

    # the next %stack (without the slow init) continues from the interrupted step
    stack_dir.write()
    resumed = execute(kc, "%%localrc\n" + stack_dir.localrc.read_text() + f"ADMIN_PASSWORD={SECRET}\n")
    resumed += execute(kc, "r = %stack\nprint([x.step for x in r.summary.ran])")
    assert "['init echo', 'start echo-api']" in text_of(resumed)
    assert SECRET not in text_of(seen + messages + resumed)


def test_notebook_runs_under_nbval(kernel_prefix, stack_dir, tmp_path):
    """tests/notebooks/magics.ipynb, on the stackmagic kernel, checked by nbval."""
    root = tmp_path / "nbroot"
    root.mkdir()
    (root / "fixture.localrc").write_text(
        f"DEST={root}/dest\nDATA_DIR={root}/data\nLOGDIR={root}/logs\nTMUX_SOCKET={stack_dir.socket}\n"
        f"USE_CONSTRAINTS=False\nECHO_PORT={stack_dir.port}\nECHO_PLUGIN_URL={stack_dir.plugin_url}\n")
    env = {**os.environ, "STACKMAGIC_NB_ROOT": str(root), "XDG_STATE_HOME": str(tmp_path / "xdg"),
           "JUPYTER_PATH": str(kernel_prefix / "share" / "jupyter")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "-q",
         "--rootdir", str(tmp_path), "--nbval-sanitize-with", str(NOTEBOOKS / "sanitize.cfg"),
         str(NOTEBOOKS / "magics.ipynb")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
