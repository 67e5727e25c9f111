"""Service selection: devstack's ENABLED_SERVICES semantics in pure Python.

``ENABLED_SERVICES`` is a comma separated list of short service names
(``key,g-api,n-api``). :func:`is_service_enabled` answers like devstack's shell
function of the same name (``stackmagic/config/functions.sh`` implements the
shell side; the tests check both agree), including the group names:

========== ==================================================
group      true when an enabled name ...
========== ==================================================
nova       starts with ``n-``
glance     starts with ``g-``
cinder     starts with ``c-``
neutron    starts with ``q-`` (the old name *quantum*) or ``neutron-``
swift      starts with ``s-``
trove      starts with ``tr-``
heat       starts with ``h-`` (the heat plugin's ``is_heat_enabled``)
keystone   is ``key``
placement  starts with ``placement-api``
zaqar      starts with ``zaqar`` (the zaqar plugin's ``is_zaqar_enabled``)
ceilometer starts with ``ceilometer-`` (the ceilometer plugin's ``is_ceilometer_enabled``)
========== ==================================================

and two legacy rules: ``s-*`` is enabled when ``swift`` is listed, and
``n-cpu-*`` when an enabled name starts with ``n-cpu``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Group name -> prefixes of the enabled names that make it true.
GROUP_PREFIXES: dict[str, tuple[str, ...]] = {
    "nova": ("n-",),
    "glance": ("g-",),
    "cinder": ("c-",),
    "neutron": ("q-", "neutron-"),
    "swift": ("s-",),
    "trove": ("tr-",),
    "heat": ("h-",),
    "placement": ("placement-api",),
    "zaqar": ("zaqar",),
    "ceilometer": ("ceilometer-",),
}

#: Group name -> the one exact name that makes it true.
GROUP_EXACT: dict[str, str] = {"keystone": "key"}

#: Every group name.
GROUPS: frozenset[str] = frozenset(GROUP_PREFIXES) | frozenset(GROUP_EXACT)


def parse_service_list(text: str) -> list[str]:
    """Split a comma list into names: no empty entries, no repeats, order kept.

    >>> parse_service_list(",key,,g-api,key,")
    ['key', 'g-api']
    """
    names: list[str] = []
    for name in text.split(","):
        name = name.strip()
        if name and name not in names:
            names.append(name)
    return names


def remove_negated(names: Iterable[str]) -> list[str]:
    """Apply ``-x`` entries: drop them and every exact ``x`` (devstack's
    ``disable_negated_services``).

    >>> remove_negated(["key", "rabbit", "-rabbit"])
    ['key']
    """
    names = list(names)
    removed = {name[1:] for name in names if name.startswith("-")}
    return [name for name in names if not name.startswith("-") and name not in removed]


def _any_prefix(enabled: list[str], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in enabled)


def _one_enabled(enabled: list[str], name: str) -> bool:
    if name in enabled:
        return True
    if name in GROUP_EXACT:
        return GROUP_EXACT[name] in enabled
    if name in GROUP_PREFIXES:
        return any(_any_prefix(enabled, prefix) for prefix in GROUP_PREFIXES[name])
    if name.startswith("n-cpu-"):
        return _any_prefix(enabled, "n-cpu")
    if name.startswith("s-"):
        return _any_prefix(enabled, "swift")
    return False


def is_service_enabled(enabled: Iterable[str], *names: str) -> bool:
    """True if any of ``names`` is enabled in ``enabled``, group names included.

    >>> is_service_enabled(["key", "n-api"], "nova")
    True
    >>> is_service_enabled(["key"], "glance", "nova")
    False
    """
    enabled = list(enabled)
    return any(_one_enabled(enabled, name) for name in names)
