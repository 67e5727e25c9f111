"""The small public API both front ends (CLI, IPython magics) call. No rendering here.

>>> from stackmagic import api
>>> cfg = api.load(sample="quickstart")          # doctest: +SKIP
>>> summary = api.engine(cfg).stack()            # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from stackmagic.errors import ConfigError, StackError

#: Where the path of the configuration last used by ``stack`` is remembered, so that ``status``,
#: ``logs``, ``unstack`` and ``clean`` find the same stack without ``--config``.
def _last_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "stackmagic" / "last-config"


def find_config(config: str | os.PathLike | None = None, sample: str | None = None,
                remembered: bool = True) -> Path | None:
    """Which file to read: --sample, --config, ./local.conf, ./localrc, or the one ``stack`` used last."""
    if sample:
        from stackmagic.samples import sample_path

        return Path(sample_path(sample))
    if config:
        path = Path(config)
        if not path.exists():
            if path.is_symlink():
                raise ConfigError("it is a symbolic link that leads nowhere (or to itself); "
                                  "name the configuration file itself", file=str(path))
            raise ConfigError(f"no such configuration file: {path}")
        return path
    for name in ("local.conf", "localrc"):
        if Path(name).exists():
            return Path(name).resolve()
    last = _last_file()
    if remembered and last.exists():
        path = Path(last.read_text().strip())
        if path.exists():
            return path
    return None


#: Settings stackmagic reads that a caller's environment may set (besides every name with a
#: suffix of :data:`_SETTING_SUFFIXES` and the names the localrc itself mentions).
_KNOWN = frozenset(
    "DEST DATA_DIR LOGDIR FILES ENABLED_SERVICES DISABLED_SERVICES TARGET_BRANCH GIT_BASE GIT_DEPTH "
    "GIT_TIMEOUT RECLONE OFFLINE ERROR_ON_CLONE MIRROR_FROM_PYPI RELEASE_SERIES UPPER_CONSTRAINTS_FILE "
    "USE_CONSTRAINTS PIP_UPGRADE DATABASE_TYPE DATABASE_HOST DATABASE_USER HOST_IP SERVICE_HOST "
    "SERVICE_LISTEN_ADDRESS API_WORKERS IMAGE_URLS CLOUDS_YAML SCREEN_NAME TMUX_SOCKET STACK_PARALLEL "
    "REGION_NAME STACK_USER MEMCACHED_ENABLED VENV_DIR ENABLE_DEBUG_LOG_LEVEL".split())
_SETTING_SUFFIXES = ("_PASSWORD", "_PORT", "_REPO", "_BRANCH", "_CONF", "_CONFIG")
#: Shell bookkeeping that bash itself changes.
_SHELL = frozenset({"SHLVL", "PWD", "OLDPWD", "_"})


#: Variables that would change how bash itself reads the localrc (the evaluation runs with
#: LC_ALL=C.UTF-8 and no startup files): never passed on.
_BASH = frozenset({"SHELLOPTS", "BASHOPTS", "BASH_ENV", "ENV", "POSIXLY_CORRECT", "IFS", "CDPATH",
                   "GLOBIGNORE", "PROMPT_COMMAND", "LANG", "LANGUAGE"})


def environment(environ=None) -> dict[str, str]:
    """The caller's environment, which the localrc sees as devstack's does (``DEST=/x ./stack.sh``),
    without what would change how bash reads it (``SHELLOPTS``, ``LC_*`` ...)."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items()
            if name.isidentifier() and name not in _BASH and not name.startswith("LC_")}


def _reported(cfg, environ: dict[str, str], text: str):
    """``cfg`` whose "settings that differ from the defaults" keep, of the caller's environment,
    only what stackmagic reads or the localrc mentions (not ``LS_COLORS`` or ``JPY_SESSION_NAME``):
    the values all stay, the report stays short."""
    import dataclasses

    from stackmagic.config.settings import Settings

    settings = cfg.settings
    mentioned = set(re.findall(r"\$\{?([A-Za-z_]\w*)", text))
    user = {name for name in settings.user_names if name not in _SHELL and (
            name not in environ or settings[name] != environ[name] or name in _KNOWN
            or name in mentioned or name.endswith(_SETTING_SUFFIXES))}
    return dataclasses.replace(cfg, settings=Settings(dict(settings), user))


