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
    assert not list((state_dir / "running-commands").glob("*.json"))
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


# -- the commands' own guarantees (stackmagic.children), with real processes -----------------
from stackmagic import children  # noqa: E402


def alive_named(name: str) -> bool:
    return any(c.split(" ")[0] == name for c in command_lines())


def test_a_killed_stackmagic_takes_its_commands_with_it_and_the_next_run_ends_the_rest(tmp_path):
    """The command dies with the process that waits for it in a worker thread (as steps do); what
    the command started is ended by the next adopt(), which finds it by its recorded group."""
    leader, grandchild = f"leader-{tmp_path.name}", f"grandchild-{tmp_path.name}"
    script = (
        "import sys, time\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from stackmagic import children\n"
        "children.adopt(sys.argv[1])\n"
        "cmd = ['bash', '-c', f'(exec -a {sys.argv[3]} sleep 60) & exec -a {sys.argv[2]} sleep 61']\n"
        "ThreadPoolExecutor(1).submit(children.run, cmd).result()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), leader, grandchild])
    try:
        assert wait_until(lambda: alive_named(leader) and alive_named(grandchild), timeout=30)
        records = list((tmp_path / "running-commands").glob("*.json"))
        assert len(records) == 1
        proc.kill()
        proc.wait()
        assert wait_until(lambda: not alive_named(leader), timeout=5)   # the parent-death signal
        assert alive_named(grandchild)                                 # out of its reach ...
        ended = children.adopt(tmp_path)                               # ... until the next run
        assert len(ended) == 1 and "process group" in ended[0]
        assert not alive_named(grandchild)
        assert not records[0].exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_next_run_leaves_alone_what_it_cannot_prove_is_a_leftover(tmp_path):
    """A live stackmagic's commands, and a recorded group whose number now belongs to another
    process (after a reboot), are not signalled."""
    from stackmagic.process_info import start_ticks

    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    live = subprocess.Popen([sys.executable, "-c",
                             "import sys; from stackmagic import children; children.adopt(sys.argv[1]);"
                             "children.run(['sleep', '62'])", str(tmp_path)])
    try:
        directory = tmp_path / "running-commands"
        assert wait_until(lambda: len(list(directory.glob("*.json"))) == 1, timeout=30)
        (live_record,) = directory.glob("*.json")
        live_group = json.loads(live_record.read_text())["pgid"]
        # a record of a dead run whose group id was reused by a process started later
        (directory / f"{stranger.pid}.json").write_text(json.dumps(
            {"pgid": stranger.pid, "ticks": start_ticks(stranger.pid) - 1, "command": "sleep",
             "owner": 999999999, "owner_ticks": 1}))
        assert children.end_leftovers(directory) == []
        assert stranger.poll() is None
        assert children.group_members(live_group, None)
        assert live_record.exists() and not (directory / f"{stranger.pid}.json").exists()
    finally:
        for p in (stranger, live):
            p.kill()
            p.wait()


@pytest.mark.parametrize("command", ["sleep 60", "trap '' TERM; sleep 60 & wait"],
                         ids=["plain", "ignores-SIGTERM"])
def test_cancel_stops_a_running_command_and_its_children_at_once(command):
    import threading

    cancel = children.Cancel()
    outcome: list = []
    started: list = []

    def step():
        try:
            children.run(["bash", "-c", f"echo started; {command}"], cancel=None,
                         on_line=started.append)
        except children.Cancelled as err:
            outcome.append(err)

    worker = threading.Thread(target=step)
    worker.start()
    assert wait_until(lambda: started == ["started"], timeout=30)
    (child,) = children._live
    t0 = time.monotonic()
    cancel.set()                  # the command never sees this flag: set() stops it anyway
    worker.join(timeout=10)
    assert not worker.is_alive() and isinstance(outcome[0], children.Cancelled)
    assert time.monotonic() - t0 < STOP_WITHIN
    assert children.group_members(child.pgid, child.ticks) == []


def test_a_download_cut_short_is_never_taken_for_the_image(stack_dir):
    """An image download stops on cancel (within a chunk) and leaves nothing under the name the
    next run trusts; the next run downloads it whole."""
    import http.server
    import threading

    from stackmagic.images import fetch

    body = os.urandom(3 << 20)
    release = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: 1 << 20])
            self.wfile.flush()
            release.wait(30)                     # the rest comes when the test says so
            self.wfile.write(body[1 << 20:])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/disk.qcow2"
    ctx = stack_dir.engine().ctx
    cache = ctx.settings.files / "images" / "disk.qcow2"
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(_call(fetch, ctx, url)))
    try:
        worker.start()
        assert wait_until(lambda: cache.with_suffix(".qcow2.part").exists(), timeout=10)
        ctx.cancel.set()
        release.set()
        worker.join(timeout=10)
        assert isinstance(outcome[0], children.Cancelled)
        assert not cache.exists() and not cache.with_suffix(".qcow2.part").exists()
        ctx.cancel.clear()
        assert fetch(ctx, url) == cache and cache.read_bytes() == body
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _call(fn, *args):
    try:
        return fn(*args)
    except BaseException as err:  # noqa: BLE001 - the test looks at it
        return err


def _sdist(cache: Path, name: str, version: str) -> None:
    """A minimal sdist in ``cache`` (no network needed to mirror it)."""
    import io
    import tarfile

    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(cache / f"{name}-{version}.tar.gz", "w:gz") as tar:
        for path, text in {"PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                           "setup.py": f"from setuptools import setup\nsetup(version={version!r})\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{path}")
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))


