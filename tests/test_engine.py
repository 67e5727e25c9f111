"""End-to-end tests of the engine with the echo plugin: real git, venv, tmux, HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from stackmagic import events as ev
from stackmagic.engine import StepError
from stackmagic.process_info import alive
from stackmagic.state import Lock, LockedError
from tests.conftest import wait_until, commands_running


def get(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return json.loads(resp.read())


def ran(summary) -> list[str]:
    return [r.step for r in summary.ran]



def test_cold_stack_then_nothing_to_do_then_restart_after_kill(stack_dir):
    events: list = []
    summary = stack_dir.engine(on_event=events.append).stack()
    # the plugin is cloned before the plan is made (it defines the plan's projects)
    assert ran(summary) == ["install", "configure echo", "init echo", "start echo-api"]
    assert any(isinstance(e, ev.Message) and e.text.startswith("plugin echo: cloned") for e in events)
    assert get(stack_dir.port)["message"] == "hello"
    assert (stack_dir.root / "dest" / "echo" / ".git").is_dir()          # the plugin was cloned
    status = {s.service: s for s in summary.services}
    assert status["echo-api"].healthy and status["echo-api"].pid
    assert any(isinstance(e, ev.StepFinished) and e.step == "start echo-api" for e in events)
    # the service runs in a tmux window named after it, in session "stack", on our own socket
    windows = subprocess.run(["tmux", "-L", stack_dir.socket, "list-windows", "-t", "stack", "-F",
                              "#{window_name}"], capture_output=True, text=True).stdout.split()
    assert windows == ["echo-api"]
    log = stack_dir.root / "logs" / "echo-api.log"
    assert wait_until(lambda: "listening on" in log.read_text())

    # warm: nothing changed, nothing runs
    again = stack_dir.engine().stack()
    assert ran(again) == []
    assert len(again.skipped) == 4

    # SIGKILL the service: status says down, stack restarts only it, with its data intact
    pid = status["echo-api"].pid
    data_before = get(stack_dir.port)["data"]
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid))
    down = {s.service: s for s in stack_dir.engine().status()}
    assert not down["echo-api"].running and not down["echo-api"].healthy
    restarted = stack_dir.engine().stack()
    assert ran(restarted) == ["start echo-api"]
    assert get(stack_dir.port)["data"] == data_before
    assert get(stack_dir.port)["pid"] != pid
    # one service's status alone (what %horizon asks before it opens a browser)
    assert [(s.service, s.healthy) for s in stack_dir.engine().status(only=["echo-api"])] == [("echo-api", True)]
    assert stack_dir.engine().status(only=["not-a-service"]) == []

    # unstack: no process, no tmux session left
    new_pid = {s.service: s for s in restarted.services}["echo-api"].pid
    stopped = stack_dir.engine().unstack()
    assert stopped == ["echo-api"]
    assert not alive(new_pid)
    has = subprocess.run(["tmux", "-L", stack_dir.socket, "has-session", "-t", "stack"], capture_output=True)
    assert has.returncode != 0


def test_changed_setting_reruns_exactly_the_steps_that_read_it(stack_dir):
    stack_dir.engine().stack()
    stack_dir.write(ECHO_MESSAGE="bonjour")
    summary = stack_dir.engine().stack()
    # configure read ECHO_MESSAGE; init and start depend on configure; clone and install did not change
    assert ran(summary) == ["configure echo", "init echo", "start echo-api"]
    reasons = {r.step: r.reason for r in summary.results}
    assert reasons["configure echo"] == "setting ECHO_MESSAGE changed"
    assert reasons["init echo"] == "'configure echo' re-ran"
    assert reasons["install"] == "already done"
    assert get(stack_dir.port)["message"] == "bonjour"


def test_enabling_a_neighbour_reruns_the_configure_that_asked_about_it(stack_dir):
    """A configure step that asks whether another service is enabled (devstack's
    ``if is_service_enabled ceilometer``) re-runs when only the enabled services change, and
    only the steps built on it follow."""
    stack_dir.engine().stack()
    assert get(stack_dir.port)["neighbour"] is False
    with stack_dir.localrc.open("a") as localrc:
        localrc.write("enable_service echo-extra\n")
    summary = stack_dir.engine().stack()
    reasons = {r.step: r.reason for r in summary.results}
    assert reasons["configure echo"] == "the enabled services changed"
    assert "start echo-api" in ran(summary) and reasons["install"] == "already done"
    assert get(stack_dir.port)["neighbour"] is True
    assert ran(stack_dir.engine().stack()) == []


def test_failed_step_resumes_from_there(stack_dir):
    stack_dir.write(ECHO_FAIL_INIT="True")
    failures: list = []
    with pytest.raises(StepError) as info:
        stack_dir.engine(on_event=failures.append).stack()
    message = str(info.value)
    assert "step 'init echo' failed" in message
    assert "init refused" in message                      # the tail of the step's log
    assert "run stack again" in message
    assert [e.step for e in failures if isinstance(e, ev.StepFailed)] == ["init echo"]
    # fix it: the re-run repeats only the failed step and what follows
    stack_dir.extra.pop("ECHO_FAIL_INIT")
    stack_dir.write()
    summary = stack_dir.engine().stack()
    assert ran(summary) == ["init echo", "start echo-api"]
    assert {r.step for r in summary.skipped} == {"install", "configure echo"}


def test_port_in_use_names_the_port_and_who_holds_it(stack_dir):
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", stack_dir.port))
        holder.listen()
        with pytest.raises(StepError) as info:
            stack_dir.engine().stack()
    message = str(info.value)
    assert f"127.0.0.1:{stack_dir.port}" in message
    assert f"pid {os.getpid()}" in message
    # everything before the start stays done
    summary = stack_dir.engine().stack()
    assert ran(summary) == ["start echo-api"]


def test_a_second_stack_at_the_same_time_is_refused(stack_dir):
    engine = stack_dir.engine()
    with Lock(engine.stack_dir, "stack"):
        with pytest.raises(LockedError) as info:
            stack_dir.engine().stack()
    assert "another stackmagic command is running" in str(info.value)
    assert f"pid {os.getpid()}" in str(info.value)


def test_clone_through_insteadof_rewrite(stack_dir, echo_repo, tmp_path, monkeypatch):
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "{echo_repo.parent.as_uri()}/"]\n\tinsteadOf = https://git.example.invalid/\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    stack_dir.plugin_url = "https://git.example.invalid/echo-plugin"
    stack_dir.write()
    summary = stack_dir.engine().stack()
    assert "start echo-api" in ran(summary)
    import git

    assert git.Repo(stack_dir.root / "dest" / "echo").remotes.origin.url == "https://git.example.invalid/echo-plugin"


def test_clean_keeps_source_and_venv_but_removes_data_and_logs(stack_dir):
    stack_dir.engine().stack()
    data = stack_dir.root / "data" / "echo" / "data.json"
    assert data.exists()
    stack_dir.engine().clean()
    assert not data.exists()
    assert not (stack_dir.root / "logs").exists()
    assert (stack_dir.root / "dest" / "echo" / ".git").is_dir()
    assert (stack_dir.root / "data" / "venv").is_dir()
    summary = stack_dir.engine().stack()
    assert set(ran(summary)) == {"configure echo", "init echo", "start echo-api"}


def test_ctrl_c_stops_cleanly_and_the_next_stack_continues(stack_dir):
    stack_dir.write(ECHO_INIT_SLEEP="30")
    cli = [sys.executable, "-m", "stackmagic.cli.__main__", "stack", "--config", str(stack_dir.localrc)]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "XDG_STATE_HOME": str(stack_dir.root / "xdg")})
    step_log = stack_dir.root / "logs" / "stack" / "init-echo.log"
    assert wait_until(lambda: step_log.exists() and "slow init" in step_log.read_text(), timeout=120)
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()             # or it goes on to start echo-api after the fixture's unstack
        raise
    assert proc.returncode == 130, out
    assert "interrupted" in out
    # the sleep's process group was stopped too
    running = commands_running()   # exact lines: a "sleep 300" elsewhere is not ours
    assert "sleep 30" not in running
    assert not [c for c in running if "slow init'; sleep 30" in c]
    stack_dir.extra.pop("ECHO_INIT_SLEEP")
    stack_dir.write()
    summary = stack_dir.engine().stack()
    assert ran(summary) == ["init echo", "start echo-api"]


def test_failed_install_names_the_requirement_and_resumes(stack_dir):
    stack_dir.write(ECHO_EXTRA_REQUIREMENT="stackmagic-no-such-package-0ae1==1.0")
    with pytest.raises(StepError) as info:
        stack_dir.engine().stack()
    message = str(info.value)
    assert "step 'install' failed" in message
    assert "stackmagic-no-such-package-0ae1" in message
    stack_dir.extra.pop("ECHO_EXTRA_REQUIREMENT")
    stack_dir.write()
    summary = stack_dir.engine().stack()
    assert ran(summary) == ["install", "configure echo", "init echo", "start echo-api"]


def test_service_that_crashes_at_start_fails_with_its_log(stack_dir):
    stack_dir.write(ECHO_CRASH="True")
    with pytest.raises(StepError) as info:
        stack_dir.engine().stack()
    message = str(info.value)
    assert "echo-api exited during start" in message
    assert "crash = true in the config" in message          # the last lines of its log
    status = {s.service: s for s in stack_dir.engine().status()}
    assert not status["echo-api"].running
    stack_dir.extra.pop("ECHO_CRASH")
    stack_dir.write()
    summary = stack_dir.engine().stack()
    assert ran(summary) == ["configure echo", "init echo", "start echo-api"]
    assert get(stack_dir.port)["message"] == "hello"


def test_local_conf_merges_win_over_what_the_service_wrote(stack_dir):
    localrc = stack_dir.write().read_text()
    conf = stack_dir.root / "local.conf"
    conf.write_text("[[local|localrc]]\n" + localrc
                    + "[[post-config|$STACK_CONF_DIR/echo/echo.conf]]\n[api]\nmessage = from local.conf\n"
                    + "[[extra|$DATA_DIR/extra.ini]]\n[DEFAULT]\nwhere = extra phase\n")
    stack_dir.localrc = conf
    summary = stack_dir.engine().stack()
    assert get(stack_dir.port)["message"] == "from local.conf"
    assert "where = extra phase" in (stack_dir.root / "data" / "extra.ini").read_text()
    assert "extra merges" in ran(summary)
    # editing only a merge re-runs the step that applies it (and what depends on it)
    conf.write_text(conf.read_text().replace("where = extra phase", "where = edited"))
    again = stack_dir.engine().stack()
    assert ran(again) == ["extra merges"]
    assert "where = edited" in (stack_dir.root / "data" / "extra.ini").read_text()


def test_unstack_never_stops_a_process_that_reused_a_recorded_pid(stack_dir):
    """After a reboot the recorded pid may belong to someone else: it must be left alone."""
    import dataclasses

    engine = stack_dir.engine()
    engine.stack()
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        rec = engine.state.processes["echo-api"]
        engine.tmux.stop("echo-api")                      # the service is gone ...
        engine.state.record_process(dataclasses.replace(rec, pid=stranger.pid))   # ... its pid reused
        stack_dir.engine().unstack()
        assert stranger.poll() is None                    # the stranger still runs
        assert "echo-api" not in stack_dir.engine().state.processes
    finally:
        stranger.kill()
        stranger.wait()


def test_dry_run_makes_the_same_decisions_without_doing_them(stack_dir):
    stack_dir.engine().stack()
    stack_dir.write(ECHO_MESSAGE="dry")
    preview = {r.step: r.status for r in stack_dir.engine().stack(dry_run=True).results}
    assert preview == {"install": "skipped", "configure echo": "would run",
                       "init echo": "would run", "start echo-api": "would run"}
    assert get(stack_dir.port)["message"] == "hello"          # nothing was done
    assert ran(stack_dir.engine().stack()) == [s for s, v in preview.items() if v == "would run"]


def test_a_service_no_longer_enabled_is_stopped_by_the_next_stack(stack_dir):
    first = stack_dir.engine().stack()
    pid = {s.service: s for s in first.services}["echo-api"].pid
    assert alive(pid)
    with stack_dir.localrc.open("a") as localrc:
        localrc.write("disable_service echo-api\n")
    events: list = []
    stack_dir.engine(on_event=events.append).stack()
    # stopped before anything else ran (a layout switch must not run both side by side)
    assert not alive(pid)
    assert any(isinstance(e, ev.Message) and e.text.startswith("stopped echo-api") for e in events)
    assert "echo-api" not in stack_dir.engine().state.processes


def test_another_projects_install_leaves_running_services_alone(stack_dir, catalog_dir):
    """Enabling a project reinstalls into the shared venv; a service whose own requirements,
    sources and constraints did not change keeps running (devstack restarts everything); its
    own new requirement restarts it."""
    (catalog_dir / "fakeneighbour.py").write_text(
        "from stackmagic.catalog import Project\n\n"
        "class FakeNeighbour(Project):\n"
        "    name = 'fakeneighbour'\n"
        "    services = {'fake-neighbour': 'a project that only installs a requirement'}\n\n"
        "    def install_requirements(self, ctx):\n"
        "        return [str(ctx.settings.dest / 'echo' / 'slowpkg')]\n")
    stack_dir.engine().stack()
    pid = get(stack_dir.port)["pid"]
    with stack_dir.localrc.open("a") as localrc:
        localrc.write("enable_service fake-neighbour\n")
    second = stack_dir.engine().stack()
    assert "install" in ran(second) and "start echo-api" not in ran(second)
    assert alive(pid) and get(stack_dir.port)["pid"] == pid
    stack_dir.write(ECHO_EXTRA_REQUIREMENT=f"{stack_dir.root}/dest/echo/slowpkg")
    with stack_dir.localrc.open("a") as localrc:
        localrc.write("enable_service fake-neighbour\n")
    third = stack_dir.engine().stack()
    reasons = {r.step: r.reason for r in third.results}
    assert "start echo-api" in ran(third) and reasons["start echo-api"] == "its inputs changed"
    assert get(stack_dir.port)["pid"] != pid


def test_a_debian_package_added_for_one_project_fetches_no_source_again(stack_dir, catalog_dir,
                                                                         tmp_path_factory):
    """The clones come after the packages step (git), but do not use its result: a project
    enabled with a new Debian package re-ran every clone, and so everything built on them."""
    from tests.conftest import FIXTURES, make_repo

    repo = make_repo(FIXTURES / "db-plugin", tmp_path_factory.mktemp("repos") / "fakesource")
    (catalog_dir / "fakesource.py").write_text(
        "from stackmagic.catalog import Project\n\n"
        "class FakeSource(Project):\n"
        "    name = 'fakesource'\n"
        "    repo = 'fixtures/fakesource'\n"
        "    services = {'fake-source': 'a project cloned from git'}\n\n"
        "    def packages(self, ctx):\n"
        "        return tuple((ctx.settings.get('FAKE_PACKAGES') or 'git').split())\n\n"
        "    def editable(self, ctx):\n"
        "        return []\n")
    stack_dir.write(FAKESOURCE_REPO=repo.as_uri())
    with stack_dir.localrc.open("a") as localrc:
        localrc.write("enable_service fake-source\n")
    assert "clone fakesource" in ran(stack_dir.engine().stack())
    stack_dir.write(FAKE_PACKAGES="'git tmux'")          # both present here: nothing to install
    with stack_dir.localrc.open("a") as localrc:
        localrc.write("enable_service fake-source\n")
    again = stack_dir.engine().stack()
    assert "packages" in ran(again), [(r.step, r.reason) for r in again.results]
    assert not [s for s in ran(again) if s.startswith(("clone", "configure", "start"))], ran(again)
    # RECLONE=yes fetches and resets the checkout; the same commit re-runs nothing built on it
    with stack_dir.localrc.open("a") as localrc:
        localrc.write("RECLONE=yes\n")
    assert ran(stack_dir.engine().stack()) == ["clone fakesource"]


def test_unstack_stops_services_in_the_reverse_of_their_start(tmp_path):
    """state.json is written with sorted keys; read back, the processes are in the order they
    started, so unstack (which walks them backwards) stops redis, rabbit and mysql after the
    services that use them, not first because their names sort last."""
    from stackmagic.state import ProcessRecord, State

    state = State(tmp_path)
    for started, service in enumerate(["mysql", "rabbit", "redis", "gnocchi-api", "ceilometer-acentral"]):
        state.record_process(ProcessRecord(service, "p", 1000 + started, service, "", float(started)))
    assert list(reversed(list(State(tmp_path).processes))) == [
        "ceilometer-acentral", "gnocchi-api", "redis", "rabbit", "mysql"]


def test_unstack_stops_what_needs_a_service_first_and_the_rest_side_by_side(stack_dir, tmp_path):
    """Each process takes a second to go after SIGTERM. 'db' is needed by 'api' and 'worker'
    (their records' needs), 'cache' by 'worker' only: api and worker go before db, worker before
    cache, and api and worker (which need nothing of each other) are stopped at the same time."""
    from stackmagic.process_info import start_ticks
    from stackmagic.state import ProcessRecord

    seen = tmp_path / "seen"
    script = ('trap \'echo "$0 term $(date +%s.%N)" >> {0}; sleep 1; '
              'echo "$0 gone $(date +%s.%N)" >> {0}; exit 0\' TERM; '
              'while :; do sleep 0.1; done').format(seen)
    engine = stack_dir.engine()
    procs = []
    needs = {"db": [], "cache": [], "api": ["db"], "worker": ["db", "cache"]}
    for started, (name, wanted) in enumerate(needs.items()):
        proc = subprocess.Popen(["sh", "-c", script, name], start_new_session=True)
        procs.append(proc)
        assert wait_until(lambda: start_ticks(proc.pid) is not None)
        engine.state.record_process(ProcessRecord(
            name, "fixture", proc.pid, name, str(tmp_path / f"{name}.log"), float(started),
            start_ticks=start_ticks(proc.pid), needs=wanted))
    try:
        stopped = stack_dir.engine().unstack()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert sorted(stopped) == sorted(needs)
    at = {(name, what): float(t) for name, what, t in (line.split() for line in seen.read_text().splitlines())}
    assert at["api", "gone"] < at["db", "term"] and at["worker", "gone"] < at["db", "term"]
    assert at["worker", "gone"] < at["cache", "term"]
    assert at["api", "term"] < at["worker", "gone"] and at["worker", "term"] < at["api", "gone"]
