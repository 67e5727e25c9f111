"""Pinned versions of one OpenStack release series, and devstack's edit-constraints.

Each series has two files here, made by :mod:`stackmagic.constraints.compile`:

``<series>.txt``
    upper constraints (``name===version``) for everything installed from PyPI next to the
    servers. Pass it to pip / uv with ``-c``. The servers (keystone, glance, placement, nova,
    neutron) are not in it: they come from git checkouts, whose version pbr derives from the tag.
``<series>-releases.txt``
    the server releases of the series (``keystone===30.0.0``), what the mirror builds repos
    from; add it with ``-c`` only when installing the servers from PyPI.

A project the user installs from git (devstack's ``LIBS_FROM_GIT``) must be dropped from the
constraints first, or pip refuses the checkout's version: :func:`without` does that.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Where the constraints files live.
HERE = Path(__file__).resolve().parent
#: The newest series whose servers are all on PyPI.
SERIES = "2026.2"


def normalize(name: str) -> str:
    """PEP 503 form of a distribution name: ``oslo.config`` -> ``oslo-config``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints_file(series: str = SERIES) -> Path:
    """The upper-constraints file of ``series`` (servers not pinned)."""
    return _existing(HERE / f"{series}.txt", series)


def releases(series: str = SERIES) -> dict[str, str]:
    """The server releases of ``series``: ``{"keystone": "30.0.0", ...}`` by PyPI name."""
    text = _existing(HERE / f"{series}-releases.txt", series).read_text()
    return {name: version for name, version in _pin_lines(text)}


def without(text: str, names: list[str] | set[str]) -> str:
    """``text`` (a constraints file) without the pins of ``names``, comments kept.

    Names match in PEP 503 form, so ``oslo_config`` drops ``oslo.config===...``.
    """
    drop = {normalize(n) for n in names}
    kept = [line for line in text.splitlines()
            if not (m := _PIN.match(line)) or normalize(m[1]) not in drop]
    return "\n".join(kept) + "\n"


_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*([^;\s#]+)")


def _pin_lines(text: str) -> list[tuple[str, str]]:
    return [(m[1], m[2]) for line in text.splitlines() if (m := _PIN.match(line))]


def _existing(path: Path, series: str) -> Path:
    if not path.is_file():
        from stackmagic.errors import ConfigError

        known = sorted(p.stem for p in HERE.glob("*.txt") if not p.stem.endswith("-releases"))
        raise ConfigError(f"no constraints for release series {series!r}; known: "
                          f"{', '.join(known)}. Set the series to one of them.")
    return path
