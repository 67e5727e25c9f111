"""Bad input, tried the hard way: every case goes through the command line (``stackmagic`` as a
subprocess, or its ``main`` in this process where hundreds of runs would cost seconds each)
against a real running stack (the echo plugin: cheap), and must exit with a clear message and
leave the stack as it was: the files under DATA_DIR (content hash and mtime) and the service pids
are compared before and after. Cases that need no stack (damaged state, dry-run, modes, non-root places) come
after; the one that needs a real OpenStack (passwords of every character) is marked slow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import StackDir, wait_until

PLAN_ERROR = 2


def cli(*args: str, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackmagic", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {}), "COLUMNS": "200"}, timeout=timeout)


def run_main(capsys, *args: str) -> tuple[int, str]:
    """The CLI in this process (the same ``main`` the command runs): exit code, stdout+stderr
    with rich's line wrapping undone."""
    from stackmagic.cli.main import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, flat(out.out + out.err)


def flat(text: str) -> str:
    """``text`` with rich's line wrapping (and every run of white space) made one space."""
    return " ".join(text.split())


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: content hash and mtime (ns)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                                  path.stat().st_mtime_ns)
    return found


def service_pids(sd: StackDir) -> dict[str, int | None]:
    return {s.service: s.pid for s in sd.engine().status()}


# -- a running stack every bad input is thrown at -----------------------------------------------
@pytest.fixture(scope="module")
def running(tmp_path_factory, echo_repo):
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    root = tmp_path_factory.mktemp("faults")
    sd = StackDir(root, echo_repo.as_uri(), uv_cache)
    env = {"XDG_STATE_HOME": str(root / "state"), "UV_CACHE_DIR": str(uv_cache)}
    try:
        first = cli("stack", "-v", "-c", str(sd.localrc), env=env, timeout=600)
        assert first.returncode == 0, first.stdout + first.stderr
        sd.first_output = first.stdout
        status = service_pids(sd)
        assert status["echo-api"], status
        yield sd
    finally:
        try:
            sd.engine().unstack(all=True)
        finally:
            sd.teardown()


def bad_localrc(sd: StackDir, *lines: str, name: str | None = None) -> Path:
    """The running stack's localrc with ``lines`` added at its end, in a file of its own."""
    path = sd.root / (name or f"bad-{uuid.uuid4().hex[:6]}.localrc")
    path.write_text(sd.localrc.read_text() + "".join(line + "\n" for line in lines))
    return path


def assert_untouched(sd: StackDir, before_files, before_pids) -> None:
    assert snapshot(sd.root / "data") == before_files
    assert service_pids(sd) == before_pids


