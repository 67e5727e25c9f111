"""The planner and the scheduler over small made-up catalogs: no service, no clone, no install.

Each made-up project records what its steps did in the stack's data dir; the engine runs them
for real (threads, state, fingerprints), so these tests see completion order, parallelism,
resumption and re-runs as a user would.
"""

from __future__ import annotations

import threading
import textwrap
from pathlib import Path

import pytest

from tests.conftest import wait_until

from stackmagic import codehash
from stackmagic import events as ev
from stackmagic.catalog import Need, Process, Project
from stackmagic.config import load_config
from stackmagic.engine import Engine, StepError
from stackmagic.errors import ConfigError


def localrc(tmp_path: Path, services: str, *extra: str) -> Path:
    path = tmp_path / "localrc"
    path.write_text("\n".join([
        f"DEST={tmp_path}/dest", f"DATA_DIR={tmp_path}/data", f"LOGDIR={tmp_path}/logs",
        f"VENV_DIR={tmp_path.parent}/shared-venv", "USE_CONSTRAINTS=False",
        f"TMUX_SOCKET=stackmagic-plan-{tmp_path.name}",
        "disable_all_services", f"enable_service {services}", *extra]) + "\n")
    return path


def engine(tmp_path: Path, projects: list[Project], services: str, *extra: str, events=None) -> Engine:
    sink = events.append if events is not None else ev.ignore
    config = load_config(localrc(tmp_path, services, *extra),
                         extra_services=[s for p in projects for s in p.services])
    return Engine(config, extra_projects=projects, on_event=sink)


class Recorder(Project):
    """A made-up project: configure and init append a line to ``$DATA_DIR/<name>.log``."""

    def note(self, ctx, what: str) -> None:
        path = ctx.settings.data_dir / f"{self.name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(what + "\n")

    def configure(self, ctx):
        self.note(ctx, "configure " + (ctx.settings.get(f"{self.name.upper()}_SETTING") or ""))

    def init(self, ctx):
        self.note(ctx, "init")


def make(name: str, *, provides=None, requires=(), **attrs) -> Project:
    cls = type(name.title(), (Recorder,), {"name": name, "services": {f"{name}-svc": name},
                                           "provides": provides or {}, "requires": tuple(requires),
                                           "__module__": __name__, **attrs})
    return cls()


def finished_before_started(events) -> dict[str, int]:
    order = {}
    for i, e in enumerate(events):
        if isinstance(e, ev.StepFinished):
            order[e.step] = i
        if isinstance(e, ev.StepStarted):
            order[e.step + " (started)"] = i
    return order


def diamond(extra_init=None) -> list[Project]:
    base = make("base", provides={"x": "init"})
    left = make("left", provides={"l": "init"}, requires=[Need("x", before="init")])
    right = make("right", provides={"r": "init"}, requires=[Need("x", before="init")])
    top = make("top", requires=[Need("l", before="init"), Need("r", before="init")])
    if extra_init:
        for p in (left, right):
            type(p).init = extra_init
    return [top, right, left, base]          # given in any order: needs decide


def test_diamond_runs_in_dependency_order_with_the_sides_side_by_side(tmp_path):
    both = threading.Barrier(2, timeout=20)

    def init(self, ctx):
        both.wait()                          # left and right must be running at the same time
        self.note(ctx, "init")

    events: list = []
    eng = engine(tmp_path, diamond(init), "top-svc,left-svc,right-svc,base-svc", events=events)
    plan = eng.plan()
    assert [p.name for p in plan.projects][0] == "base" and plan.projects[-1].name == "top"
    summary = eng.stack()
    order = finished_before_started(events)
    for step in plan:
        for dep in step.deps:
            if step.id + " (started)" in order and dep in order:
                assert order[dep] < order[step.id + " (started)"], (dep, step.id)
    assert order["init base"] < order["init left (started)"]
    assert order["init left"] < order["init top (started)"] and order["init right"] < order["init top (started)"]
    assert {r.step for r in summary.ran} >= {"init base", "init left", "init right", "init top"}


def test_a_failing_branch_leaves_the_healthy_one_done_and_resumes(tmp_path):
    def bad_init(self, ctx):
        if ctx.settings.bool("LEFT_FAILS", False):
            # fail once the other branch's init has run: the engine starts nothing new after a
            # failure, so without this the test would race right's init (a flaky 1 in 4)
            right_log = ctx.settings.data_dir / "right.log"
            wait_until(lambda: right_log.exists() and "init" in right_log.read_text().split(), 20)
            raise RuntimeError("left refuses")
        self.note(ctx, "init")

    projects = diamond()
    left = next(p for p in projects if p.name == "left")
    type(left).init = bad_init
    services = "top-svc,left-svc,right-svc,base-svc"
    with pytest.raises(StepError, match="init left"):
        engine(tmp_path, projects, services, "LEFT_FAILS=True").stack()
    data = tmp_path / "data"
    assert (data / "right.log").read_text().splitlines()[-1] == "init"      # the healthy branch ran
    assert not (data / "top.log").exists() or "init" not in (data / "top.log").read_text()
    again = engine(tmp_path, projects, services).stack()
    assert {r.step for r in again.ran} == {"init left", "init top"}
    assert "init right" in {r.step for r in again.skipped}