def test_a_mirror_killed_between_its_renames_keeps_its_releases(tmp_path):
    """The mirror is replaced by two renames (old away, new in); killed between them, the older
    releases sat in a temporary directory the next run would have deleted."""
    import git

    from stackmagic.mirror import mirror_project, repo_path

    cache, root = tmp_path / "sdists", tmp_path / "mirror"
    _sdist(cache, "demo", "1.0")
    _sdist(cache, "demo", "1.1")
    first = mirror_project("demo", "1.0", "demo", root, cache=cache)
    dest = repo_path(root, "demo")
    half = dest.parent / ".demo.build-killed"
    half.mkdir()
    dest.rename(half / "old.git")                     # the state between the two renames
    second = mirror_project("demo", "1.1", "demo", root, cache=cache)
    assert second.created and first.path == second.path
    assert {t.name for t in git.Repo(dest).tags} == {"1.0", "1.1"}
    assert [p.name for p in dest.parent.iterdir()] == ["demo.git"]


def test_stop_button_stops_the_install_at_once_and_the_next_stack_resumes(stack_dir, tmp_path, monkeypatch):
    """The notebook's stop button: SIGINT to the kernel's process alone, while uv builds."""
    from jupyter_client.manager import start_new_kernel

    from tests.test_kernel import execute, text_of

    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "stackmagic", "kernel", "install", "--prefix", str(prefix)],
                   capture_output=True, check=True)
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    prepare(stack_dir)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg"), "ECHO_SLOW": "install",
           "ECHO_SLOW_TAG": tag(stack_dir), "ECHO_SLOW_SECONDS": "60"}
    km, kc = start_new_kernel(kernel_name="stackmagic", cwd=str(tmp_path), env=env)
    try:
        execute(kc, "%%localrc\n" + stack_dir.localrc.read_text())
        sent: list[float] = []

        def stop_when_installing():
            if not sent and at_the_moment(stack_dir, "install"):
                sent.append(time.monotonic())
                # the kernel's process alone (jupyter_client's interrupt_kernel() signals its
                # group, which the commands of stackmagic are not part of either)
                os.kill(km.provisioner.process.pid, signal.SIGINT)

        messages = execute(kc, "%stack", poll=stop_when_installing)
        seconds = time.monotonic() - sent[0]
        assert "interrupted" in text_of(messages)
        assert seconds < STOP_WITHIN, f"the stop button took {seconds:.1f} s"
        assert leftovers(stack_dir) == []
        resumed = execute(kc, "import os; del os.environ['ECHO_SLOW']\n"
                              "r = %stack\nprint(sorted(x.step for x in r.summary.ran))")
        assert "'install'" in text_of(resumed) and "'start echo-api'" in text_of(resumed)
        assert get(stack_dir.port)["message"] == "hello"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# -- the real thing: the quickstart stack (Keystone, Glance, Placement) ----------------------
def _lines_with_pids() -> list[tuple[int, str]]:
    out = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True).stdout
    return [(int(pid), args) for pid, _, args in (line.strip().partition(" ") for line in out.splitlines())]


@pytest.mark.slow
def test_quickstart_killed_in_install_and_stopped_in_init_completes_with_no_orphan(tmp_path):
    """SIGKILL while uv installs the OpenStack services, then SIGINT while keystone-manage syncs
    the database: the third stack completes, skips what was done, and nothing of the first two
    runs is left."""
    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.process_info import tree
    from tests.test_openstack import checks, write_conf

    conf = write_conf(tmp_path)
    root = str(tmp_path)
    cli = [sys.executable, "-m", "stackmagic", "stack", "--config", str(conf)]
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    logs = tmp_path / "logs" / "stack"
    engine = Engine(load_config(conf))
    try:
        def run_until(log: str, text: str, sig: int) -> tuple[int, float]:
            proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            try:
                path = logs / log
                assert wait_until(lambda: path.exists() and text in path.read_text(), timeout=600)
                sent = time.monotonic()
                proc.send_signal(sig)
                proc.wait(timeout=60)
                return proc.returncode, time.monotonic() - sent
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

        code, _ = run_until("install.log", "Resolved", signal.SIGKILL)       # uv at work
        assert code == -signal.SIGKILL
        assert wait_until(lambda: not [a for _, a in _lines_with_pids() if "pip install" in a and root in a],
                          timeout=5)                                          # uv died with it
        code, seconds = run_until("init-keystone.log", "keystone-manage", signal.SIGINT)
        assert code == 130 and seconds < STOP_WITHIN
        assert not [a for _, a in _lines_with_pids() if "keystone-manage" in a and root in a]
        done = set(State(tmp_path / "data" / "stackmagic").steps)
        assert "install" in done and "init keystone" not in done

        summary = Engine(load_config(conf)).stack()
        statuses = {r.step: r.status for r in summary.results}
        assert {s for s, v in statuses.items() if v == "skipped"} == done
        assert statuses["init keystone"] == "ran"
        engine = Engine(load_config(conf))           # with the passwords the stack made
        found = checks(engine)
        assert all(c.ok for c in found.values()), {n: c.data for n, c in found.items() if not c.ok}
        services = {p for s in engine.status() if s.pid for p in tree(s.pid)}
        stray = [a for pid, a in _lines_with_pids()
                 if root in a and pid not in services and not a.split()[0].endswith("tmux")]
        assert stray == []
        assert not list((tmp_path / "data" / "stackmagic" / "running-commands").glob("*.json"))
    finally:
        Engine(load_config(conf)).unstack(all=True)
        subprocess.run(["tmux", "-L", engine.tmux.server.socket_name, "kill-server"], capture_output=True)