# (lines added to the localrc, what the message must say): each refused with exit 2
BAD_VALUES = [
    pytest.param(["ECHO_PORT=0"], "line 10: ECHO_PORT='0' is out of range", id="port-0"),
    pytest.param(["ECHO_PORT=70000"], "ECHO_PORT='70000' is out of range; a port is a whole number from 1 to 65535", id="port-too-big"),
    pytest.param(["ECHO_PORT=-8"], "ECHO_PORT='-8' is out of range", id="port-negative"),
    pytest.param(["ECHO_PORT=http"], "ECHO_PORT='http' is not a port number", id="port-word"),
    pytest.param(["ECHO_PORT='80 81'"], "ECHO_PORT='80 81' is not a port number", id="port-two"),
    pytest.param(["KEYSTONE_SERVICE_PORT=5000.5"], "KEYSTONE_SERVICE_PORT='5000.5' is not a port number", id="port-other-service"),
    pytest.param(["HOST_IP=300.1.1.1"], "HOST_IP='300.1.1.1' is not an IP address", id="host-ip-range"),
    pytest.param(["HOST_IP=localhost"], "HOST_IP='localhost' is not an IP address", id="host-ip-name"),
    pytest.param(["SERVICE_HOST='bad host!'"], "SERVICE_HOST='bad host!' is not an IP address or a host name", id="service-host"),
    pytest.param(["SERVICE_LISTEN_ADDRESS=1.2.3"], "SERVICE_LISTEN_ADDRESS='1.2.3' is not an IP address", id="listen-address"),
    pytest.param(["GIT_DEPTH=-1"], "GIT_DEPTH='-1' is too small; write 0 or more", id="git-depth-negative"),
    pytest.param(["GIT_DEPTH=shallow"], "GIT_DEPTH='shallow' is not a whole number", id="git-depth-word"),
    pytest.param(["STACK_PARALLEL=0"], "STACK_PARALLEL='0' is too small; write 1 or more", id="parallel-0"),
    pytest.param(["STACK_PARALLEL=lots"], "STACK_PARALLEL='lots' is not a whole number", id="parallel-word"),
    pytest.param(["SERVICE_TIMEOUT=0"], "SERVICE_TIMEOUT='0' is too small", id="service-timeout"),
    pytest.param(["API_WORKERS=none"], "API_WORKERS='none' is not a whole number", id="api-workers"),
    pytest.param(["RELEASE_SERIES=1999.1"], "RELEASE_SERIES='1999.1' is not a release series stackmagic knows; write one of: 2026.2", id="release-series"),
    pytest.param(["ADMIN_PASSWORD=$'s3cr3t\\npart'"], "ADMIN_PASSWORD contains a line break", id="password-newline"),
    pytest.param(["SERVICE_PASSWORD=$'s3cr3t\\rpart'"], "SERVICE_PASSWORD contains a line break", id="password-cr"),
    pytest.param(["ECHO_PORT=0", "GIT_DEPTH=x"], "2 settings are wrong: - line 10: ECHO_PORT='0' is out of range; a port is a whole number from 1 to 65535 - line 11: GIT_DEPTH='x' is not a whole number", id="two-at-once"),
    pytest.param(["enable_servce echo-api"], "line 10: enable_servce: command not found; did you mean enable_service?", id="unknown-command"),
    pytest.param(["source ./no-such-file.sh"], "line 10: ./no-such-file.sh: no such file or directory", id="missing-source"),
    pytest.param(["enable_plugin ../escape file:///nowhere"], "plugin name '../escape' cannot be used", id="plugin-escape"),
    pytest.param(["enable_plugin a/b file:///nowhere"], "plugin name 'a/b' cannot be used", id="plugin-slash"),
    pytest.param(["enable_plugin .. file:///nowhere"], "plugin name '..' cannot be used", id="plugin-dotdot"),
    pytest.param(["LOGDIR=relative/logs"], "LOGDIR='relative/logs' is not an absolute path", id="logdir-relative"),
    pytest.param(["exit 3"], "stopped before its end (bash exit status 3)", id="exit"),
    pytest.param(["if then"], "line 10: bash cannot read this line", id="syntax"),
]


@pytest.mark.parametrize("lines, message", BAD_VALUES)
def test_a_bad_value_is_refused_before_the_running_stack_is_touched(running, capsys, lines, message):
    before_files, before_pids = snapshot(running.root / "data"), service_pids(running)
    rc = bad_localrc(running, *lines)
    code, out = run_main(capsys, "stack", "-c", str(rc))
    assert code == PLAN_ERROR, out
    assert message in out
    assert "Traceback" not in out
    assert "s3cr3t" not in out                  # a password itself is never shown
    code, out = run_main(capsys, "plan", "-c", str(rc))
    assert code == PLAN_ERROR and message in out
    assert_untouched(running, before_files, before_pids)


def test_shell_mistakes_are_named_by_plan_and_stack_as_commands(running):
    rc = bad_localrc(running, "enable_servce echo-api")
    for verb in ("plan", "stack"):
        proc = cli(verb, "-c", str(rc))
        assert proc.returncode == PLAN_ERROR
        assert f"{rc}, line 10: enable_servce: command not found" in flat(proc.stderr)


def test_a_mistake_in_a_sourced_file_names_that_file(running):
    other = running.root / "more.sh"
    other.write_text("# more settings\nenable_servce echo-api\n")
    rc = bad_localrc(running, f"source {other}")
    proc = cli("plan", "-c", str(rc))
    assert proc.returncode == PLAN_ERROR
    assert f"{other}, line 2: enable_servce: command not found" in flat(proc.stderr)


