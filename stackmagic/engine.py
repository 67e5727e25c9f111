"""stack.sh as a Python engine: runs a plan, skips what is done, resumes after a failure, runs
independent steps side by side, times every step, and emits events that front ends render.

A step is skipped when its fingerprint matches the one recorded when it last succeeded. The
fingerprint covers the code that does the step, the settings it read (by hash), its extra inputs
(source revision, merges ...) and the fingerprints of the steps it depends on, so a changed
setting re-runs exactly the steps that read it and what depends on them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from stackmagic import events as ev
from stackmagic.catalog import enabled_projects
from stackmagic.catalog.base import PROJECT_PHASES
from stackmagic.context import Cancelled, CommandFailed, Context
from stackmagic.errors import StackError
from stackmagic.plan import PHASES, Plan, Step, build_plan, notes
from stackmagic.state import Lock, State, StepRecord
from stackmagic.steps import ServiceFailed, daemon_pid, log_path, stop_service
from stackmagic.tracking import answer, is_question

#: services stopped at the same time by unstack (each waits for its process to go)
_STOPPERS = 6


class StepError(StackError):
    """A step failed; what was done before it stays done."""

    def __init__(self, step: Step, cause: BaseException, tail: list[str], logfile: Path | None):
        self.step, self.cause, self.tail, self.logfile = step, cause, tail, logfile
        msg = f"step '{step.id}' failed: {cause}"
        if tail:
            msg += "\n" + "\n".join("    " + line for line in tail[-15:])
        if logfile:
            msg += f"\n(full log: {logfile}). Fix the cause and run stack again: it continues from here."
        super().__init__(msg)


class Interrupted(StackError):
    exit_code = 130


def _h(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StepResult:
    step: str
    phase: str
    project: str
    status: str              # "ran" | "skipped" | "failed" | "not run"
    seconds: float = 0.0
    reason: str = ""


@dataclass
class ServiceStatus:
    service: str
    project: str
    window: str | None
    pid: int | None
    running: bool
    healthy: bool | None
    detail: str
    endpoint: str | None
    logfile: str | None
    uptime: float | None
    rss_kib: int | None
    enabled: bool = True


@dataclass
class Summary:
    results: list[StepResult]
    services: list[ServiceStatus]
    seconds: float
    unsupported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ran(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "ran"]

    @property
    def skipped(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "skipped"]

    def by_phase(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.ran:
            out[r.phase] = out.get(r.phase, 0.0) + r.seconds
        return {p: out[p] for p in PHASES if p in out}

    def by_project(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.ran:
            out[r.project] = out.get(r.project, 0.0) + r.seconds
        return out


class Engine:
    """Brings a stack up and down. One engine per configuration."""

    def __init__(self, config, *, on_event: ev.EventSink = ev.ignore, parallel: int | None = None,
                 extra_projects: list | None = None):
        from stackmagic.python import Venv
        from stackmagic.tmux import Tmux

        from stackmagic.passwords import with_passwords

        s = config.settings
        self.stack_dir = s.data_dir / "stackmagic"
        self.config = config = with_passwords(config, self.stack_dir, create=False)
        self.emit = on_event
        self.parallel = parallel or s.int("STACK_PARALLEL", 4)
        self.state = State(self.stack_dir)
        self.tmux = Tmux(session=s.get("SCREEN_NAME") or "stack", socket_name=s.get("TMUX_SOCKET") or None)
        self.venv = Venv(s.path("VENV_DIR") if s.get("VENV_DIR") else s.data_dir / "venv")
        self.ctx = Context(config, state=self.state, tmux=self.tmux, venv=self.venv, emit=self._emit)
        self._extra = list(extra_projects or [])
        self._emit_lock = threading.Lock()

    def _emit(self, event: ev.Event) -> None:
        with self._emit_lock:
            self.emit(event)

    # -- plan ---------------------------------------------------------------------------------
    def projects(self):
        from stackmagic.plugins import load_plugins

        plugin_projects = load_plugins(self.ctx)
        projects, unsupported = enabled_projects(self.ctx, plugin_projects + self._extra)
        self.ctx.projects = projects
        return projects, unsupported

    def plan(self) -> Plan:
        projects, unsupported = self.projects()
        return build_plan(self.ctx, projects, unsupported)

    def _fingerprint(self, step: Step, reads: dict[str, str | None], inputs: dict, dep_keys: list[str]) -> str:
        return _h([step.id, step.recipe, sorted(reads.items()), inputs, dep_keys])

    def _current_reads(self, names) -> dict[str, str | None]:
        s = self.config.settings
        now = {n: answer(self.config, n) if is_question(n) else s.get(n) for n in names}
        return {n: (_h(v) if v is not None else None) for n, v in now.items()}

    def decide(self, step: Step, keys: dict[str, str], rerun: set[str]) -> tuple[bool, str]:
        """(run?, why) for ``step``, given the keys of its finished dependencies."""
        rec = self.state.steps.get(step.id)
        if rec is None:
            return True, "not done yet"
        if step.always:
            return True, "RECLONE is set" if step.phase == "clone" else "runs every time"
        key_deps = step.deps if step.key_deps is None else step.key_deps
        changed_deps = [d for d in key_deps if d in rerun]
        reads = self._current_reads(rec.reads)
        changed = sorted(n for n in rec.reads if reads[n] != rec.reads[n])
        inputs = self.ctx.for_step(step)
        key = self._fingerprint(step, reads, _h(step.inputs(inputs)), [keys[d] for d in key_deps])
        if key != rec.key:
            settings = [n for n in changed if not is_question(n)]
            if settings:
                return True, "setting " + ", ".join(settings) + " changed"
            if changed:
                return True, "the enabled services changed"
            if changed_deps:
                return True, f"'{changed_deps[0]}' re-ran"
            return True, "its inputs changed"
        if step.phase == "start":
            proc = self.state.processes.get(step.process.service)
            if proc is None or not self.tmux.is_running(step.process.service):
                return True, f"{step.process.service} is not running"
        return False, "already done"

    # -- stack ----------------------------------------------------------------------------------
    def stack(self, *, dry_run: bool = False) -> Summary:
        started = time.monotonic()
        from stackmagic.passwords import with_passwords

        with Lock(self.stack_dir, "stack", create=not dry_run):
            if not dry_run:
                self._end_leftovers()
            self.config = self.ctx.config = with_passwords(self.config, self.stack_dir, create=not dry_run)
            self.ctx._settings = self.config.settings
            self.ctx.shared["dry_run"] = dry_run         # plugins.load_plugins: no clone into DEST
            plan = self.plan()
            if dry_run:
                return self._dry_run(plan, started)
            self.emit(ev.PlanReady([s.id for s in plan], []))
            self.state.record_services({s.process.service: {"project": s.project,
                                                            "endpoint": s.process.endpoint}
                                        for s in plan.steps if s.process})
            for name in plan.unsupported:
                self._emit(ev.Warning_(f"{name}: enabled, but stackmagic cannot run it yet; skipped"))
            for note in notes(self.ctx, plan.projects):
                self._emit(ev.Message(note))
            self._stop_unplanned(plan)
            results = self._run(plan)
        return Summary(results, self.status(plan), time.monotonic() - started,
                       plan.unsupported, list(self.config.warnings))

    def _end_leftovers(self) -> None:
        """End the commands a killed stackmagic left running here; record ours from now on."""
        from stackmagic.children import adopt

        ended = adopt(self.stack_dir)
        if ended:
            self._emit(ev.Message("ended what a stackmagic that was killed left running: "
                                  + ", ".join(ended)))

    def _dry_run(self, plan: Plan, started: float) -> Summary:
        """What ``stack`` would do: the same decisions, made from the recorded fingerprints;
        a step after one that would run is assumed to run too."""
        keys: dict[str, str] = {}
        would: set[str] = set()
        results = []
        for step in plan:                     # plan order is dependency order
            key_deps = step.deps if step.key_deps is None else step.key_deps
            if any(d in would for d in key_deps):
                run, why = True, "a step it depends on would run"
            else:
                run, why = self.decide(step, keys, set())
            if run:
                would.add(step.id)
            else:
                keys[step.id] = self.state.steps[step.id].key
            results.append(StepResult(step.id, step.phase, step.project,
                                      "would run" if run else "skipped", 0.0, why))
        return Summary(results, [], time.monotonic() - started, plan.unsupported)

    def _run(self, plan: Plan) -> list[StepResult]:
        keys: dict[str, str] = {}
        rerun: set[str] = set()
        results: dict[str, StepResult] = {}
        pending = list(plan.steps)
        running: dict[Future, tuple[Step, float, str]] = {}
        failure: StepError | None = None
        cancel = self.ctx.cancel
        cancel.clear()
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="step")
        try:
            while pending or running:
                progressed = True
                while progressed and failure is None and not cancel.is_set():
                    progressed = False
                    for step in list(pending):
                        if not all(d in keys for d in step.deps):
                            continue
                        pending.remove(step)
                        progressed = True
                        run, why = self.decide(step, keys, rerun)
                        if not run:
                            keys[step.id] = self.state.steps[step.id].key
                            results[step.id] = StepResult(step.id, step.phase, step.project, "skipped", 0, why)
                            self._emit(ev.StepSkipped(step.id, step.phase, step.project, why))
                            continue
                        self._emit(ev.StepStarted(step.id, step.phase, step.project, why))
                        key_deps = step.deps if step.key_deps is None else step.key_deps
                        fut = pool.submit(self._execute, step, [keys[d] for d in key_deps])
                        running[fut] = (step, time.monotonic(), why)
                if not running:
                    break
                try:
                    done, _ = wait(list(running), timeout=0.25, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    cancel.set()
                    continue
                for fut in done:
                    step, t0, why = running.pop(fut)
                    seconds = time.monotonic() - t0
                    try:
                        keys[step.id] = fut.result()
                    except BaseException as err:  # noqa: BLE001 - reported, then re-raised below
                        if isinstance(err, Cancelled):
                            results[step.id] = StepResult(step.id, step.phase, step.project, "not run", seconds, "interrupted")
                            continue
                        tail, logfile = _tail_of(err, self.ctx.for_step(step).logfile)
                        self._emit(ev.StepFailed(step.id, step.phase, step.project, seconds, str(err), tail,
                                                 str(logfile) if logfile else None))
                        results[step.id] = StepResult(step.id, step.phase, step.project, "failed", seconds, str(err))
                        if failure is None:
                            failure = StepError(step, err, tail, logfile)
                        continue
                    rerun.add(step.id)
                    results[step.id] = StepResult(step.id, step.phase, step.project, "ran", seconds, why)
                    self._emit(ev.StepFinished(step.id, step.phase, step.project, seconds))
        except KeyboardInterrupt:
            cancel.set()
            for fut in list(running):
                try:
                    fut.result()
                except BaseException:  # noqa: BLE001
                    pass
        finally:
            pool.shutdown(wait=True)
        if cancel.is_set():
            done = sum(1 for r in results.values() if r.status in ("ran", "skipped"))
            raise Interrupted(f"interrupted; {done} of {len(plan)} steps are done and stay done. "
                              "Run stack again to continue from there.")
        if failure is not None:
            raise failure
        return [results[s.id] for s in plan if s.id in results]

    def _execute(self, step: Step, dep_keys: list[str]) -> str:
        ctx = self.ctx.for_step(step)
        if ctx.logfile is not None:
            ctx.logfile.parent.mkdir(parents=True, exist_ok=True)
            ctx.logfile.write_text(f"== {step.id} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        t0 = time.monotonic()
        outputs = step.run(ctx) or {}
        reads = {n: (_h(v) if v is not None else None) for n, v in ctx.reads.items()
                 if n not in step.unkeyed}
        inputs = _h(step.inputs(self.ctx.for_step(step)))
        key = self._fingerprint(step, reads, inputs, dep_keys)
        self.state.record_step(step.id, StepRecord(
            key=key, reads=reads, inputs={"all": inputs}, seconds=time.monotonic() - t0,
            finished=time.time(), outputs=_jsonable(outputs)))
        return key

    # -- status / logs ------------------------------------------------------------------------
    def status(self, plan: Plan | None = None, only: Iterable[str] | None = None) -> list[ServiceStatus]:
        """Every recorded process, probed now, plus the planned services that are not running
        (``only``: just these services, the others neither probed nor listed).

        Reads the state and asks tmux once; no plan is built (plugins are not loaded), so it
        stays fast with many services.
        """
        from concurrent.futures import ThreadPoolExecutor

        from stackmagic.health import from_dict
        from stackmagic.process_info import rss_kib

        planned = self.state.services
        if plan is not None:
            planned = {s.process.service: {"project": s.project, "endpoint": s.process.endpoint}
                       for s in plan.steps if s.process}
        live = self.tmux.running()
        records = sorted(self.state.processes.values(), key=lambda r: r.started)
        looked_at = records
        if only is not None:
            only = set(only)
            planned = {k: v for k, v in planned.items() if k in only}
            records = [r for r in records if r.service in only]
            wanted = {r.service for r in records} | {n for r in records for n in r.needs}
            looked_at = [r for r in looked_at if r.service in wanted]
        # processes whose window is gone (the tmux server was killed) but that still run (only
        # those of the services shown and of what they need: each is a pid file to read)
        windowless = {rec.service: pid for rec in looked_at if rec.service not in live
                      for pid in [_own_pid(rec)] if pid is not None}
        up = set(live) | set(windowless)

        def probe(rec) -> tuple[bool | None, str]:
            if rec.service not in up:
                return None, "not running"
            down = [s for s in rec.needs if s in self.state.processes and s not in up]
            if down:        # it may still answer its own probe, but not do its work
                return False, f"needs {', '.join(down)}, which is not running (stack restores it)"
            check = from_dict(rec.health)
            healthy, detail = check.probe() if check else (True, "running (no probe)")
            if rec.service in windowless:
                detail += "; its tmux window is gone (the tmux server stopped): stack gives it one back"
            return healthy, detail

        with ThreadPoolExecutor(max_workers=8) as pool:
            probes = list(pool.map(probe, records))
        out: list[ServiceStatus] = []
        now = time.time()
        for rec, (healthy, detail) in zip(records, probes):
            pid = live.get(rec.service) or windowless.get(rec.service)
            if pid is not None and rec.pidfile:
                pid = daemon_pid(rec) or pid        # a forking daemon: its own pid, not the window's
            out.append(ServiceStatus(rec.service, rec.project, rec.window, pid, pid is not None,
                                     healthy, detail, rec.endpoint, rec.logfile,
                                     now - rec.started if pid else None,
                                     rss_kib(pid) if pid else None,
                                     enabled=rec.service in planned))
        for service, info in planned.items():
            if service not in self.state.processes:
                out.append(ServiceStatus(service, info.get("project", ""), None, None, False, None,
                                         "not started", info.get("endpoint"),
                                         str(log_path(self.ctx, service)), None, None))
        return out

    def logs(self, service: str, n: int = 20, grep: str | None = None) -> list[str]:
        from stackmagic.tmux import tail

        path = self.logfile(service)
        return tail(path, n, grep)

    def follow(self, service: str, seconds: float, grep: str | None = None):
        """Yield the lines appended to ``service``'s log for ``seconds`` (matching ``grep``)."""
        import re

        from stackmagic.tmux import follow

        pattern = re.compile(grep) if grep else None
        for line in follow(self.logfile(service), seconds):
            if pattern is None or pattern.search(line):
                yield line

    def logfile(self, service: str) -> Path:
        rec = self.state.processes.get(service)
        path = Path(rec.logfile) if rec else log_path(self.ctx, service)
        if not path.exists():
            known = sorted(self.state.processes)
            raise StackError(f"no log for service '{service}'"
                             + (f"; services with logs: {', '.join(known)}" if known else
                                "; nothing has been started yet (run stack)"))
        return path

    def _stop_unplanned(self, plan: Plan) -> None:
        """Stop what an earlier stack started for a service this plan no longer runs (disabled
        since, or set aside by another Neutron layout), so the two never run side by side."""
        planned = {s.process.service for s in plan.steps if s.process}
        for service in [s for s in self.state.processes if s not in planned]:
            if stop_service(self.ctx, service):
                self._emit(ev.Message(f"stopped {service}: this stack no longer runs it"))
            self.state.forget_steps(lambda sid, name=service: sid == f"start {name}")
        # a project's configure ... data steps that this plan does not have are forgotten too:
        # when the project comes back (the other Neutron layout, a service enabled again) they
        # run against the machine as it is then, not as it was when they last ran
        steps = {s.id for s in plan.steps}
        self.state.forget_steps(lambda sid: sid not in steps
                                and sid.partition(" ")[0] in PROJECT_PHASES)

    # -- unstack / clean ----------------------------------------------------------------------
    def unstack(self, *, all: bool = False) -> list[str]:
        """Stop every process that was started (also of services no longer enabled), as
        devstack's unstack.sh: the database and message servers keep running unless ``all``."""
        with Lock(self.stack_dir, "unstack"):
            return self._unstack(self._projects_for_cleanup(), all=all)

    def _unstack(self, projects: list, *, all: bool) -> list[str]:
        """Stop the processes; ``projects`` (:meth:`_projects_for_cleanup`, computed once by the
        caller: it loads plugins) get their before_unstack and unstack hooks."""
        stopped = []
        # the projects that declare themselves persistent (database and message servers) keep
        # running, as devstack's unstack.sh leaves them; --all stops them too
        keep = set() if all else {s for s, rec in self.state.processes.items() if rec.persistent}
        for p in projects:
            if p.overrides("before_unstack"):
                try:
                    p.before_unstack(self.ctx)
                except (StackError, OSError, subprocess.SubprocessError) as exc:
                    # stopping the services matters more: say it and go on
                    self._emit(ev.Message(f"{p.name}: {exc}"))
        stopped += self._stop_services(keep)
        for window in self.tmux.windows():
            if window not in keep and self.tmux.stop(window):
                stopped.append(window)
        if self.tmux.exists() and not self.tmux.windows():
            self.tmux.kill_session()
        kept = {f"start {k}" for k in keep}
        self.state.forget_steps(lambda sid: sid.startswith("start ") and sid not in kept)
        for p in projects:
            if p.overrides("unstack"):
                p.unstack(self.ctx)
        return stopped

    def _stop_services(self, keep: set[str]) -> list[str]:
        """Stop every recorded process but ``keep``: several at a time, each once the services
        that needed it (started after it was up: its record's ``needs`` in theirs) are stopped;
        those with no such order between them go in reverse order of their start. The names of
        those that were running."""
        order = list(reversed(list(self.state.processes)))      # newest first
        needed_by = {s: {o for o in order if s in self.state.processes[o].needs} for s in order}
        pending, running, stopped = list(order), {}, []
        with ThreadPoolExecutor(max_workers=_STOPPERS, thread_name_prefix="unstack") as pool:
            while pending or running:
                busy = {*pending, *running}
                ready = [s for s in pending if not needed_by[s] & busy]
                if not ready and not running:
                    ready = pending[:1]         # records that need each other: newest first
                for service in ready:
                    pending.remove(service)
                    if service in keep and self.tmux.is_running(service):
                        self._emit(ev.Message(f"kept {service} running (unstack --all stops it too)"))
                        continue
                    running[service] = pool.submit(stop_service, self.ctx, service)
                if not running:
                    continue
                done, _ = wait(list(running.values()), return_when=FIRST_COMPLETED)
                for service in [s for s, f in running.items() if f in done]:
                    if running.pop(service).result():
                        stopped.append(service)
                        self._emit(ev.Message(f"stopped {service}"))
                    else:
                        self.state.forget_process(service)
        return stopped

    def _projects_for_cleanup(self):
        """The enabled projects and the catalog's projects this stack set up before (its state
        names them): a project disabled since still has its mounts, namespaces or files to
        undo, as devstack's unstack.sh cleans up after services whatever the localrc says now."""
        from stackmagic.catalog import builtin_projects, order_projects

        try:
            projects, _ = self.projects()
        except StackError:
            projects = []
        had = ({rec.project for rec in self.state.processes.values()}
               | {rec.get("project") for rec in self.state.services.values()}
               | {sid.partition(" ")[2] for sid in self.state.steps})
        known = {p.name for p in projects}
        former = [k() for k in builtin_projects() if k.name in had and k.name not in known]
        return order_projects(projects + former) if former else projects

    def clean(self) -> list[str]:
        """unstack, then remove databases, data, generated config and logs; keep source trees."""
        with Lock(self.stack_dir, "clean"):
            self._end_leftovers()
            projects = self._projects_for_cleanup()
            self._unstack(projects, all=True)
            removed = []
            for p in reversed(projects):
                p.cleanup(self.ctx.for_step(Step(f"clean {p.name}", "clean", p.name, lambda c: None)))
                removed.append(p.name)
            s = self.config.settings
            for path in (s.logdir, s.path("STACK_CONF_DIR")):
                if path.exists() and path != s.dest:
                    shutil.rmtree(path, ignore_errors=True)
            keep = {"clone ", "install", "packages"}
            self.state.forget_steps(lambda sid: not any(sid.startswith(k) for k in keep))
            self._emit(ev.Message("cleaned: databases, data, config and logs removed; "
                                  "source trees and the virtual environment kept"))
            return removed


def _own_pid(rec) -> int | None:
    """The recorded process (or its daemon), if it still runs and is the one we started."""
    from stackmagic.process_info import alive, start_ticks

    if rec.start_ticks is not None and start_ticks(rec.pid) == rec.start_ticks and alive(rec.pid):
        return rec.pid
    return daemon_pid(rec)


def _tail_of(err: BaseException, logfile: Path | None) -> tuple[list[str], Path | None]:
    from stackmagic.tmux import tail

    if isinstance(err, ServiceFailed):
        return err.tail, err.logfile
    if isinstance(err, CommandFailed):
        return err.tail, logfile
    if logfile and logfile.exists():
        return tail(logfile, 15), logfile
    return [], logfile


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
