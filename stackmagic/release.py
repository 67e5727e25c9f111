"""The OpenStack release series stackmagic installs: its server versions and its constraints.

``stackmagic/constraints/<series>.txt`` pins every library (upper-constraints style) and
``<series>-releases.txt`` pins the servers (``keystone==30.0.0``), which come from git checkouts
(or, with ``MIRROR_FROM_PYPI``, from their release sdists turned into local git repos).
``RELEASE_SERIES`` picks the series; ``compile.sh`` beside the files says how they were made.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import TYPE_CHECKING

from stackmagic.errors import ConfigError

if TYPE_CHECKING:
    from stackmagic.context import Context

CONSTRAINTS_DIR = Path(__file__).parent / "constraints"
DEFAULT_SERIES = "2026.2"


def series(ctx: "Context") -> str:
    return ctx.settings.get("RELEASE_SERIES") or DEFAULT_SERIES


def supported_series() -> list[str]:
    return sorted(p.stem for p in CONSTRAINTS_DIR.glob("*.txt") if not p.stem.endswith("-releases"))


def _file(ctx: "Context", suffix: str) -> Path:
    name = series(ctx)
    path = CONSTRAINTS_DIR / f"{name}{suffix}.txt"
    if not path.exists():
        raise ConfigError(
            f"RELEASE_SERIES={name} is not one stackmagic ships; choose one of: "
            + ", ".join(supported_series())
        )
    return path


def shipped_constraints(ctx: "Context") -> Path:
    return _file(ctx, "")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def release_version(ctx: "Context", pypi_name: str) -> str:
    """The version of ``pypi_name`` in the series (e.g. ``keystone`` -> ``30.0.0``)."""
    path = _file(ctx, "-releases")
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            if _norm(name) == _norm(pypi_name):
                return version.lstrip("=").strip()
    raise ConfigError(f"{pypi_name} has no release in series {series(ctx)} ({path})")


def project_name_of(source: Path) -> str:
    """The distribution name of a source tree (setup.cfg's or pyproject's), normalised."""
    cfg = source / "setup.cfg"
    if cfg.exists():
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(cfg)
        name = parser.get("metadata", "name", fallback="")
        if name:
            return _norm(name)
    pyproject = source / "pyproject.toml"
    if pyproject.exists():
        import tomllib

        name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name", "")
        if name:
            return _norm(name)
    return _norm(source.name)