# places that cannot be used: made per case under the stack's root, outside DATA_DIR
PLACES = [
    pytest.param("DEST", "file", "exists and is not a directory", id="dest-is-a-file"),
    pytest.param("DATA_DIR", "file", "exists and is not a directory", id="data-dir-is-a-file"),
    pytest.param("LOGDIR", "under-file", "is not a directory", id="logdir-under-a-file"),
    pytest.param("FILES", "under-file", "is not a directory", id="files-under-a-file"),
]


@pytest.mark.parametrize("name, kind, message", PLACES)
def test_a_place_that_is_not_a_directory_is_refused(running, capsys, name, kind, message):
    before_files, before_pids = snapshot(running.root / "data"), service_pids(running)
    blocker = running.root / f"blocker-{uuid.uuid4().hex[:6]}"
    blocker.write_text("a regular file\n")
    path = blocker if kind == "file" else blocker / "sub"
    rc = bad_localrc(running, f"{name}={path}")
    code, out = run_main(capsys, "stack", "-c", str(rc))
    assert code == PLAN_ERROR, out
    assert f"{name}: " in out and message in out and f"set {name} to a directory" in out
    assert_untouched(running, before_files, before_pids)


BAD_ARGS = [
    pytest.param(["-j", "0"], "-j / --parallel is 0; write 1 or more", id="j-0"),
    pytest.param(["-j", "-3"], "-j / --parallel is -3; write 1 or more", id="j-negative"),
]


@pytest.mark.parametrize("args, message", BAD_ARGS)
def test_a_bad_parallel_count_is_refused(running, capsys, args, message):
    before_files, before_pids = snapshot(running.root / "data"), service_pids(running)
    code, out = run_main(capsys, "stack", *args, "-c", str(running.localrc))
    assert code == PLAN_ERROR and message in out and "Traceback" not in out
    assert_untouched(running, before_files, before_pids)


def _binary(path: Path) -> str:
    path.write_bytes(bytes(range(256)) * 4)
    return "not UTF-8 text (byte 0x80 at offset 128)"


def _latin1(path: Path) -> str:
    path.write_bytes(b"disable_all_services\nADMIN_PASSWORD=caf\xe9\n")
    return "line 2: this is not UTF-8 text"


def _nul(path: Path) -> str:
    path.write_bytes(b"disable_all_services\n\nX=1\0\n")
    return "line 3: this contains NUL bytes"


def _utf16(path: Path) -> str:
    path.write_text("disable_all_services\n", encoding="utf-16")
    return "not UTF-8 text"


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "this is a named pipe (FIFO), not a localrc or local.conf"


def _huge(path: Path) -> str:
    with open(path, "w") as fh:
        fh.write(("# padding\n" * 120_000))
    return "is too large for a localrc"


def _loop(path: Path) -> str:
    path.symlink_to(path)
    return "it is a symbolic link that leads nowhere (or to itself)"


def _empty_dir(path: Path) -> str:
    path.mkdir()
    return "no local.conf or localrc in"


FILES = [
    pytest.param(_loop, id="symlink-loop"),
    pytest.param(_empty_dir, id="directory"),
    pytest.param(_binary, id="binary"),
    pytest.param(_latin1, id="latin-1"),
    pytest.param(_nul, id="nul-bytes"),
    pytest.param(_utf16, id="utf-16"),
    pytest.param(_fifo, id="fifo"),
    pytest.param(_huge, id="huge"),
]


@pytest.mark.parametrize("make", FILES)
def test_a_file_that_is_not_a_text_localrc_is_refused_without_hanging(running, make):
    before_files, before_pids = snapshot(running.root / "data"), service_pids(running)
    path = running.root / f"odd-{uuid.uuid4().hex[:6]}"
    message = make(path)
    for verb in ("stack", "plan"):
        proc = cli(verb, "-c", str(path), timeout=30)       # a hang fails here, not forever
        assert proc.returncode == PLAN_ERROR, proc.stderr
        assert message in flat(proc.stderr) and "Traceback" not in proc.stderr
    assert_untouched(running, before_files, before_pids)


def test_a_device_is_refused_without_hanging(running, capsys):
    before_files, before_pids = snapshot(running.root / "data"), service_pids(running)
    code, out = run_main(capsys, "stack", "-c", "/dev/zero")
    assert code == PLAN_ERROR and "this is a device, not a localrc" in out
    assert_untouched(running, before_files, before_pids)