def load(config: str | os.PathLike | None = None, *, sample: str | None = None, text: str | None = None,
         remembered: bool = True, environ=None):
    """Evaluate a localrc / local.conf into a :class:`~stackmagic.config.Config`; the caller's
    environment (``environ``, default ``os.environ``) is visible to it, as in devstack."""
    from stackmagic.config import load_config

    env = environment(environ)
    if text is not None:
        return _reported(load_config(text=text, environ=env), env, text)
    path = find_config(config, sample, remembered)
    if path is None:
        return load_config(text="", environ=env)
    return _reported(load_config(path, environ=env), env, Path(path).read_text(errors="replace"))


def remember(cfg) -> None:
    """Note ``cfg``'s file as the current stack's configuration."""
    if cfg.source is None:
        return
    last = _last_file()
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text(str(Path(cfg.source).resolve()) + "\n")


def engine(cfg, **kwargs):
    """The engine for ``cfg``. ``parallel`` (``-j``) must be None or 1 and more; a damaged state
    file is reported to ``on_event`` as a warning (``stack`` then rebuilds what it cannot trust)."""
    from stackmagic import events as ev
    from stackmagic.config.validate import check_parallel
    from stackmagic.engine import Engine

    check_parallel(kwargs.get("parallel"))
    result = Engine(cfg, **kwargs)
    if result.state.damaged:
        (kwargs.get("on_event") or ev.ignore)(ev.Warning_(result.state.describe_damage()))
    return result


def here():
    """What this machine can run of the tutorials' cloud (:class:`stackmagic.here.Here`): the
    whole cloud, or only the quickstart services and why."""
    from stackmagic.here import here as probe

    return probe()


def describe_services(cfg) -> list[dict[str, Any]]:
    """One row per enabled service: its project, what it is, and whether stackmagic runs it."""
    from stackmagic.catalog import builtin_projects
    from stackmagic.catalog.names import ServiceName, lookup

    catalog = {s: (k.name, what) for k in builtin_projects() for s, what in k.services.items()}
    rows = []
    for name in cfg.enabled:
        info = lookup(name)
        if info is None and name in catalog:        # a catalog module's own service
            info = ServiceName(name, catalog[name][0], catalog[name][1], "current")
        rows.append({
            "service": name,
            "project": info.project if info else "plugin",
            "description": info.description if info else "defined by a plugin",
            "status": info.status if info else "plugin",
            "runs_here": name in catalog or bool(cfg.plugins and info is None),
            "note": info.note if info else "",
        })
    return rows


def plan_report(config: str | os.PathLike | None = None, *, sample: str | None = None,
                text: str | None = None) -> dict[str, Any]:
    """Everything ``stackmagic plan`` shows, as plain data (``errors`` non-empty on failure)."""
    try:
        cfg = load(config, sample=sample, text=text, remembered=False)
    except ConfigError as err:
        return {"enabled": [], "disabled": [], "plugins": [], "settings": {}, "merges": [],
                "services": [], "warnings": [], "errors": [str(err)]}
    return {**config_report(cfg), "errors": []}


def config_report(cfg) -> dict[str, Any]:
    """What an evaluated configuration enables and sets, as plain data with passwords masked
    (the same keys as :func:`plan_report`, without ``errors``)."""
    return {
        "source": str(cfg.source) if cfg.source else None,
        "enabled": list(cfg.enabled),
        "disabled": list(cfg.disabled),
        "plugins": [{"name": p.name, "url": p.url, "ref": p.ref} for p in cfg.plugins],
        "settings": cfg.settings.masked(),
        "merges": [
            {"phase": m.phase, "file": str(m.file), "section": m.section, "key": m.key,
             "value": _mask_merge(m.key, m.value)}
            for m in cfg.merges
        ],
        "services": describe_services(cfg),
        "warnings": list(cfg.warnings),
        "notes": project_notes(cfg),
    }


def project_notes(cfg) -> list[str]:
    """What the enabled projects decided for this machine and why (``Project.plan_notes``)."""
    from stackmagic.catalog import enabled_projects
    from stackmagic.context import Context
    from stackmagic.plan import notes

    ctx = Context(cfg, state=None, tmux=None, venv=None)  # type: ignore[arg-type]
    try:
        projects, _ = enabled_projects(ctx, [])
    except ConfigError:
        return []               # the stack itself reports it
    return notes(ctx, projects)


def _mask_merge(key: str, value):
    from stackmagic.config.settings import MASK, is_secret

    if is_secret(key.upper()):
        return MASK if isinstance(value, str) else [MASK for _ in value]
    return value


__all__ = ["StackError", "config_report", "describe_services", "engine", "environment", "find_config", "here", "load", "plan_report", "remember"]
