"""The work behind the engine's generic steps: packages, clone, install, configure (+ local.conf
merges), start in tmux with a health wait, post-config. Project-specific work lives in the
catalog; this module only calls the project's lifecycle methods around the shared mechanics.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from stackmagic import codehash, ini, ports
from stackmagic.health import to_dict as health_to_dict
from stackmagic.process_info import alive, start_ticks
from stackmagic.errors import StackError
from stackmagic.state import ProcessRecord

if TYPE_CHECKING:
    from stackmagic.catalog.base import Process, Project
    from stackmagic.context import Context


class ServiceFailed(StackError):
    """A service died at start or never became healthy."""

    def __init__(self, message: str, tail: list[str], logfile: Path):
        self.tail, self.logfile = tail, logfile
        super().__init__(message)


# -- fingerprints of code --------------------------------------------------------------------
recipe = codehash.recipe
_file_hash = codehash.file_hash


# -- packages --------------------------------------------------------------------------------
def missing_packages(packages: list[str]) -> list[str]:
    """The Debian packages of ``packages`` that are not installed."""
    if not shutil.which("dpkg-query"):
        return list(packages)
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
        capture_output=True, text=True,
    )
    installed = {line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" installed")}
    return [p for p in packages if p not in installed]


def packages(names: list[str]) -> Callable[["Context"], None]:
    def run(ctx: "Context") -> None:
        missing = missing_packages(names)
        if not missing:
            ctx.log("system packages present: " + " ".join(names))
            return
        if os.geteuid() != 0:
            raise StackError(
                "these Debian packages are missing and only root can install them: "
                + " ".join(missing)
                + ". Ask an administrator to run: sudo apt-get install -y " + " ".join(missing)
                + " (or disable the services that need them)."
            )
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        ctx.run("apt-get", "update", "-q", env=env, timeout=600)
        ctx.run("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing,
                env=env, timeout=1200)
    return run


# -- clone -----------------------------------------------------------------------------------
def clone_url(ctx: "Context", project: "Project") -> str:
    if ctx.settings.bool("MIRROR_FROM_PYPI", False) and project.pypi:
        return (ctx.settings.data_dir / "mirror" / f"{project.repo}.git").as_uri()
    return ctx.settings.repo(project.name)


def clone(project: "Project") -> Callable[["Context"], dict]:
    def run(ctx: "Context") -> dict:
        from stackmagic.git import git_clone

        s = ctx.settings
        if s.bool("MIRROR_FROM_PYPI", False) and project.pypi:
            from stackmagic.mirror import mirror_project
            from stackmagic.release import release_version, series

            version = release_version(ctx, project.pypi)
            result = mirror_project(project.pypi, version, Path(project.repo).name,
                                    s.data_dir / "mirror", cache=s.files / "sdists",
                                    series=series(ctx), log=ctx.log)
            ctx.log(f"mirror {result.path}: {project.pypi} {version}"
                    + (" (built)" if result.created else " (present)"))
        dest = project.source_dir(ctx)
        ref = s.branch(project.name)
        res = git_clone(clone_url(ctx, project), dest, ref, reclone=s.reclone, offline=s.offline,
                        error_on_clone=s.error_on_clone, depth=s.git_depth, name=project.name)
        ctx.log(f"{res.action} {dest} at {res.ref} ({res.sha[:12]})")
        return {"sha": res.sha, "action": res.action}
    return run


def clone_inputs(project: "Project") -> Callable[["Context"], dict]:
    def inputs(ctx: "Context") -> dict:
        from stackmagic.git import head_sha

        return {"sha": head_sha(project.source_dir(ctx))}
    return inputs


# -- install ---------------------------------------------------------------------------------
def constraints_file(ctx: "Context") -> Path | None:
    """UPPER_CONSTRAINTS_FILE, or the file shipped for the release series; None to go without."""
    s = ctx.settings
    if s.get("UPPER_CONSTRAINTS_FILE"):
        return s.path("UPPER_CONSTRAINTS_FILE")
    if not s.bool("USE_CONSTRAINTS", True):
        return None
    from stackmagic.release import shipped_constraints

    return shipped_constraints(ctx)


def _edited_constraints(ctx: "Context", source: Path, editable: list[Path]) -> Path:
    """devstack's edit-constraints: drop the pins of the projects installed from source."""
    from stackmagic.constraints import without
    from stackmagic.release import project_name_of

    out = ctx.stack_dir / "constraints.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(without(source.read_text(), {project_name_of(p) for p in editable}))
    return out