def test_the_api_gives_the_magics_the_same_errors(running):
    """The magics load through stackmagic.api: the loader's errors reach them unchanged."""
    from stackmagic import api
    from stackmagic.errors import ConfigError

    path = running.root / "latin1.localrc"
    _latin1(path)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        api.load(path)
    report = api.plan_report(path)
    assert report["errors"] and "line 2" in report["errors"][0]


def test_messages_keep_their_brackets(tmp_path):
    conf = tmp_path / "local.conf"
    conf.write_text("[[local|localrc]]\ndisable_all_services\n[[ post-config | $NOVA_CONF ]]\n[DEFAULT]\na=1\n")
    proc = cli("plan", "-c", str(conf))
    assert proc.returncode == PLAN_ERROR
    assert "write [[post-config|$NOVA_CONF]] instead of [[ post-config | $NOVA_CONF ]]" in flat(proc.stderr)
    conf.write_text("[[local|localrc]]\ndisable_all_services\nenable_service key\n"
                    "[[post-config|$KEYSTONE_CONF]]\nnot an option\n")
    proc = cli("plan", "-c", str(conf))
    assert "or a [section] header, not 'not an option'" in flat(proc.stderr)
    # a warning quoting [[local|localrc]] (localrc beside a local.conf) is printed as written
    conf.write_text("[[local|localrc]]\ndisable_all_services\nenable_service key\n")
    (tmp_path / "localrc").write_text("disable_all_services\nenable_service key\n")
    proc = cli("plan", "-c", str(conf))
    assert proc.returncode == 0, proc.stderr
    assert "the [[local|localrc]] section of" in flat(proc.stdout)


def test_verbose_output_has_no_literal_markup(running):
    out = running.first_output
    assert "+ " in out                           # the commands the steps ran are shown
    assert "[dim]" not in out and "[/dim]" not in out


