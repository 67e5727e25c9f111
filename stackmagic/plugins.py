"""Plugins: ``enable_plugin NAME URL [REF]`` clones a repository that defines more projects.

Format (stackmagic's own, small): the plugin repository has a file ``stackmagic_plugin.py`` at
its top. It defines :class:`stackmagic.catalog.Project` subclasses and lists them::

    from stackmagic.catalog import Process, Project

    class Echo(Project):
        name = "echo"
        services = {"echo-api": "Echo API"}
        def processes(self, ctx): ...

    PROJECTS = [Echo]

Each project gets the plugin checkout as its source (installed editable when it has a
``pyproject.toml`` or ``setup.py``). The lifecycle methods map to devstack's plugin phases:
``pre_install`` (pre-install), ``install_requirements`` (install), ``configure`` (post-config),
``extra``, ``test_config`` (test-config), and ``cleanup`` (clean); processes are stopped by
unstack like every other. Plugins load in the order they were enabled.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stackmagic.catalog.base import Project
from stackmagic.errors import StackError
from stackmagic.events import Message

if TYPE_CHECKING:
    from stackmagic.context import Context

PLUGIN_FILE = "stackmagic_plugin.py"


class PluginError(StackError):
    """A plugin could not be cloned or loaded."""


def load_plugin(name: str, path: Path) -> list[Project]:
    """Import ``path/stackmagic_plugin.py`` and return instances of its projects."""
    module_file = path / PLUGIN_FILE
    if not module_file.exists():
        raise PluginError(
            f"plugin '{name}' ({path}) has no {PLUGIN_FILE}: stackmagic plugins define their "
            f"projects there (see stackmagic.plugins). devstack's bash plugins are not supported."
        )
    mod_name = f"stackmagic_plugin_{name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(mod_name, module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any error in user code is reported the same way
        raise PluginError(f"plugin '{name}': {PLUGIN_FILE} failed to load: {err!r}") from err
    classes = getattr(module, "PROJECTS", None)
    if not classes or not all(isinstance(c, type) and issubclass(c, Project) for c in classes):
        raise PluginError(f"plugin '{name}': {PLUGIN_FILE} must set PROJECTS to a list of Project classes")
    out = []
    for cls in classes:
        _check_project_name(name, cls)
        project = cls()
        project.source_dir_override = path
        project.plugin = name
        out.append(project)
    return out


def _check_project_name(plugin: str, cls: type) -> None:
    """A project's name names its directories (config, data): it must not leave them."""
    from stackmagic.config.validate import check_name
    from stackmagic.errors import ConfigError

    project = getattr(cls, "name", None)
    if not isinstance(project, str):
        raise PluginError(f"plugin '{plugin}': {cls.__name__} has no name (set name = \"...\")")
    try:
        check_name("project", project)
        for service in getattr(cls, "services", {}) or {}:
            check_name("service", str(service))
    except ConfigError as err:
        raise PluginError(f"plugin '{plugin}': {err}") from None


def load_plugins(ctx: "Context") -> list[Project]:
    """Clone (devstack's git_clone rules) and load every enabled plugin, in order."""
    from stackmagic.config.validate import check_name
    from stackmagic.git import git_clone

    from stackmagic.catalog import plugin_recipes

    s = ctx.settings
    projects: list[Project] = []
    preview = bool(ctx.shared.get("dry_run"))
    recipes = plugin_recipes()
    for plugin in ctx.config.plugins:
        check_name("plugin", plugin.name)     # a Config made without load_config is checked too
        if plugin.name in recipes:
            continue            # the catalog's recipe runs it (plan.notes says so); no bash to clone
        dest = s.dest / plugin.name
        if preview and not (dest / ".git").exists():
            dest = _preview_clone(plugin)
            res = git_clone(plugin.url, dest, plugin.ref, depth=s.git_depth, name=plugin.name)
            ctx.emit(Message(f"plugin {plugin.name}: read from a temporary clone at {res.ref} "
                             f"(stack clones it into {s.dest / plugin.name})"))
        else:
            res = git_clone(plugin.url, dest, plugin.ref, reclone=s.reclone and not preview,
                            offline=s.offline or preview, error_on_clone=s.error_on_clone,
                            depth=s.git_depth, name=plugin.name)
            if res.action != "kept":
                ctx.emit(Message(f"plugin {plugin.name}: {res.action} {dest} at {res.ref} ({res.sha[:12]})"))
        projects += load_plugin(plugin.name, dest)
    return projects


def _preview_clone(plugin) -> Path:
    """A temporary directory for a plugin a dry-run must read but may not clone into DEST.

    Removed when the process exits; what a killed process left is removed by the next preview
    (each directory is named after the pid that made it)."""
    import atexit
    import os
    import shutil
    import tempfile

    from stackmagic.process_info import alive

    parent = Path(tempfile.gettempdir()) / f"stackmagic-preview-{os.getuid()}"
    parent.mkdir(mode=0o700, exist_ok=True)
    for old in parent.iterdir():
        pid = old.name.partition("-")[0]
        if not pid.isdigit() or (int(pid) != os.getpid() and not alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)
    top = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{plugin.name}-", dir=parent))
    atexit.register(shutil.rmtree, top, ignore_errors=True)
    return top / plugin.name