def install(projects: list["Project"]) -> Callable[["Context"], None]:
    def run(ctx: "Context") -> None:
        created = ctx.venv.ensure()
        ctx.log(("created" if created else "using") + f" virtual environment {ctx.venv.path}")
        reqs = sorted({r for p in projects for r in p.install_requirements(ctx)})
        editable = [e for p in projects for e in p.editable(ctx)]
        cons = constraints_file(ctx)
        if cons is not None:
            cons = _edited_constraints(ctx, cons, editable)
        if not reqs and not editable:
            return
        ctx.venv.install(reqs, editable=editable, constraints=cons,
                         upgrade=ctx.settings.bool("PIP_UPGRADE", False), log=ctx.log)
    return run


def _venv_contents(ctx: "Context", projects) -> dict:
    """What ``projects`` put into the shared venv: requirements, editable sources (at which
    commit), and the constraints they are pinned by."""
    from stackmagic.git import head_sha

    cons = constraints_file(ctx)
    return {
        "requirements": sorted({r for p in projects for r in p.install_requirements(ctx)}),
        "sources": {str(e): head_sha(e) for p in projects for e in p.editable(ctx)},
        "constraints": _file_hash(str(cons)) if cons and cons.exists() else None,
    }


def install_inputs(projects: list["Project"]) -> Callable[["Context"], dict]:
    def inputs(ctx: "Context") -> dict:
        # a half-made venv re-runs the install
        return {**_venv_contents(ctx, projects), "venv": ctx.venv.complete()}
    return inputs


def installed_inputs(p: "Project", libraries: list["Project"]) -> Callable[["Context"], dict]:
    """What of the shared venv ``p``'s processes run: its own requirements and sources, those of
    ``libraries`` (projects installed without processes of their own), the constraints, and the
    venv itself. Their start steps key on these instead of on the whole install: enabling
    another project reinstalls into the venv, but with every version pinned by the constraints
    it changes none of these, so the running services are not restarted for it."""
    def inputs(ctx: "Context") -> dict:
        marker = ctx.venv.path / "pyvenv.cfg"
        return {**_venv_contents(ctx, (p, *libraries)),
                "upgrade": ctx.settings.bool("PIP_UPGRADE", False),
                # a venv made anew (removed, or half-made and redone) restarts everything
                "venv": marker.stat().st_mtime_ns if marker.exists() else None}
    return inputs


# -- configure and local.conf merges ----------------------------------------------------------
def _merges_for(ctx: "Context", files: list[Path], phase: str = "post-config") -> list:
    wanted = {str(Path(f)) for f in files}
    return [m for m in ctx.config.merges if m.phase == phase and str(Path(m.file)) in wanted]


def apply_merges(ctx: "Context", merges: list) -> None:
    by_file: dict[Path, list] = {}
    for m in merges:
        by_file.setdefault(Path(m.file), []).append(m)
    for path, group in by_file.items():  # one merge per file keeps local.conf's order
        path.parent.mkdir(parents=True, exist_ok=True)
        ini.merge_file(path, [(m.section, m.key, m.value) for m in group])
        for m in group:
            ctx.log(f"{m.phase}: [{m.section}] {m.key} -> {m.file}")


def configure(project: "Project") -> Callable[["Context"], None]:
    def run(ctx: "Context") -> None:
        project.configure(ctx)
        apply_merges(ctx, _merges_for(ctx, project.config_files(ctx)))
    return run


def merge_inputs(project: "Project") -> Callable[["Context"], dict]:
    def inputs(ctx: "Context") -> dict:
        return {"merges": [repr(m) for m in _merges_for(ctx, project.config_files(ctx))]}
    return inputs


def orphan_merges(ctx: "Context", projects: list["Project"]) -> list:
    owned = {str(Path(f)) for p in projects for f in p.config_files(ctx)}
    return [m for m in ctx.config.merges
            if m.phase == "post-config" and str(Path(m.file)) not in owned]