def test_a_changed_setting_reruns_its_step_and_what_uses_its_result_only(tmp_path):
    projects = diamond()
    services = "top-svc,left-svc,right-svc,base-svc"
    engine(tmp_path, projects, services).stack()
    again = engine(tmp_path, projects, services, "BASE_SETTING=changed").stack()
    ran = {r.step for r in again.ran}
    # base's configure read the setting; its init uses configure's result; left and right's init
    # use base's (their database, say); top's init uses theirs
    assert ran == {"configure base", "init base", "init left", "init right", "init top"}
    # configure of the others reads nothing of base: ordering alone does not re-run it
    assert {"configure left", "configure right", "configure top"} <= {r.step for r in again.skipped}


def test_needs_pull_providers_in_and_missing_ones_are_named(tmp_path):
    db = make("db", provides={"store": "init"}, when_needed=True)
    app = make("app", requires=[Need("store", before="init")])
    plan = engine(tmp_path, [app, db], "app-svc").plan()
    assert [p.name for p in plan.projects] == ["db", "app"]
    assert "init db" in plan.by_id["init app"].deps
    lonely = make("lonely", requires=[Need("bus", before="init")])
    with pytest.raises(ConfigError, match="lonely needs a bus .*none is enabled"):
        engine(tmp_path, [lonely], "lonely-svc").plan()
    optional = make("optional", requires=[Need("bus", before="init", optional=True)])
    assert [p.name for p in engine(tmp_path, [optional], "optional-svc").plan().projects] == ["optional"]


def test_a_circle_of_needs_is_refused_with_the_names(tmp_path):
    a = make("aaa", provides={"a": "init"}, requires=[Need("b", before="init")])
    b = make("bbb", provides={"b": "init"}, requires=[Need("a", before="init")])
    with pytest.raises(ConfigError, match="circle: aaa, bbb"):
        engine(tmp_path, [a, b], "aaa-svc,bbb-svc").plan()


class Daemons(Project):
    name = "daemons"
    services = {"db-server": "x", "switch": "x", "northd": "x", "controller": "x"}
    provides = {"vswitch": "start"}

    def processes(self, ctx):
        cwd = ctx.settings.data_dir
        yield Process("controller", ["true"], cwd=cwd, after=("northd", "switch"))
        yield Process("northd", ["true"], cwd=cwd, after=("switch",))
        yield Process("switch", ["true"], cwd=cwd, after=("db-server",))
        yield Process("db-server", ["true"], cwd=cwd)


class Compute(Project):
    name = "compute"
    services = {"conductor": "x", "compute": "x"}
    requires = (Need("vswitch", before="start", services=("compute",)),)
    own_order = (("accounts", "start"),)

    def accounts(self, ctx):
        pass

    def processes(self, ctx):
        cwd = ctx.settings.data_dir
        yield Process("compute", ["true"], cwd=cwd, after=("conductor",))
        yield Process("conductor", ["true"], cwd=cwd)


def test_services_order_between_themselves_and_across_projects(tmp_path):
    plan = engine(tmp_path, [Compute(), Daemons()],
                  "db-server,switch,northd,controller,conductor,compute").plan()
    deps = {s.id: set(s.deps) for s in plan}
    assert "start db-server" in deps["start switch"]
    assert {"start switch"} <= deps["start northd"]
    assert {"start northd", "start switch"} <= deps["start controller"]
    assert "start conductor" in deps["start compute"]
    assert "start conductor" not in deps.get("start db-server", set())
    # a need narrowed to one service: only compute waits for the switch (all of vswitch's starts)
    assert {"start db-server", "start switch", "start northd", "start controller"} <= deps["start compute"]
    assert not deps["start conductor"] & {"start switch", "start controller"}
    # its own order: accounts before its start (Heat, nova-compute)
    assert "accounts compute" in deps["start compute"] and "accounts compute" in deps["start conductor"]
    # plan order is a dependency order
    seen: set[str] = set()
    for step in plan:
        assert set(step.deps) <= seen, step.id
        seen.add(step.id)


def test_a_change_to_a_shared_helper_reruns_the_steps_that_use_it(tmp_path, catalog_dir):
    (catalog_dir / "fakehelper.py").write_text("def greeting():\n    return 'hello'\n")
    for name, uses in (("fakeuser", True), ("fakeother", False)):
        body = textwrap.dedent(f"""
            from stackmagic.catalog.base import Project
            {"from stackmagic.catalog.fakehelper import greeting" if uses else ""}

            class Fake(Project):
                name = "{name}"
                services = {{"{name}-svc": "made up"}}

                def init(self, ctx):
                    (ctx.settings.data_dir / "{name}").mkdir(parents=True, exist_ok=True)
            """)
        (catalog_dir / f"{name}.py").write_text(body)
    services = "fakeuser-svc,fakeother-svc"
    first = engine(tmp_path, [], services).stack()
    assert {"init fakeuser", "init fakeother"} <= {r.step for r in first.ran}
    (catalog_dir / "fakehelper.py").write_text("def greeting():\n    return 'hello again'\n")
    codehash.clear()
    again = engine(tmp_path, [], services).stack()
    assert [r.step for r in again.ran] == ["init fakeuser"]
    assert [r.reason for r in again.ran] == ["its inputs changed"]