def test_config_files_are_private(running):
    conf = running.root / "data" / "etc" / "echo" / "echo.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("value, written", [
    ("pa$$word", "pa$$$$word"),
    ("%(x)s", "%(x)s"),
    (" padded ", '" padded "'),
    ('"quoted"', '""quoted""'),
    ("it's \"q\"", "it's \"q\""),
    ("plain", "plain"),
])
def test_iniset_writes_values_oslo_config_reads_back_and_keeps_files_private(tmp_path, value, written):
    from stackmagic.config import load_config
    from stackmagic.context import Context

    cfg = load_config(text=f"DEST={tmp_path}/dest\nDATA_DIR={tmp_path}/data\n")
    ctx = Context(cfg, state=None, tmux=None, venv=None)
    conf = tmp_path / "data" / "etc" / "svc" / "svc.conf"
    ctx.iniset(conf, "keystone_authtoken", "password", value)
    assert f"password = {written}\n" in conf.read_text()
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    outside = tmp_path / "data" / "plain.ini"                 # not under STACK_CONF_DIR
    ctx.iniset(outside, "a", "b", "c", raw=True)
    assert oct(outside.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    conf.chmod(0o644)                                         # a stack made before: tightened
    ctx.iniset(conf, "DEFAULT", "debug", True)
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    ctx.write_file(conf.with_name("wsgi.py"), "x = 1\n")
    assert oct(conf.with_name("wsgi.py").stat().st_mode & 0o777) == "0o600"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- damaged state -----------------------------------------------------------------------------
DAMAGED_STATE = [
    pytest.param(b'{"version": 1, "steps": {"install": {"key": "ab', "not valid JSON", id="truncated"),
    pytest.param(b"[]", "holds a JSON list", id="json-list"),
    pytest.param(b"null", "holds a JSON null", id="json-null"),
    pytest.param(b'{"steps": {"install": {"key": 3}}}', "record 'install' has the wrong fields", id="wrong-record"),
    pytest.param(b'{"steps": []}', "'steps' is not an object", id="steps-list"),
    pytest.param(b'{"processes": {"echo-api": {"service": "echo-api", "project": "echo", "pid": "x",'
                 b' "window": "w", "logfile": "l", "started": 1}}}', "pid is a str", id="wrong-type"),
    pytest.param(b"\xff\xfe\x00garbage", "not UTF-8", id="binary"),
]


@pytest.mark.parametrize("content, why", DAMAGED_STATE)
def test_a_damaged_state_file_is_reported_and_not_trusted(tmp_path, content, why):
    from stackmagic.state import State

    (tmp_path / "state.json").write_bytes(content)
    state = State(tmp_path)
    assert state.damaged and why in state.damaged
    assert state.steps == {} and state.processes == {}
    assert (tmp_path / "state.json").read_bytes() == content      # reading moves nothing
    state.save()
    (aside,) = tmp_path.glob("state.json.damaged-*")
    assert aside.read_bytes() == content
    assert json.loads((tmp_path / "state.json").read_text())["steps"] == {}


def test_stack_rebuilds_from_a_truncated_state_file(stack_dir):
    env = {"XDG_STATE_HOME": str(stack_dir.root / "state")}
    assert cli("stack", "-c", str(stack_dir.localrc), env=env, timeout=600).returncode == 0
    state = stack_dir.root / "data" / "stackmagic" / "state.json"
    state.write_text(state.read_text()[:40])
    status = cli("status", "-c", str(stack_dir.localrc), env=env)
    assert "Traceback" not in status.stderr
    assert "is damaged (not valid JSON" in flat(status.stdout)
    dry = cli("stack", "--dry-run", "-c", str(stack_dir.localrc), env=env)
    assert dry.returncode == 0 and "would run  install" in dry.stdout
    assert not list(state.parent.glob("state.json.damaged-*"))      # dry-run moves nothing
    again = cli("stack", "-c", str(stack_dir.localrc), env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "warning: the state file" in again.stdout and "every step re-runs" in flat(again.stdout)
    assert "0 skipped as already done" in again.stdout
    assert len(list(state.parent.glob("state.json.damaged-*"))) == 1
    assert wait_until(lambda: all(s.healthy for s in stack_dir.engine().status()), 30)


# -- damaged passwords ---------------------------------------------------------------------------
def _stack_with_data(tmp_path: Path) -> Path:
    """A state directory whose finished steps read ADMIN_PASSWORD (as keystone's do)."""
    stack = tmp_path / "data" / "stackmagic"
    stack.mkdir(parents=True)
    record = {"key": "k", "reads": {"ADMIN_PASSWORD": "3f2a", "DEST": "00"}, "inputs": {},
              "seconds": 1.0, "finished": 1.0}
    (stack / "state.json").write_text(json.dumps({"version": 1, "steps": {"init keystone": record}}))
    return stack


DAMAGED_PASSWORDS = [
    pytest.param(b"ADMIN_PASSWORD=", "is damaged (line 1 is not NAME=password", id="empty-value"),
    pytest.param(b"\x00\xff\xfe", "is damaged (it is not text)", id="binary"),
    pytest.param(b"", "is damaged (it is empty)", id="empty"),
    pytest.param(b"garbage line\n", "is damaged (line 1", id="garbage"),
    pytest.param(None, "is missing", id="missing"),
    pytest.param(b"SERVICE_PASSWORD=abc\n", "has no ADMIN_PASSWORD", id="lost-one"),
]


@pytest.mark.parametrize("content, why", DAMAGED_PASSWORDS)
def test_a_damaged_passwords_file_is_never_silently_regenerated(tmp_path, content, why):
    from stackmagic.config import load_config
    from stackmagic.passwords import PasswordsError, with_passwords

    stack = _stack_with_data(tmp_path)
    if content is not None:
        (stack / "passwords").write_bytes(content)
    cfg = load_config(text=f"DEST={tmp_path}/dest\nDATA_DIR={tmp_path}/data\nSERVICE_PASSWORD=s\n"
                           "DATABASE_PASSWORD=d\nRABBIT_PASSWORD=r\n")
    before = snapshot(stack)
    with pytest.raises(PasswordsError) as err:
        with_passwords(cfg, stack, create=True)
    assert why in str(err.value)
    assert "set ADMIN_PASSWORD in the localrc" in str(err.value)
    assert snapshot(stack) == before
    # a reader (status) still works with what can be read, and writes nothing
    assert with_passwords(cfg, stack, create=False).settings.admin_password is None
    assert snapshot(stack) == before


def test_a_damaged_passwords_file_of_a_stack_without_data_is_replaced(tmp_path):
    from stackmagic.config import load_config
    from stackmagic.passwords import with_passwords

    stack = tmp_path / "stackmagic"
    stack.mkdir()
    (stack / "passwords").write_bytes(b"\xff\xfe")
    cfg = load_config(text=f"DEST={tmp_path}/dest\n")
    filled = with_passwords(cfg, stack, create=True)
    assert filled.settings.admin_password
    assert (stack / "passwords.damaged").read_bytes() == b"\xff\xfe"
    assert oct((stack / "passwords").stat().st_mode & 0o777) == "0o600"


def test_the_cli_says_how_to_recover_from_lost_passwords(stack_dir):
    stack = _stack_with_data(stack_dir.root)
    (stack / "passwords").write_text("nonsense\n")
    proc = cli("stack", "-c", str(stack_dir.localrc))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "new passwords would lock its services out" in proc.stderr
    assert (stack / "passwords").read_text() == "nonsense\n"


# -- dry-run writes nothing ---------------------------------------------------------------------
def test_dry_run_writes_nothing_under_data_dir(stack_dir):
    import tempfile

    previews = Path(tempfile.gettempdir()) / f"stackmagic-preview-{os.getuid()}"
    leftover = previews / "4194305-echo-killed"            # above pid_max: its process is gone
    leftover.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "stackmagic", "stack", "--dry-run", "-c",
                             str(stack_dir.localrc)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "200"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "would run  start echo-api" in out
    assert not (stack_dir.root / "data").exists()
    assert not (stack_dir.root / "logs").exists()
    assert not (stack_dir.root / "dest").exists()           # the plugin was read from a temporary clone
    assert "read from a temporary clone" in out
    assert not leftover.exists()                            # what a killed preview left is removed
    assert not list(previews.glob(f"{proc.pid}-*"))         # and its own clone went at its exit


# -- names from a plugin ------------------------------------------------------------------------
def test_a_plugin_project_name_cannot_escape(tmp_path):
    from stackmagic.plugins import PluginError, load_plugin

    plugin = tmp_path / "evil"
    plugin.mkdir()
    (plugin / "stackmagic_plugin.py").write_text(
        "from stackmagic.catalog import Project\n"
        "class Evil(Project):\n    name = '../../etc'\n    services = {'evil-api': 'x'}\n"
        "PROJECTS = [Evil]\n")
    with pytest.raises(PluginError, match=r"project name '\.\./\.\./etc' cannot be used"):
        load_plugin("evil", plugin)


# -- places as an ordinary user (root would bypass the permissions) -----------------------------
def load_as(user: str, path: Path) -> tuple[int, str]:
    """Load ``path`` as ``user`` in a forked child that dropped root (a real ordinary user,
    without a Python of its own): (exit code of the error, its message), or (0, "")."""
    import getpass  # noqa: F401 - imported before the fork: the child cannot read our Python
    import pwd

    from stackmagic import api
    from stackmagic.errors import StackError

    entry = pwd.getpwnam(user)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                            # the child: never returns
        code, message = 0, ""
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.environ.update(USER=user, LOGNAME=user, HOME=str(path.parent))
            api.load(path, remembered=False)
        except StackError as err:
            code, message = err.exit_code, str(err)
        except BaseException as err:  # noqa: BLE001 - reported to the parent as a failure
            code, message = 99, repr(err)
        finally:
            os.write(write, json.dumps([code, message]).encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    code, message = json.loads(data)
    return code, message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
@pytest.mark.parametrize("name", ["DEST", "DATA_DIR", "LOGDIR", "FILES"])
def test_a_place_an_ordinary_user_cannot_write_is_refused(name):
    import pwd

    user = pwd.getpwnam("nobody")
    base = Path(f"/tmp/stackmagic-faults-{uuid.uuid4().hex[:8]}")
    base.mkdir(mode=0o755)
    try:
        mine = base / "mine"
        mine.mkdir()
        os.chown(mine, user.pw_uid, user.pw_gid)
        locked = base / "root-only"
        locked.mkdir(mode=0o755)                   # root's: others may enter, not write
        places = {"DEST": mine / "dest", "DATA_DIR": mine / "data", "LOGDIR": mine / "logs",
                  "FILES": mine / "files"}
        places[name] = locked / "x"
        rc = mine / "localrc"
        rc.write_text("".join(f"{k}={v}\n" for k, v in places.items()) + "disable_all_services\n")
        code, message = load_as("nobody", rc)
        assert code == PLAN_ERROR, message
        assert f"{name}: {locked / 'x'} cannot be made: this user (nobody) cannot write {locked}" in message
        assert f"set {name} to a directory this user can write" in message
        assert [p.name for p in mine.iterdir()] == ["localrc"] and not list(locked.iterdir())
        # the same places are fine for root, and for nobody once they are its own
        places[name] = mine / "ok"
        rc.write_text("".join(f"{k}={v}\n" for k, v in places.items()) + "disable_all_services\n")
        assert load_as("nobody", rc) == (0, "")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_place_an_ordinary_user_cannot_reach_is_refused():
    import pwd

    user = pwd.getpwnam("nobody")
    base = Path(f"/tmp/stackmagic-faults-{uuid.uuid4().hex[:8]}")
    base.mkdir(mode=0o755)
    private = Path(f"/root/stackmagic-faults-{uuid.uuid4().hex[:8]}")   # /root is 0700
    try:
        os.chown(base, user.pw_uid, user.pw_gid)
        rc = base / "localrc"
        rc.write_text(f"DEST={base}/dest\nDATA_DIR={private}/data\ndisable_all_services\n")
        code, message = load_as("nobody", rc)
        assert code == PLAN_ERROR, message
        assert f"DATA_DIR: {private}/data cannot be reached by this user (nobody): Permission denied" in message
        assert not private.exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- passwords of every character, through a real Keystone, Glance and Placement ---------------
HOSTILE = {
    "ADMIN_PASSWORD": 'ad$min%(x)s "q" it\'s %25',
    "SERVICE_PASSWORD": ' "se$rv%(x)s it\'s" ',          # surrounding spaces, wholly quoted
    "DATABASE_PASSWORD": 'd$b%(x)s "q" it\'s',
}


@pytest.mark.slow
def test_passwords_of_any_character_survive_every_config_file(tmp_path):
    import shlex

    import yaml

    from stackmagic.config import load_config
    from stackmagic.engine import Engine
    from stackmagic.process_info import alive, tree
    from stackmagic.samples import sample_path, sandbox
    from stackmagic.verify import verify

    conf = tmp_path / "local.conf"
    conf.write_text("\n".join(["[[local|localrc]]", *sandbox(tmp_path, "pw"),
                               f"source {sample_path('quickstart')}",
                               *(f"{k}={shlex.quote(v)}" for k, v in HOSTILE.items())]) + "\n")
    cfg = load_config(conf)
    assert {k: cfg.settings[k] for k in HOSTILE} == HOSTILE
    engine = Engine(cfg)
    socket_name = engine.tmux.server.socket_name
    try:
        engine.stack()
        found = {c.name: c for c in verify(engine)}
        assert all(c.ok for c in found.values()), {n: c.data for n, c in found.items() if not c.ok}
        # the files a user reads the admin password from give it back as it was set
        clouds = yaml.safe_load((tmp_path / "data" / "clouds.yaml").read_text())
        assert clouds["clouds"]["devstack-admin"]["auth"]["password"] == HOSTILE["ADMIN_PASSWORD"]
        openrc = subprocess.run(["bash", "-c", f"source {tmp_path}/data/openrc admin; printf %s \"$OS_PASSWORD\""],
                                capture_output=True, text=True, check=True).stdout
        assert openrc == HOSTILE["ADMIN_PASSWORD"]
        # every config file holding a password is private
        for name in ("keystone/keystone.conf", "glance/glance-api.conf", "placement/placement.conf"):
            path = tmp_path / "data" / "etc" / name
            assert oct(path.stat().st_mode & 0o777) == "0o600", path
        for log in (tmp_path / "logs" / "stack").glob("*.log"):
            text = log.read_text()
            assert not any(v.strip() in text for v in HOSTILE.values()), log
    finally:
        pids = [p for s in Engine(load_config(conf)).status() if s.pid for p in tree(s.pid)]
        Engine(load_config(conf)).unstack(all=True)
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
    assert not [p for p in pids if alive(p)]
