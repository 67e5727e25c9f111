"""Turn settings + catalog into an ordered list of steps with their dependencies.

Phases follow stack.sh: packages, clone, install, configure, init, start, accounts, data,
post-config, credentials, extra, test-config. Dependencies are explicit, so the engine can run
independent steps side by side (clones, configure of unrelated projects, account creation) and
re-run exactly what a change touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

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
    process: "Process | None" = None        # for start steps
    owner: "Project | None" = None


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
    """The steps for ``projects`` (already filtered to the enabled ones, in catalog order)."""
    from stackmagic import steps as S

    plan: list[Step] = []
    add = plan.append
    names = {p.name for p in projects}

    packages = sorted({pkg for p in projects for pkg in p.packages(ctx)})
    if packages:
        add(Step("packages", "packages", "stack", S.packages(packages), recipe=S.recipe(S),
                 inputs=lambda ctx: {"packages": packages}))
    base = ["packages"] if packages else []

    clones = []
    for p in projects:
        if p.repo:
            sid = f"clone {p.name}"
            add(Step(sid, "clone", p.name, S.clone(p), deps=list(base), inputs=S.clone_inputs(p),
                     recipe=S.recipe(S), always=ctx.settings.reclone, owner=p))
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

    started: dict[str, list[str]] = {}          # project -> its start step ids
    ready: dict[str, str] = {}                  # project -> last step before its start
    databases = [p.name for p in projects if getattr(p, "is_database", False)]
    for p in projects:                          # catalog order: infrastructure first
        last = "install"
        source = [f"clone {p.name}"] if p.repo else []     # its code, not everything installed
        if p.overrides("configure") or p.config_files(ctx):
            sid = f"configure {p.name}"
            add(Step(sid, "configure", p.name, S.configure(p), deps=[last, *source], key_deps=source,
                     inputs=S.merge_inputs(p), recipe=S.recipe(p), owner=p))
            last = sid
        if p.overrides("init"):
            sid = f"init {p.name}"
            deps = [last, *source]
            key = [last if last != "install" else None, *source]
            if p.uses_database:
                deps += [s for db in databases for s in started.get(db, []) or [ready[db]]]
                key += [ready[db] for db in databases if ready[db] != "install"]
                deps += [k for k in key if k]
            add(Step(sid, "init", p.name, p.init, deps=_unique(deps), key_deps=_unique(k for k in key if k),
                     recipe=S.recipe(p), owner=p))
            last = sid
        ready[p.name] = last
        after = [sid for dep in p.start_after if dep in names for sid in started.get(dep, [])]
        ids = []
        for proc in p.processes(ctx):
            sid = f"start {proc.service}"
            # restart when its config, its data setup or anything installed changed
            add(Step(sid, "start", p.name, S.start(p, proc), deps=_unique([last, "install", *after]),
                     key_deps=_unique([last, "install"]), inputs=S.start_inputs(proc),
                     recipe=S.recipe(p), process=proc, owner=p))
            ids.append(sid)
        started[p.name] = ids

    keystone_up = started.get("keystone", [])
    accounts: dict[str, str] = {}
    for p in projects:
        if p.overrides("accounts"):
            sid = f"accounts {p.name}"
            deps = list(keystone_up) if p.uses_keystone else list(started.get(p.name, []))
            if p.name != "keystone" and "keystone" in accounts:
                deps.append(accounts["keystone"])
            deps = deps or [ready[p.name]]
            # accounts live in Keystone's database: redo them when that was made anew
            key = [d for d in ("init keystone",) if d in {st.id for st in plan}]
            add(Step(sid, "accounts", p.name, p.accounts, deps=_unique(deps + key), key_deps=key,
                     recipe=S.recipe(p), owner=p))
            accounts[p.name] = sid
    for p in projects:
        if p.overrides("data"):
            deps = started.get(p.name, []) + ([accounts[p.name]] if p.name in accounts else [])
            deps = deps or [ready[p.name]]
            key = [ready[p.name]] if ready[p.name] != "install" else []
            add(Step(f"data {p.name}", "data", p.name, p.data, deps=_unique(deps + key), key_deps=key,
                     recipe=S.recipe(p), owner=p))

    everything = [s.id for s in plan]
    if S.orphan_merges(ctx, projects):
        add(Step("post-config", "post-config", "stack", S.post_config(projects), deps=everything,
                 inputs=S.orphan_merge_inputs(projects), recipe=S.recipe(S)))
    if "keystone" in accounts:
        add(Step("credentials", "credentials", "stack", S.credentials, deps=list(accounts.values()),
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


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))
