"""Interrupts and kills of a real ``python -m stackmagic stack`` at a moment of every phase.

Each case starts a stack of the echo plugin (plus ``echo-extra``, whose steps are in the accounts
and data phases) with ``$ECHO_SLOW`` naming one phase: the fixture then makes that phase wait in
a command named ``echo-slow-<phase>:<tag>`` (or, for start, makes the service wait before it
listens). The test waits for that moment, sends SIGINT (to the process alone, as the notebook's
stop button does) or SIGKILL, and then runs ``stack`` again, which must complete, skip what was
done before the interrupt, and leave nothing of the interrupted run behind (``ps`` compared).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from stackmagic import events as ev
from stackmagic.state import State
from tests.conftest import FIXTURES, wait_until

SLOW = FIXTURES / "echo-plugin" / "slow"

#: phase -> the step that is interrupted (the plugin's clone comes before the plan: no step)
STEPS = {
    "clone": None,
    "install": "install",
    "configure": "configure echo",
    "init": "init echo",
    "start": "start echo-api",
    "accounts": "accounts echo-extra",
    "data": "data echo-extra",
}
#: phase -> what the command line of the command stackmagic waits for holds
DIRECT = {"clone": "git ", "install": "uv pip install", "configure": "/slow configure",
          "init": "/slow init", "start": "/slow start", "accounts": "/slow accounts",
          "data": "/slow data"}
#: a SIGINT must stop the run about this fast (the slow commands take 60 s)
STOP_WITHIN = 2.5


def prepare(stack_dir) -> None:
    """The echo stack plus echo-extra, and a requirement that uv has to build."""
    stack_dir.write(ECHO_EXTRA_REQUIREMENT=f"{stack_dir.root}/dest/echo/slowpkg")
    stack_dir.localrc.write_text(stack_dir.localrc.read_text() + "enable_service echo-extra\n")


def tag(stack_dir) -> str:
    return str(stack_dir.root)


def command_lines() -> list[str]:
    """Every command line on the machine, whole (``ps -ww``: not cut at the terminal's width)."""
    out = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines()[1:]]


def ours(stack_dir) -> list[str]:
    """Command lines on the machine that belong to this test's stack."""
    return [c for c in command_lines() if tag(stack_dir) in c and "<defunct>" not in c]


def leftovers(stack_dir) -> list[str]:
    """Our command lines other than the echo service's (its tmux window runs it on purpose)."""
    service = ("echo-server", "echo-api.log", "tmux")
    return [c for c in ours(stack_dir) if not any(s in c for s in service)]


def servers(stack_dir) -> list[str]:
    conf = f"{stack_dir.root}/data/etc/echo/echo.conf"
    return [c for c in ours(stack_dir)
            if c.split()[:1] and c.split()[0].endswith("python") and f"echo-server --config {conf}" in c]


def slow_env(stack_dir, echo_repo: Path, phase: str) -> dict[str, str]:
    env = {**os.environ, "XDG_STATE_HOME": str(stack_dir.root / "xdg"), "ECHO_SLOW": phase,
           "ECHO_SLOW_TAG": tag(stack_dir), "ECHO_SLOW_SECONDS": "60"}
    if phase == "clone":
        # the plugin's URL, rewritten for this run only to a transport that waits first, in
        # the clone (its first use is the ls-remote that finds the branch)
        env.update({"ECHO_SLOW_SKIP": "1", "GIT_CONFIG_COUNT": "2",
                    "GIT_CONFIG_KEY_0": "protocol.ext.allow", "GIT_CONFIG_VALUE_0": "always",
                    "GIT_CONFIG_KEY_1": f"url.ext::{SLOW} clone %S {echo_repo}.insteadOf",
                    "GIT_CONFIG_VALUE_1": echo_repo.as_uri()})
    return env


def at_the_moment(stack_dir, phase: str) -> bool:
    if phase == "start":
        log = stack_dir.root / "logs" / "echo-api.log"
        return log.exists() and "before listening" in log.read_text()
    return any(c.startswith(f"echo-slow-{phase}:{tag(stack_dir)} ") for c in command_lines())


