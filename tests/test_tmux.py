"""Tests of stackmagic.tmux against a real tmux server on a socket of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stackmagic.tmux import Tmux, TmuxError, follow, stop_pid, tail

ENV = {"PATH": os.environ["PATH"]}


def wait_for(check: Callable[[], object], timeout: float = 10.0) -> object:
    """Poll ``check`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {check}")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead: PID 1 may never reap it here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X")


def descendants(pid: int) -> set[int]:
    """The live processes below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def marked(mark: str) -> set[int]:
    """The live processes whose environment holds ``MARK=<mark>``."""
    found = set()
    needle = f"MARK={mark}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                environ = (entry / "environ").read_bytes().split(b"\x00")
            except OSError:
                continue
            if needle in environ:
                found.add(int(entry.name))
    return found


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    name = f"stackmagic-test-{uuid.uuid4().hex[:10]}"
    t = Tmux(socket_name=name)
    yield t
    t.kill_session(timeout=2)
    if t.server.is_alive():
        t.server.kill()
    # tmux leaves its socket file behind
    Path(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", name).unlink(missing_ok=True)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


def pane_text(tmux: Tmux, name: str) -> str:
    return "\n".join(tmux.server.cmd("capture-pane", "-p", "-S", "-", "-t", f"=stack:={name}").stdout)


def test_start_runs_the_service_in_the_pane_process_group(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    pid = tmux.start("svc", ["sleep", "300"], cwd=tmp_path, env={**ENV, "MARK": "m1"}, logfile=logdir / "svc.log")

    assert alive(pid)
    assert tmux.windows() == ["svc"]
    assert tmux.pid("svc") == pid and tmux.is_running("svc")
    pane_pid = tmux.server.cmd("display-message", "-p", "-t", "=stack:=svc", "#{pane_pid}").stdout
    assert pane_pid == [str(pid)]
    assert os.getpgid(pid) == pid
    service = wait_for(lambda: [p for p in descendants(pid) if _cmdline(p) == b"sleep\x00300\x00"])
    assert isinstance(service, list) and len(service) == 1
    assert os.getpgid(service[0]) == pid
    assert Path(f"/proc/{service[0]}/cwd").resolve() == tmp_path.resolve()
    environ = Path(f"/proc/{service[0]}/environ").read_bytes().split(b"\x00")
    assert b"MARK=m1" in environ and b"PYTHONUNBUFFERED=1" in environ


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_session_holds_exactly_the_service_windows(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    assert not tmux.exists() and tmux.windows() == []
    for name in ("key", "g-api", "n_cpu"):
        tmux.start(name, ["sleep", "300"], cwd=tmp_path, env=ENV, logfile=logdir / f"{name}.log")
    assert tmux.exists()
    assert tmux.windows() == ["key", "g-api", "n_cpu"]


def test_output_reaches_log_file_and_pane(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    log = logdir / "sub" / "echo.log"
    log.parent.mkdir()
    log.write_text("older run\n")
    script = "print('to stdout'); import sys; print('to stderr', file=sys.stderr); import time; time.sleep(300)"
    tmux.start("echo", ["python3", "-c", script], cwd=tmp_path, env=ENV, logfile=log)

    wait_for(lambda: len(log.read_text().splitlines()) == 4)
    lines = log.read_text().splitlines()
    assert lines[0] == "older run"
    assert lines[1].startswith("--- ") and "start echo: python3 -c" in lines[1]
    assert set(lines[2:]) == {"to stdout", "to stderr"}
    wait_for(lambda: {"to stdout", "to stderr"} <= set(pane_text(tmux, "echo").splitlines()))


def test_stop_kills_the_service_and_all_its_children(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    # children: one in the service's group, one moved to a group of its own and orphaned (its
    # parent subshell exits), one in a session of its own, and the foreground one
    script = "sleep 300 & (set -m; sleep 301 &) ; setsid sleep 302 & sleep 303"
    mark = uuid.uuid4().hex
    pid = tmux.start("fam", ["bash", "-c", script], cwd=tmp_path, env={**ENV, "MARK": mark}, logfile=logdir / "fam.log")
    # launcher, bash, the tee subshell and four sleeps
    family = wait_for(lambda: marked(mark) if len(marked(mark)) == 7 else None)
    assert isinstance(family, set) and pid in family

    assert tmux.stop("fam", timeout=5) is True

    assert marked(mark) == set()
    assert tmux.windows() == []
    assert tmux.stop("fam") is False


def test_stop_escalates_to_sigkill_after_the_timeout(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    script = "trap '' TERM; sleep 300 & wait; wait"
    pid = tmux.start("stubborn", ["bash", "-c", script], cwd=tmp_path, env=ENV, logfile=logdir / "s.log")
    children = wait_for(lambda: descendants(pid) - {p for p in descendants(pid) if _comm(p) == "tee"})
    assert isinstance(children, set)

    started = time.monotonic()
    assert tmux.stop("stubborn", timeout=0.5) is True
    took = time.monotonic() - started

    assert took >= 0.5
    assert not alive(pid) and not any(alive(p) for p in children)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_pid_is_none_after_kill_9_and_the_window_can_be_restarted(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    log = logdir / "r.log"
    pid = tmux.start("r", ["sleep", "300"], cwd=tmp_path, env=ENV, logfile=log)
    with pytest.raises(TmuxError, match="already running"):
        tmux.start("r", ["sleep", "300"], cwd=tmp_path, env=ENV, logfile=log)

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: tmux.pid("r") is None)
    assert not tmux.is_running("r")
    assert tmux.windows() == ["r"]  # the dead window stays, to show its last output

    new = tmux.start("r", ["sleep", "301"], cwd=tmp_path, env=ENV, logfile=log)
    assert new != pid and alive(new)
    assert tmux.pid("r") == new
    assert tmux.windows() == ["r"]
    assert sum(line.startswith("--- ") for line in log.read_text().splitlines()) == 2


def test_a_service_that_exits_at_once_keeps_its_window_and_output(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    log = logdir / "crash.log"
    tmux.start("crash", ["bash", "-c", "echo boom; exit 3"], cwd=tmp_path, env=ENV, logfile=log)

    wait_for(lambda: tmux.pid("crash") is None)
    assert tmux.windows() == ["crash"]
    wait_for(lambda: "boom" in pane_text(tmux, "crash"))
    wait_for(lambda: tail(log, 1) == ["boom"])


def test_kill_session_leaves_no_process(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    pids = [
        tmux.start("a", ["bash", "-c", "sleep 300 & sleep 300"], cwd=tmp_path, env=ENV, logfile=logdir / "a.log"),
        tmux.start("b", ["bash", "-c", "trap '' TERM HUP; sleep 300"], cwd=tmp_path, env=ENV, logfile=logdir / "b.log"),
    ]
    family = set(pids)
    for pid in pids:
        family |= wait_for(lambda: descendants(pid))  # type: ignore[operator]

    tmux.kill_session(timeout=0.5)

    assert not tmux.exists()
    assert [p for p in family if alive(p)] == []


def test_stop_pid_stops_a_process_outside_tmux(tmp_path: Path) -> None:
    proc = subprocess.Popen(["bash", "-c", "sleep 300 & setsid sleep 301 & wait"], start_new_session=True)
    try:
        children = wait_for(lambda: d if len(d := descendants(proc.pid)) == 2 else None)
        assert stop_pid(proc.pid, timeout=5) is True
        proc.wait(timeout=5)
        assert not any(alive(p) for p in children)  # type: ignore[union-attr]
        assert stop_pid(proc.pid) is False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_start_refuses_bad_names_missing_commands_and_directories(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    with pytest.raises(TmuxError, match="cannot name a tmux window"):
        tmux.start("a.b", ["sleep", "1"], cwd=tmp_path, env=ENV, logfile=logdir / "x.log")
    with pytest.raises(TmuxError, match="not found"):
        tmux.start("x", ["no-such-command-here"], cwd=tmp_path, env=ENV, logfile=logdir / "x.log")
    with pytest.raises(TmuxError, match="does not exist"):
        tmux.start("x", ["sleep", "1"], cwd=tmp_path / "missing", env=ENV, logfile=logdir / "x.log")
    assert not tmux.exists()


def test_tail_takes_last_lines_and_greps_across_blocks(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    lines = [f"line {i} {'ERROR' if i % 1000 == 0 else 'ok'} {'x' * (i % 97)}" for i in range(200_000)]
    log.write_text("\n".join(lines) + "\n")

    assert tail(log, 3) == lines[-3:]
    assert tail(log, 5, grep=r"ERROR") == [line for line in lines if "ERROR" in line][-5:]
    assert tail(log, 10_000, grep=r"^line 0 ") == [lines[0]]
    assert tail(log, 0) == []
    assert tail(tmp_path / "missing.log") == []


def test_tail_without_final_newline_and_with_empty_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"first\n\nthird\r\nlast")
    assert tail(log, 10) == ["first", "", "third", "last"]
    log.write_bytes(b"")
    assert tail(log) == []
    with pytest.raises(TmuxError, match="bad grep pattern"):
        tail(log, grep="(")


def test_follow_yields_only_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "f.log"
    log.write_text("old\n")
    lines = follow(log, 0.3)
    with log.open("a") as handle:
        handle.write("new 1\nnew 2\npart")
    started = time.monotonic()
    assert list(lines) == ["new 1", "new 2", "part"]
    assert time.monotonic() - started >= 0.25


def test_follow_sees_lines_written_by_a_service(tmux: Tmux, tmp_path: Path, logdir: Path) -> None:
    log = logdir / "talk.log"
    lines = follow(log, 2.0)
    script = "for i in 1 2 3; do echo n$i; done; sleep 300"
    tmux.start("talk", ["bash", "-c", script], cwd=tmp_path, env=ENV, logfile=log)
    got = list(lines)
    assert got[0].startswith("--- ") and got[1:] == ["n1", "n2", "n3"]
