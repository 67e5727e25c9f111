"""services.py against devstack's rules, and against the bash functions a localrc calls."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import stackmagic.config
from stackmagic.services import (
    GROUPS,
    is_service_enabled,
    parse_service_list,
    remove_negated,
)

FUNCTIONS = Path(stackmagic.config.__file__).with_name("functions.sh")

# (ENABLED_SERVICES, names asked, devstack's answer)
CASES: list[tuple[str, str, bool]] = [
    ("key,g-api", "g-api", True),
    ("key,g-api", "g-reg", False),
    ("key,g-api", "glance", True),
    ("key", "glance", False),
    ("key,n-api", "nova", True),
    ("key,n-cpu", "n-cpu-foo", True),
    ("key,n-api", "n-cpu-foo", False),
    ("key,q-svc", "neutron", True),
    ("key,neutron-api", "neutron", True),
    ("key,n-api", "neutron", False),
    ("s-proxy", "swift", True),
    ("swift", "s-proxy", True),
    ("swift", "s-object", True),
    ("c-vol", "cinder", True),
    ("tr-api", "trove", True),
    ("key,h-eng", "heat", True),
    ("key,horizon", "heat", False),
    ("key", "keystone", True),
    ("keystone-x", "keystone", False),
    ("placement-api", "placement", True),
    ("placement-client", "placement", False),
    ("key,g-api", "n-api g-api", True),
    ("key,g-api", "n-api c-api", False),
    ("", "key", False),
    ("g-api-x", "g-api", False),
    ("xg-api", "glance", False),
    ("n-net", "nova", True),
]


def _bash(script: str) -> str:
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", f"source {FUNCTIONS}\n{script}"],
        capture_output=True, text=True, check=True, timeout=30,
    )
    return result.stdout


@pytest.mark.parametrize(("enabled", "asked", "expected"), CASES)
def test_python_is_service_enabled(enabled: str, asked: str, expected: bool) -> None:
    assert is_service_enabled(parse_service_list(enabled), *asked.split()) is expected


def test_bash_and_python_agree_on_every_case() -> None:
    script = "".join(
        f"ENABLED_SERVICES='{enabled}'; is_service_enabled {asked} && echo 1 || echo 0\n"
        for enabled, asked, _ in CASES
    )
    bash = [line == "1" for line in _bash(script).split()]
    python = [is_service_enabled(parse_service_list(e), *a.split()) for e, a, _ in CASES]
    assert bash == python == [expected for _, _, expected in CASES]


def test_every_group_is_known_to_bash() -> None:
    script = "ENABLED_SERVICES=key,n-x,g-x,c-x,q-x,s-x,tr-x,h-x,placement-api,zaqar-x,ceilometer-x\n" + "".join(
        f"is_service_enabled {group} && echo {group}\n" for group in sorted(GROUPS)
    )
    assert _bash(script).split() == sorted(GROUPS)


def test_parse_service_list_drops_empties_and_repeats() -> None:
    assert parse_service_list(",key,,g-api, key ,") == ["key", "g-api"]
    assert parse_service_list("") == []


def test_remove_negated_is_exact() -> None:
    assert remove_negated(["key", "n-api", "n-api-meta", "-n-api"]) == ["key", "n-api-meta"]


def test_bash_disable_negated_services_matches_python() -> None:
    out = _bash("ENABLED_SERVICES=key,n-api,n-api-meta,-n-api,rabbit,-rabbit\n"
                "disable_negated_services; echo $ENABLED_SERVICES")
    assert out.strip() == ",".join(remove_negated(["key", "n-api", "n-api-meta", "-n-api",
                                                   "rabbit", "-rabbit"]))


def test_bash_enable_service_appends_skips_groups_and_refuses_disabled() -> None:
    out = _bash(
        "ENABLED_SERVICES=key,q-svc\n"
        "disable_service rabbit\n"
        "enable_service neutron g-api g-api rabbit\n"
        "echo $ENABLED_SERVICES; echo $DISABLED_SERVICES; echo ${#__sm_warnings[@]}"
    )
    assert out.split() == ["key,q-svc,g-api", "rabbit", "1"]


def test_every_catalog_group_is_one_is_service_enabled_knows():
    """Group names are devstack's is_service_enabled semantics (functions-common, mirrored by
    functions.sh): a project declares its group, and each of its services answers to it."""
    from stackmagic.catalog import builtin_projects

    grouped = [p for p in builtin_projects() if p.group]
    assert {p.group for p in grouped} >= {"keystone", "glance", "placement"}
    for project in grouped:
        assert project.group in GROUPS, project.name
        for service in project.services:
            assert is_service_enabled([service], project.group), (project.name, service)