def interrupt(stack_dir, echo_repo: Path, phase: str, sig: int) -> tuple[subprocess.CompletedProcess, float]:
    """Run stack until the moment of ``phase``, send ``sig``; the result and how long it took
    from the signal to the exit."""
    cli = [sys.executable, "-m", "stackmagic", "stack", "--config", str(stack_dir.localrc)]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=slow_env(stack_dir, echo_repo, phase))
    try:
        reached = wait_until(lambda: at_the_moment(stack_dir, phase) or proc.poll() is not None,
                             timeout=180)
        assert reached and proc.poll() is None, f"never reached the {phase} phase"
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=60)
        seconds = time.monotonic() - sent
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return subprocess.CompletedProcess(cli, proc.returncode, out), seconds


def get(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("phase", list(STEPS))
def test_interrupt_then_stack_completes_skips_what_was_done_and_leaves_nothing(
        stack_dir, echo_repo, phase, sig):
    prepare(stack_dir)
    result, seconds = interrupt(stack_dir, echo_repo, phase, sig)
    step = STEPS[phase]
    clones = lambda: list((stack_dir.root / "dest").glob(".echo.clone-*"))  # noqa: E731
    if phase == "clone":      # a clone is made under a temporary name, renamed when complete
        assert not (stack_dir.root / "dest" / "echo").exists()
        assert bool(clones()) == (sig == signal.SIGKILL)
    if sig == signal.SIGINT:
        assert result.returncode == 130, result.stdout
        assert "interrupted" in result.stdout
        assert seconds < STOP_WITHIN, f"SIGINT took {seconds:.1f} s to stop the {phase} phase"
        # the interrupted command and what it started were stopped, not left to finish
        assert leftovers(stack_dir) == []
    else:
        assert result.returncode == -signal.SIGKILL
        # the command the killed run waited for dies with it (what that command started is
        # ended by the next run, below)
        direct = DIRECT[phase]
        assert wait_until(lambda: not [c for c in leftovers(stack_dir) if direct in c],
                          timeout=5), leftovers(stack_dir)

    state_dir = stack_dir.root / "data" / "stackmagic"
    done_before = set(State(state_dir).steps)
    assert step not in done_before
    events: list = []
    summary = stack_dir.engine(on_event=events.append).stack()

    statuses = {r.step: r.status for r in summary.results}
    assert {s for s, v in statuses.items() if v == "skipped"} == done_before
    assert all(v in ("ran", "skipped") for v in statuses.values())
    if step is not None:
        assert statuses[step] == "ran"
    assert get(stack_dir.port)["message"] == "hello"
    assert (stack_dir.root / "data" / "echo-extra" / "data").exists()
    # nothing of the interrupted run is left: no command, no second server, no half-made tree
    assert leftovers(stack_dir) == []
    assert len(servers(stack_dir)) == 1, servers(stack_dir)
    assert not clones()
    assert not (stack_dir.root / "data" / "venv" / ".stackmagic-installing").exists()
    assert not list((state_dir / "children").glob("*.json"))
    ended = [e.text for e in events if isinstance(e, ev.Message) and e.text.startswith("ended")]
    if sig == signal.SIGKILL and phase != "start":
        # the slow command's own child outlived the killed run until this one began
        assert ended and "process group" in ended[0]
    else:
        assert ended == []


def test_venv_cut_short_while_being_made_is_made_again(stack_dir):
    """uv venv killed before it wrote pyvenv.cfg: today's wedge ("exists and is not a virtual
    environment" on every later stack, even after clean)."""
    from stackmagic.python import find_uv

    prepare(stack_dir)
    venv = stack_dir.root / "data" / "venv"
    summary = stack_dir.engine().stack()
    assert "install" in [r.step for r in summary.ran]
    stack_dir.engine().clean()
    import shutil

    shutil.rmtree(venv)
    # what a killed `uv venv` leaves (seen by killing it at random moments): bin, lib, no pyvenv.cfg
    uv = find_uv()
    subprocess.run([str(uv), "venv", "--quiet", "--no-project", "--python", sys.executable, str(venv)],
                   check=True)
    (venv / "pyvenv.cfg").unlink()
    again = stack_dir.engine().stack()
    assert "install" in [r.step for r in again.ran]
    assert (venv / "pyvenv.cfg").exists()
    assert get(stack_dir.port)["message"] == "hello"
