"""The service catalog: one module per project that stackmagic can run.

Every module of this package that defines a :class:`Project` subclass with a ``name`` is part of
the catalog: adding the module is all it takes (no list to edit). Which projects a stack runs
follows from the enabled services and from what they declare (:class:`Need`, ``provides``,
``when_needed``); their order follows from those needs: providers first, as stack.sh brings up
the database and Keystone before the rest. Every name devstack knows, runnable here or not, is
in :mod:`stackmagic.catalog.names`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from stackmagic.catalog.base import Need, Process, Project
from stackmagic.errors import ConfigError

if TYPE_CHECKING:
    from stackmagic.context import Context

__all__ = ["Need", "Process", "Project", "builtin_projects", "enabled_projects", "order_projects",
           "plugin_recipes", "runnable_services"]

_FOUND: dict[tuple[str, ...], tuple[type[Project], ...]] = {}


def builtin_projects() -> tuple[type[Project], ...]:
    """Every project class defined in a module of this package, sorted by name."""
    key = tuple(__path__)
    if key not in _FOUND:
        found: list[type[Project]] = []
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found += [obj for obj in vars(module).values()
                      if isinstance(obj, type) and issubclass(obj, Project)
                      and obj.__module__ == module.__name__ and "name" in vars(obj)]
        _FOUND[key] = tuple(sorted(found, key=lambda k: k.name))
    return _FOUND[key]


def plugin_recipes() -> dict[str, type[Project]]:
    """devstack plugin name -> the catalog's project that stands in for it (``devstack_plugin``)."""
    return {k.devstack_plugin: k for k in builtin_projects() if k.devstack_plugin}


def runnable_services(extra: list[Project] | None = None) -> dict[str, str]:
    """Short service name -> project name, for every service stackmagic can run."""
    out = {}
    for p in [*(k() for k in builtin_projects()), *(extra or [])]:
        for service in p.services:
            out[service] = p.name
    return out


def enabled_projects(ctx: "Context", extra: list[Project]) -> tuple[list[Project], list[str]]:
    """The projects with an enabled service, and those their needs bring in, providers first;
    and the enabled service names that nothing here runs."""
    cfg = ctx.config
    candidates: list[Project] = [k() for k in builtin_projects()] + list(extra)
    chosen = [p for p in candidates
              if not p.when_needed and any(cfg.is_service_enabled(s) for s in p.services)]
    todo = list(chosen)
    while todo:
        project = todo.pop(0)
        for need in project.requires:
            if any(need.capability in p.provides for p in chosen):
                continue
            providers = [p for p in candidates if need.capability in p.provides]
            usable = [p for p in providers if p.when_needed and p.available(ctx)]
            if usable:
                chosen.append(usable[0])
                todo.append(usable[0])
            elif not need.optional:
                names = [s for p in providers for s in p.services]
                hint = (f"enable one of: {', '.join(names)}" if names else
                        "no project in the catalog provides it")
                raise ConfigError(f"{project.name} needs a {need.capability} (before its "
                                  f"{need.before}), and none is enabled: {hint}")
    runnable = {s for p in candidates for s in p.services}
    unsupported = [s for s in cfg.enabled if s not in runnable]
    return order_projects(chosen), unsupported


def order_projects(projects: list[Project]) -> list[Project]:
    """``projects`` with every provider before the projects that need it (stable otherwise)."""
    providers = {cap: p for p in projects for cap in p.provides}
    before = {p.name: {providers[n.capability].name for n in p.requires
                       if n.capability in providers and providers[n.capability] is not p}
              for p in projects}
    ordered: list[Project] = []
    placed: set[str] = set()
    while len(ordered) < len(projects):
        ready = [p for p in projects if p.name not in placed and before[p.name] <= placed]
        if not ready:
            stuck = sorted(p.name for p in projects if p.name not in placed)
            raise ConfigError(f"these projects need each other in a circle: {', '.join(stuck)}")
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return ordered
