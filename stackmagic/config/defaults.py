"""Default settings, in the order devstack applies them around the localrc.

devstack's ``stackrc`` sets a few variables *before* it sources the localrc
(``DEST``, ``DATA_DIR``, ``REGION_NAME``, ``ENABLED_SERVICES`` when unset), so a
localrc can build on them (``SWIFT_DATA_DIR=$DATA_DIR/swift``); everything else
is set *after* the localrc as ``${VAR:-default}``, so a value from the localrc
wins and defaults can build on what the user chose (``LOGDIR=$DEST/logs``).
stackmagic keeps that order. One consequence, as in devstack: a localrc that
sets only ``DEST`` keeps the default ``DATA_DIR``.

stackmagic's own choices (differences from devstack):

- ``DEST`` is ``/opt/stack`` for root, else ``~/stack``; ``DATA_DIR`` is
  ``$DEST/data`` (devstack sets ``DEST`` unconditionally; here the process
  environment may set it too).
- ``FILES`` is ``$DATA_DIR/files`` (devstack: the devstack checkout's ``files``).
- Configuration files live under ``STACK_CONF_DIR`` (``$DATA_DIR/etc``), one
  directory per project, instead of ``/etc/<project>``:
  ``NOVA_CONF=$STACK_CONF_DIR/nova/nova.conf`` and so on, so ``$NOVA_CONF`` in a
  ``[[post-config|$NOVA_CONF]]`` header expands to the file stackmagic writes.
  ``Q_PLUGIN_CONF_FILE`` is absolute, so devstack's usual
  ``[[post-config|/$Q_PLUGIN_CONF_FILE]]`` still names the right file.
- ``HOST_IP`` defaults to ``127.0.0.1`` (devstack guesses an interface's
  address) and services listen on it: ``SERVICE_LISTEN_ADDRESS=$HOST_IP``.
- ``DATABASE_TYPE`` follows the enabled database service as in devstack (``mysql`` or
  ``postgresql``); with neither enabled it is ``sqlite`` (no server).
- ``API_WORKERS`` is devstack's ``max(2, nproc / 4)``.

Passwords have no defaults here: unset passwords stay unset.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

#: devstack's default ``ENABLED_SERVICES`` (its current ``stackrc``).
DEFAULT_ENABLED_SERVICES: tuple[str, ...] = (
    "key",
    "n-api", "n-cpu", "n-cond", "n-sch", "n-novnc", "n-api-meta",
    "placement-api", "placement-client",
    "g-api",
    "c-sch", "c-api", "c-vol",
    "ovn-controller", "ovn-northd", "ovs-vswitchd", "ovsdb-server",
    "q-svc", "q-ovn-agent",
    "horizon",
    "rabbit", "tempest", "mysql", "etcd3", "dstat",
)  # fmt: skip

#: The release series branch every project defaults to (``TARGET_BRANCH``).
DEFAULT_BRANCH = "master"

#: Where projects are cloned from unless ``GIT_BASE`` says otherwise.
DEFAULT_GIT_BASE = "https://opendev.org"

#: Set after the localrc, in this order: name -> bash expression of the default.
POST_LOCALRC: tuple[tuple[str, str], ...] = (
    ("GIT_BASE", DEFAULT_GIT_BASE),
    ("LOGDIR", "$DEST/logs"),
    ("FILES", "$DATA_DIR/files"),
    ("SERVICE_DIR", "$DEST/status"),
    ("STACK_CONF_DIR", "$DATA_DIR/etc"),
    ("KEYSTONE_CONF_DIR", "$STACK_CONF_DIR/keystone"),
    ("KEYSTONE_CONF", "$KEYSTONE_CONF_DIR/keystone.conf"),
    ("GLANCE_CONF_DIR", "$STACK_CONF_DIR/glance"),
    ("GLANCE_API_CONF", "$GLANCE_CONF_DIR/glance-api.conf"),
    ("GLANCE_CACHE_CONF", "$GLANCE_CONF_DIR/glance-cache.conf"),
    ("PLACEMENT_CONF_DIR", "$STACK_CONF_DIR/placement"),
    ("PLACEMENT_CONF", "$PLACEMENT_CONF_DIR/placement.conf"),
    ("NOVA_CONF_DIR", "$STACK_CONF_DIR/nova"),
    ("NOVA_CONF", "$NOVA_CONF_DIR/nova.conf"),
    ("NOVA_CPU_CONF", "$NOVA_CONF_DIR/nova-cpu.conf"),
    ("NEUTRON_CONF_DIR", "$STACK_CONF_DIR/neutron"),
    ("NEUTRON_CONF", "$NEUTRON_CONF_DIR/neutron.conf"),
    ("Q_PLUGIN_CONF_FILE", "$NEUTRON_CONF_DIR/plugins/ml2/ml2_conf.ini"),
    ("Q_DHCP_CONF_FILE", "$NEUTRON_CONF_DIR/dhcp_agent.ini"),
    ("Q_L3_CONF_FILE", "$NEUTRON_CONF_DIR/l3_agent.ini"),
    ("Q_META_CONF_FILE", "$NEUTRON_CONF_DIR/metadata_agent.ini"),
    ("CINDER_CONF_DIR", "$STACK_CONF_DIR/cinder"),
    ("CINDER_CONF", "$CINDER_CONF_DIR/cinder.conf"),
    ("SWIFT_CONF_DIR", "$STACK_CONF_DIR/swift"),
    ("HORIZON_CONF_DIR", "$STACK_CONF_DIR/horizon"),
    ("HEAT_CONF_DIR", "$STACK_CONF_DIR/heat"),
    ("HEAT_CONF", "$HEAT_CONF_DIR/heat.conf"),
    ("ZAQAR_CONF_DIR", "$STACK_CONF_DIR/zaqar"),
    ("ZAQAR_CONF", "$ZAQAR_CONF_DIR/zaqar.conf"),
    ("CEILOMETER_CONF_DIR", "$STACK_CONF_DIR/ceilometer"),
    ("CEILOMETER_CONF", "$CEILOMETER_CONF_DIR/ceilometer.conf"),
    ("GNOCCHI_CONF_DIR", "$STACK_CONF_DIR/gnocchi"),
    ("GNOCCHI_CONF", "$GNOCCHI_CONF_DIR/gnocchi.conf"),
    ("TROVE_CONF_DIR", "$STACK_CONF_DIR/trove"),
    ("TROVE_CONF", "$TROVE_CONF_DIR/trove.conf"),
    ("TROVE_GUESTAGENT_CONF", "$TROVE_CONF_DIR/trove-guestagent.conf"),
    ("TEMPEST_CONFIG_DIR", "$STACK_CONF_DIR/tempest"),
    ("TEMPEST_CONFIG", "$TEMPEST_CONFIG_DIR/tempest.conf"),
    ("HOST_IP", "127.0.0.1"),
    ("SERVICE_HOST", "$HOST_IP"),
    ("SERVICE_LISTEN_ADDRESS", "$HOST_IP"),
    ("SERVICE_PROTOCOL", "http"),
    # devstack: the enabled database service names the backend (mysql, postgresql); with
    # neither, stackmagic's embedded default
    ("DATABASE_TYPE", "$(if is_service_enabled mysql; then echo mysql; "
                      "elif is_service_enabled postgresql; then echo postgresql; else echo sqlite; fi)"),
    ("DATABASE_HOST", "$SERVICE_HOST"),
    ("DATABASE_USER", "root"),
    ("RABBIT_HOST", "$SERVICE_HOST"),
    ("RABBIT_USERID", "stackrabbit"),
    ("SERVICE_TIMEOUT", "60"),
    ("GIT_DEPTH", "0"),
    ("GIT_TIMEOUT", "0"),
)


def default_dest(euid: int | None = None, home: str | None = None) -> Path:
    """``/opt/stack`` for root (devstack's), else ``~/stack``."""
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return Path("/opt/stack")
    return Path(home or os.path.expanduser("~")) / "stack"


def default_api_workers() -> int:
    """devstack's ``API_WORKERS``: a quarter of the CPUs, at least 2."""
    return max(2, (os.cpu_count() or 1) // 4)


def pre_localrc(euid: int | None = None, home: str | None = None) -> list[tuple[str, str]]:
    """Defaults set before the localrc is sourced: name -> bash expression."""
    euid = os.geteuid() if euid is None else euid
    return [
        ("TARGET_BRANCH", DEFAULT_BRANCH),
        ("DEST", str(default_dest(euid, home))),
        ("DATA_DIR", "$DEST/data"),
        ("STACK_USER", "stack" if euid == 0 else getpass.getuser()),
        ("REGION_NAME", "RegionOne"),
        ("KEYSTONE_REGION_NAME", "$REGION_NAME"),
        ("API_WORKERS", str(default_api_workers())),
    ]


def _assign(name: str, expression: str) -> str:
    """``NAME=${NAME:-expression}``, with the expression in double quotes."""
    escaped = expression.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return f'{name}="${{{name}:-{escaped}}}"'


def shell_pre_localrc(euid: int | None = None, home: str | None = None) -> str:
    """The bash that applies the pre-localrc defaults, ENABLED_SERVICES included."""
    lines = [_assign(name, value) for name, value in pre_localrc(euid, home)]
    services = ",".join(DEFAULT_ENABLED_SERVICES)
    lines.append(f"isset ENABLED_SERVICES || ENABLED_SERVICES={services}")
    return "\n".join(lines) + "\n"


def shell_post_localrc() -> str:
    """The bash that applies the post-localrc ``${VAR:-default}`` defaults."""
    return "\n".join(_assign(name, value) for name, value in POST_LOCALRC) + "\n"

