"""The service catalog: one module per project that stackmagic can run.

``BUILTIN`` lists them in the order they come up (infrastructure first, then Keystone, then the
rest, as stack.sh does). Every name devstack knows, runnable here or not, is in
:mod:`stackmagic.catalog.names`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from stackmagic.catalog.base import Process, Project

if TYPE_CHECKING:
    from stackmagic.context import Context

__all__ = ["BUILTIN", "Process", "Project", "builtin_projects", "enabled_projects", "runnable_services"]

#: module:Class of every project stackmagic can run, in start order.
BUILTIN: tuple[str, ...] = (
    "stackmagic.catalog.database:Database",
    "stackmagic.catalog.memcached:Memcached",
    "stackmagic.catalog.keystone:Keystone",
    "stackmagic.catalog.glance:Glance",
    "stackmagic.catalog.placement:Placement",
    "stackmagic.catalog.tempest:Tempest",
)


def builtin_projects() -> list[type[Project]]:
    out = []
    for ref in BUILTIN:
        module, _, cls = ref.partition(":")
        try:
            out.append(getattr(importlib.import_module(module), cls))
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
    return out


def runnable_services(extra: list[Project] | None = None) -> dict[str, str]:
    """Short service name -> project name, for every service stackmagic can run."""
    out = {}
    for p in [*(k() for k in builtin_projects()), *(extra or [])]:
        for service in p.services:
            out[service] = p.name
    return out


def enabled_projects(ctx: "Context", extra: list[Project]) -> tuple[list[Project], list[str]]:
    """The projects with at least one enabled service (or needed by one), in start order, and
    the enabled service names that nothing here runs."""
    cfg = ctx.config
    candidates: list[Project] = [k() for k in builtin_projects()] + list(extra)
    chosen = [p for p in candidates
              if any(cfg.is_service_enabled(s) for s in p.services) and not getattr(p, "implicit", False)]
    needed = [p for p in candidates if getattr(p, "implicit", False) and p.wanted_by(ctx, chosen)]
    projects = [p for p in candidates if p in chosen or p in needed]
    runnable = {s for p in candidates for s in p.services}
    implied = {n for p in needed for n in getattr(p, "aliases", ())}
    unsupported = [s for s in cfg.enabled if s not in runnable and s not in implied]
    return projects, unsupported