def post_config(projects: list["Project"]) -> Callable[["Context"], None]:
    def run(ctx: "Context") -> None:
        apply_merges(ctx, orphan_merges(ctx, projects))
    return run


def orphan_merge_inputs(projects: list["Project"]) -> Callable[["Context"], dict]:
    return lambda ctx: {"merges": [repr(m) for m in orphan_merges(ctx, projects)]}


def phase_merges(phases: tuple[str, ...]) -> Callable[["Context"], None]:
    """Merge the local.conf blocks of ``phases`` (extra, post-extra, test-config) into their files."""
    def run(ctx: "Context") -> None:
        apply_merges(ctx, [m for m in ctx.config.merges if m.phase in phases])
    return run


def phase_merge_inputs(phases: tuple[str, ...]) -> Callable[["Context"], dict]:
    return lambda ctx: {"merges": [repr(m) for m in ctx.config.merges if m.phase in phases]}


# -- start -----------------------------------------------------------------------------------
def start_inputs(proc: "Process") -> Callable[["Context"], dict]:
    return lambda ctx: {"argv": proc.argv, "env": sorted(proc.env.items()), "cwd": str(proc.cwd)}


def daemon_pid(rec: ProcessRecord) -> int | None:
    """The live pid a forking daemon wrote to its pid file, if it is the one we started."""
    if not rec.pidfile:
        return None
    try:
        pid = int(Path(rec.pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    ticks = start_ticks(pid)
    if ticks is None or (rec.daemon_ticks is not None and ticks != rec.daemon_ticks) or not alive(pid):
        return None
    return pid


def stop_service(ctx: "Context", service: str) -> bool:
    """Stop a service's process (a daemon by its pid file, then its window and recorded pid).
    True if something was running."""
    from stackmagic.tmux import stop_pid

    rec = ctx.state.processes.get(service)
    stopped = False
    sig = rec.stop_signal if rec else signal.SIGTERM
    timeout = rec.stop_timeout if rec else 10.0
    if rec is not None:
        pid = daemon_pid(rec)
        if pid is not None:
            stopped = stop_pid(pid, timeout, sig)
    stopped = ctx.tmux.stop(service, timeout=timeout, sig=sig) or stopped
    if rec is not None:
        # only the very process we started: after a reboot its pid may belong to another one
        if rec.start_ticks is None or start_ticks(rec.pid) == rec.start_ticks:
            stopped = stop_pid(rec.pid, timeout, sig) or stopped
        if rec.pidfile:
            Path(rec.pidfile).unlink(missing_ok=True)
        ctx.state.forget_process(service)
    return stopped


def log_path(ctx: "Context", service: str) -> Path:
    return ctx._settings.logdir / f"{service}.log"


def _held_by_us(ctx: "Context", service: str, port: int) -> bool:
    """Whether ``port`` is held by the ``service`` we started (a restart frees it): the family of
    its window in our tmux session, of its recorded process (a process group and session outlive a
    killed launcher), or its daemon."""
    from stackmagic.process_info import tree
    from stackmagic.tmux import family

    roots = [pid for pid in [ctx.tmux.pid(service)] if pid]
    rec = ctx.state.processes.get(service)
    if rec is not None and start_ticks(rec.pid) in (None, rec.start_ticks):   # not another's pid now
        roots.append(rec.pid)
    ours = set(family(roots)) if roots else set()
    daemon = daemon_pid(rec) if rec is not None else None
    if daemon is not None:
        ours |= set(tree(daemon))
    holder = ports.who_listens(port)
    return bool(ours) and (holder is None or holder[0] in ours or holder[0] == 0)


def _argv(proc: "Process") -> list[str]:
    """The command line, run as ``proc.user`` / ``proc.group`` when it names another account."""
    argv = [str(a) for a in proc.argv]
    if proc.needs_root and os.geteuid() != 0:
        raise StackError(f"{proc.service} runs only as root; run stack as root or disable it")
    if proc.user or proc.group:
        if os.geteuid() != 0:
            raise StackError(f"{proc.service} runs as {proc.user or ''}:{proc.group or ''}, which "
                             "only root can arrange; run stack as root or disable it")
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        argv = [runuser, *(["-u", proc.user] if proc.user else ["-u", "root"]),
                *(["-g", proc.group] if proc.group else []), "--", *argv]
    return argv


def start(project: "Project", proc: "Process") -> Callable[["Context"], dict]:
    def run(ctx: "Context") -> dict:
        from stackmagic.tmux import tail

        host = proc.host or "127.0.0.1"
        # a port held by another program is refused before the running service is touched
        if proc.port and not ports.port_is_free(host, proc.port) and not _held_by_us(ctx, proc.service, proc.port):
            holder = ports.who_listens(proc.port)
            who = f"pid {holder[0]} ({holder[1][:120]})" if holder else "another process"
            raise StackError(
                f"{proc.service} cannot listen on {host}:{proc.port}: the port is held by {who}. "
                f"Stop that process, or choose another port for {proc.service}."
            )
        argv = _argv(proc)
        if stop_service(ctx, proc.service):
            ctx.log(f"stopped the running {proc.service} to start it anew")
        if proc.port and not _wait(lambda: ports.port_is_free(host, proc.port), 10):
            raise StackError(f"{proc.service}: port {host}:{proc.port} is still held after the old "
                             "process stopped")
        logfile = log_path(ctx, proc.service)
        if proc.pidfile:
            Path(proc.pidfile).parent.mkdir(parents=True, exist_ok=True)
            Path(proc.pidfile).unlink(missing_ok=True)        # a stale one names a dead pid
        pid = ctx.tmux.start(proc.service, argv, cwd=proc.cwd, env=proc.env, logfile=logfile,
                             pidfile=proc.pidfile)
        record = ProcessRecord(
            service=proc.service, project=project.name, pid=pid, window=proc.service,
            logfile=str(logfile), started=time.time(), endpoint=proc.endpoint, port=proc.port,
            host=proc.host, health=health_to_dict(proc.health), start_ticks=start_ticks(pid),
            persistent=project.persistent, pidfile=str(proc.pidfile) if proc.pidfile else None,
            stop_signal=int(proc.stop_signal), stop_timeout=proc.stop_timeout,
            needs=list(ctx.step.needs) if ctx.step else [],
        )
        ctx.state.record_process(record)
        ctx.log(f"{proc.service} started in tmux window {proc.service!r}, pid {pid}, log {logfile}")
        deadline = time.monotonic() + proc.timeout
        if proc.pidfile:
            daemon = _daemon_started(ctx, proc, record, deadline, logfile)
            ctx.log(f"{proc.service} runs as daemon pid {daemon} ({proc.pidfile})")
        if proc.health is None:
            return {"pid": pid}
        detail = ""
        while time.monotonic() < deadline:
            ctx.check_cancel()
            if not ctx.tmux.is_running(proc.service):
                raise ServiceFailed(f"{proc.service} exited during start; last lines of {logfile}:",
                                    tail(logfile, 20), logfile)
            ok, detail = proc.health.probe()
            if ok:
                ctx.log(f"{proc.service} healthy: {detail}")
                return {"pid": pid}
            time.sleep(0.2)
        raise ServiceFailed(
            f"{proc.service} did not become healthy within {proc.timeout:.0f} s "
            f"({proc.health.describe()}: {detail}); last lines of {logfile}:",
            tail(logfile, 20), logfile)
    return run


def _daemon_started(ctx: "Context", proc: "Process", record: ProcessRecord, deadline: float,
                    logfile: Path) -> int:
    """Wait for a forking daemon's pid file; record the daemon's start time with it."""
    from stackmagic.tmux import tail

    while time.monotonic() < deadline:
        ctx.check_cancel()
        try:
            pid = int(Path(proc.pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None and start_ticks(pid) is not None:
            record.daemon_ticks = start_ticks(pid)
            ctx.state.record_process(record)
            return pid
        if not ctx.tmux.is_running(proc.service):
            break
        time.sleep(0.05)
    raise ServiceFailed(f"{proc.service} wrote no live pid to {proc.pidfile}; last lines of {logfile}:",
                        tail(logfile, 20), logfile)


def _wait(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- credentials -----------------------------------------------------------------------------
def credentials(ctx: "Context") -> dict:
    from stackmagic import credentials as creds

    return creds.write(ctx)
