"""The release series a stack installs, as the engine sees it: which one the settings pick
(``RELEASE_SERIES``), its constraints file and its server versions. The files and their
parsing live in :mod:`stackmagic.constraints`.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import TYPE_CHECKING

from stackmagic import constraints
from stackmagic.errors import ConfigError

if TYPE_CHECKING:
    from stackmagic.context import Context


def series(ctx: "Context") -> str:
    return ctx.settings.get("RELEASE_SERIES") or constraints.SERIES


def shipped_constraints(ctx: "Context") -> Path:
    return constraints.constraints_file(series(ctx))


def release_version(ctx: "Context", pypi_name: str) -> str:
    """The version of ``pypi_name`` in the series (e.g. ``keystone`` -> ``30.0.0``)."""
    versions = {constraints.normalize(k): v for k, v in constraints.releases(series(ctx)).items()}
    try:
        return versions[constraints.normalize(pypi_name)]
    except KeyError:
        raise ConfigError(f"{pypi_name} has no release in series {series(ctx)}") from None


def project_name_of(source: Path) -> str:
    """The distribution name of a source tree (setup.cfg's or pyproject's), normalised."""
    cfg = source / "setup.cfg"
    if cfg.exists():
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(cfg)
        name = parser.get("metadata", "name", fallback="")
        if name:
            return constraints.normalize(name)
    pyproject = source / "pyproject.toml"
    if pyproject.exists():
        import tomllib

        name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name", "")
        if name:
            return constraints.normalize(name)
    return constraints.normalize(source.name)
