"""Turn settings + catalog into an ordered list of steps with their dependencies.

Phases follow stack.sh: packages, clone, install, configure, init, start, accounts, data,
post-config, credentials, extra, test-config. Dependencies are explicit, so the engine can run
independent steps side by side (clones, configure of unrelated projects, account creation) and
re-run exactly what a change touches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from stackmagic import memory
from stackmagic.catalog.base import PROJECT_PHASES
from stackmagic.errors import ConfigError

if TYPE_CHECKING:
    from stackmagic.catalog.base import Process, Project
    from stackmagic.context import Context

PHASES = (
    "packages", "clone", "pre-install", "install", "configure", "init", "start",
    "accounts", "data", "post-config", "credentials", "extra", "test-config",
)


@dataclass
class Step:
    """One unit of work. ``run`` returns optional outputs kept in the state."""

    id: str
    phase: str
    project: str
    run: Callable[["Context"], dict[str, Any] | None]
    deps: list[str] = field(default_factory=list)      # what must be done first
    key_deps: list[str] | None = None                  # whose results it uses (None: all deps)
    inputs: Callable[["Context"], dict[str, Any]] = lambda ctx: {}
    recipe: str = ""                        # hash of the code that does the step
    always: bool = False                    # run even when nothing changed (RECLONE)
    #: settings it reads that decide how it runs, not what it makes: not part of its key, so
    #: setting them re-runs nothing built on it (RECLONE for a clone)
    unkeyed: tuple[str, ...] = ()
    process: "Process | None" = None        # for start steps
    owner: "Project | None" = None
    needs: list[str] = field(default_factory=list)     # start steps: services up before it



@dataclass
class Plan:
    steps: list[Step]
    projects: list["Project"]
    unsupported: list[str] = field(default_factory=list)   # enabled names nothing here runs

    def __post_init__(self) -> None:
        self.by_id = {s.id: s for s in self.steps}
        for step in self.steps:
            if step.key_deps is not None and not set(step.key_deps) <= set(step.deps):
                raise ValueError(f"step {step.id!r}: key_deps must be among its deps")
            missing = [d for d in step.deps if d not in self.by_id]
            if missing:
                raise ValueError(f"step {step.id!r} depends on unknown steps {missing}")
        self._check_acyclic()

    def _check_acyclic(self) -> None:
        """Refuse a plan whose steps wait for each other in a circle (it would never finish)."""
        _, stuck = _dependency_order(self.steps)
        if stuck:
            raise ConfigError("these steps wait for each other in a circle: "
                              + ", ".join(s.id for s in stuck)
                              + ". Check the projects' requires / own_order / after.")

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def dependents(self, step_id: str) -> set[str]:
        """Every step that (transitively) depends on ``step_id``."""
        out: set[str] = set()
        frontier = {step_id}
        while frontier:
            nxt = {s.id for s in self.steps if frontier & set(s.deps)} - out
            out |= nxt
            frontier = nxt
        return out


def build_plan(ctx: "Context", projects: list["Project"], unsupported: list[str] | None = None) -> Plan:
    """The steps for ``projects`` (the enabled ones, providers first: see ``enabled_projects``).

    Nothing here names a project: edges come from what projects declare (``requires`` /
    ``provides``, ``own_order``, each process's ``after``), so a new catalog module needs no edit
    here. Within a project: configure, then init, then start and accounts side by side, then
    data. Ordering-only edges (``deps``) are told apart from the edges whose results a step uses
    (``key_deps``): only the latter re-run a step when the other re-ran.
    """
    from stackmagic import steps as S

    plan: list[Step] = []
    add = plan.append

    packages = sorted({pkg for p in projects for pkg in p.packages(ctx)})
    if packages:
        add(Step("packages", "packages", "stack", S.packages(packages), recipe=S.recipe(S),
                 inputs=lambda ctx: {"packages": packages}))
    base = ["packages"] if packages else []

    clones = []
    for p in projects:
        if p.repo:
            sid = f"clone {p.name}"
            # after the packages (git), but a new package for another project is no reason to
            # fetch this one again (and re-run everything built on it)
            add(Step(sid, "clone", p.name, S.clone(p), deps=list(base), key_deps=[],
                     inputs=S.clone_inputs(p), recipe=S.recipe(S), always=ctx.settings.reclone, owner=p,
                     unkeyed=("RECLONE",)))
            clones.append(sid)
    pre = []
    for p in projects:
        if p.overrides("pre_install"):
            sid = f"pre-install {p.name}"
            add(Step(sid, "pre-install", p.name, p.pre_install, deps=base + clones,
                     recipe=S.recipe(p), owner=p))
            pre.append(sid)
    add(Step("install", "install", "stack", S.install(projects), deps=base + clones + pre,
             inputs=S.install_inputs(projects), recipe=S.recipe(S)))

    graph = _ProjectSteps(ctx, projects)
    for p in projects:
        graph.add_project(p, add)
    graph.link(plan)
    ordered, stuck = _dependency_order(plan)
    plan[:] = ordered + stuck             # a circle is reported by Plan
    _services_needed(plan)

    everything = [s.id for s in plan]
    if S.orphan_merges(ctx, projects):
        add(Step("post-config", "post-config", "stack", S.post_config(projects), deps=everything,
                 inputs=S.orphan_merge_inputs(projects), recipe=S.recipe(S)))
    identity = [sid for p in projects if "identity" in p.provides for sid in graph.ids(p, "accounts")]
    if identity:
        accounts = [sid for p in projects for sid in graph.ids(p, "accounts")]
        add(Step("credentials", "credentials", "stack", S.credentials, deps=accounts,
                 key_deps=[], recipe=S.recipe(S)))
    everything = [s.id for s in plan]
    # devstack's extra, post-extra and test-config phases: the projects' hooks, then the
    # local.conf blocks of those phases merged into their files (the user wins)
    for phase, method, merge_phases in (("extra", "extra", ("extra", "post-extra")),
                                        ("test-config", "test_config", ("test-config",))):
        inputs = S.phase_merge_inputs(merge_phases)
        for p in projects:
            if p.overrides(method):
                add(Step(f"{phase} {p.name}", phase, p.name, getattr(p, method), deps=everything,
                         inputs=inputs, recipe=S.recipe(p), owner=p))
        if any(m.phase in merge_phases for m in ctx.config.merges):
            add(Step(f"{phase} merges", phase, "stack", S.phase_merges(merge_phases),
                     deps=[s.id for s in plan], inputs=inputs, recipe=S.recipe(S)))
        everything = [s.id for s in plan]
    return Plan(plan, projects, unsupported or [])


def notes(ctx: "Context", projects: list["Project"]) -> list[str]:
    """Which plugins the catalog's recipes stand in for, what the projects decided for this
    machine and why (``Project.plan_notes``), then the memory the services that will run need
    against what the machine has (``memory.note``)."""
    from stackmagic import steps as S
    from stackmagic.catalog import plugin_recipes

    recipes = plugin_recipes()
    stand_ins = [f"plugin {plugin.name}: stackmagic runs its own recipe "
                 f"({recipes[plugin.name].__module__.replace('.', '/')}.py) in place of the "
                 f"devstack plugin in {plugin.url}; the sources come from "
                 f"{S.clone_url(ctx, recipes[plugin.name]())}"
                 for plugin in ctx.config.plugins if plugin.name in recipes]
    # what will run: the projects' enabled services, and those of the helpers their needs bring
    # in that have a figure of their own (Redis; libvirtd's is counted as n-cpu's); a group
    # name, a retired name or a name nothing here runs takes no memory
    figures = memory.measured()
    running = [s for p in projects for s in (p.enabled_services(ctx) or (
        [s for s in p.services if s in figures] if p.when_needed else []))]
    return [*stand_ins, *(note for p in projects for note in p.plan_notes(ctx)),
            *filter(None, [memory.note(running, figures)])]


def _and_installed(inputs, installed):
    """A start step's inputs: its command line's, and what it runs of the venv."""
    return lambda ctx: {**inputs(ctx), "installed": installed(ctx)}


class _ProjectSteps:
    """The per-project steps (configure, init, start, accounts, data) and the edges between them."""

    def __init__(self, ctx: "Context", projects: list["Project"]):
        self.ctx = ctx
        self.projects = projects
        self.steps: dict[str, dict[str, list[Step]]] = {}
        self.providers = {cap: p for p in projects for cap in p.provides}
        self.by_name = {p.name: p for p in projects}
        #: projects installed into the venv that run nothing themselves: every process may use them
        self.libraries = [p for p in projects if not p.services]

    def ids(self, p: "Project", phase: str) -> list[str]:
        return [s.id for s in self.steps[p.name][phase]]

    def ready(self, p: "Project") -> str | None:
        """Its last step before start (where its config and data are made), if any."""
        made = self.ids(p, "init") or self.ids(p, "configure")
        return made[-1] if made else None

    def provider_steps(self, p: "Project", phase: str) -> list[str]:
        """The steps after which ``p`` offers what it provides at ``phase``: that phase's
        steps, or those of the last earlier phase it has, or the install."""
        for earlier in reversed(PROJECT_PHASES[:PROJECT_PHASES.index(phase) + 1]):
            if self.ids(p, earlier):
                return self.ids(p, earlier)
        return ["install"]

    def add_project(self, p: "Project", add) -> None:
        from stackmagic import steps as S

        ctx = self.ctx
        own: dict[str, list[Step]] = {phase: [] for phase in PROJECT_PHASES}
        self.steps[p.name] = own
        source = [f"clone {p.name}"] if p.repo else []     # its code, not everything installed
        recipe = S.recipe(p)
        if p.overrides("configure") or p.config_files(ctx):
            own["configure"].append(Step(f"configure {p.name}", "configure", p.name, S.configure(p),
                                         deps=["install", *source], key_deps=list(source),
                                         inputs=S.merge_inputs(p), recipe=recipe, owner=p))
        if p.overrides("init"):
            before = self.ready(p)
            own["init"].append(Step(f"init {p.name}", "init", p.name, p.init,
                                    deps=[before or "install", *source],
                                    key_deps=[k for k in (before, *source) if k],
                                    recipe=recipe, owner=p))
        ready = self.ready(p)
        for proc in p.processes(ctx):
            if proc.needs_root and os.geteuid() != 0:
                raise ConfigError(f"{proc.service} ({p.name}) runs only as root; run stack as root, "
                                  f"or disable_service {proc.service}")
            # restart when its config, its data setup or what it runs of the venv changed (not
            # for another project's install: see steps.installed_inputs)
            installed = S.installed_inputs(p, self.libraries)
            own["start"].append(Step(f"start {proc.service}", "start", p.name, S.start(p, proc),
                                     deps=[k for k in (ready, "install") if k], key_deps=[ready] if ready else [],
                                     inputs=_and_installed(S.start_inputs(proc), installed),
                                     recipe=recipe, process=proc, owner=p))
        if p.overrides("accounts"):
            # made in Keystone, not from its own config: they wait for the identity provider
            # (see link), not for this project's init
            own["accounts"].append(Step(f"accounts {p.name}", "accounts", p.name, p.accounts,
                                        deps=["install"], key_deps=[],
                                        recipe=recipe, owner=p))
        if p.overrides("data"):
            deps = [ready or "install"] + [s.id for s in own["start"] + own["accounts"]]
            own["data"].append(Step(f"data {p.name}", "data", p.name, p.data, deps=deps,
                                    key_deps=[ready] if ready else [], recipe=recipe, owner=p))
        for phase in own.values():
            for step in phase:
                add(step)

    def link(self, plan: list[Step]) -> None:
        """The edges between projects and between services, and the declared own order."""
        starts = {s.process.service: s.id for s in plan if s.process}
        for p in self.projects:
            own = self.steps[p.name]
            for first, then in p.own_order:
                for step in own[then]:
                    _extend(step, self.ids(p, first))
            for need in p.requires:
                provider = self.providers.get(need.capability)
                if provider is None or provider is p:
                    continue
                targets = self._targets(p, need)
                phase = provider.provides[need.capability]
                key = self.ready(provider)
                for step in targets:
                    _extend(step, self.provider_steps(provider, phase))
                    # made anew (its database re-created): redo what was made in it
                    if key and step.phase != "start":
                        _extend(step, [key], key=True)
            for step in own["start"]:
                _extend(step, [starts[a] for a in step.process.after if a in starts])
            for name in p.restarts_with:
                other = self.by_name.get(name)
                made = self.ready(other) if other is not None else None
                for step in own["start"] if made else []:
                    _extend(step, [made], key=True)
            identity = self.providers.get("identity")
            if identity is not None:
                # accounts are Keystone's users, projects and endpoints: made through it, after
                # its own (and again when its database was made anew)
                for step in own["accounts"]:
                    _extend(step, self.provider_steps(identity, identity.provides["identity"]))
                    if self.ready(identity):
                        _extend(step, [self.ready(identity)], key=True)

    def _targets(self, p: "Project", need) -> list[Step]:
        """The steps of ``p`` that wait for ``need``: those of its phase, or the next it has."""
        own = self.steps[p.name]
        for phase in PROJECT_PHASES[PROJECT_PHASES.index(need.before):]:
            steps = own[phase]
            if phase == "start" and need.services:
                steps = [s for s in steps if s.process.service in need.services]
            if steps:
                return steps
        return []


def _services_needed(steps: list[Step]) -> None:
    """Give each start step the services that start before it, directly or through its other
    steps (the database server before Keystone's init before Keystone): what it needs running."""
    by_id = {s.id: s for s in steps}
    for step in steps:
        if step.process is None:
            continue
        seen: set[str] = set()
        todo = list(step.deps)
        while todo:
            sid = todo.pop()
            if sid in seen or sid not in by_id:
                continue
            seen.add(sid)
            todo += by_id[sid].deps
        step.needs = sorted(by_id[s].process.service for s in seen if by_id[s].process)


def _dependency_order(steps: list[Step]) -> tuple[list[Step], list[Step]]:
    """``steps`` reordered so each comes after what it depends on (stable otherwise), and the
    steps left over because they wait for each other in a circle."""
    out: list[Step] = []
    done: set[str] = set()
    left = list(steps)
    while left:
        step = next((s for s in left if all(d in done for d in s.deps)), None)
        if step is None:
            return out, left
        out.append(step)
        done.add(step.id)
        left.remove(step)
    return out, []


def _extend(step: Step, ids, key: bool = False) -> None:
    for sid in ids:
        if sid != step.id and sid not in step.deps:
            step.deps.append(sid)
        if key and step.key_deps is not None and sid not in step.key_deps:
            step.key_deps.append(sid)


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))
