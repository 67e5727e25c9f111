"""RabbitMQ, the message bus Nova and Neutron talk through (devstack's lib/rpc_backend).

Debian's ``rabbitmq-server``, started by stackmagic (no systemd) in tmux window ``rabbit``, with
everything of its own under ``$DATA_DIR/rabbit``: ``rabbitmq.conf``, ``rabbitmq-env.conf``, the
Erlang cookie (``.erlang.cookie``, its ``HOME``), the user definitions, the data (``mnesia/``) and
the logs (``log/``; the console output also goes to ``$LOGDIR/rabbit.log``). Nothing in
``/etc/rabbitmq`` or ``/var/lib/rabbitmq`` is read or written.

Ports, each a setting (sandboxes pick free ones, so two stacks run side by side):

- ``RABBIT_PORT`` (5672, devstack's fixed port): AMQP, on ``SERVICE_LISTEN_ADDRESS``; the
  address clients use is ``RABBIT_HOST`` (default ``SERVICE_HOST``).
- ``RABBIT_EPMD_PORT`` (4369): the Erlang port mapper ``epmd``.
- ``RABBIT_DIST_PORT`` (25672): Erlang distribution, which only ``rabbitmqctl`` uses.

epmd and the distribution port listen on 127.0.0.1 whatever ``SERVICE_LISTEN_ADDRESS`` says (epmd
adds ::1 itself): only the command line tools on this machine talk to them, and an Erlang node
reachable from elsewhere can be taken over by anyone who learns its cookie. The node is named
``stackmagic-<hash of DATA_DIR>@localhost``, so two stacks never share a name.

epmd is started by the window's launcher in the foreground (not as a daemon, which would leave
the window's process family), so stopping the window stops epmd with the broker. The command line
tools start a daemon epmd when none answers on their port; the health check asks them only once
the AMQP port answers, and ``unstack`` and ``clean`` stop any epmd or Erlang node left on this
stack's ports, found by the ``RABBITMQ_CONF_ENV_FILE`` in its environment, never by name.

As root the broker runs as Debian's ``rabbitmq`` account (it needs no privilege, and a network
server should not hold root's); DATA_DIR must then be reachable by that account (a clear error
says which directory is not). As an ordinary user it runs as that user.

The user ``RABBIT_USERID`` (default ``stackrabbit``) with ``RABBIT_PASSWORD`` (generated and kept
like the other passwords when unset) and every permission on vhost ``/`` comes from a definitions
file (0600, readable only by the broker's account) that the broker imports at every boot before
it opens the AMQP port: so when the node is healthy the user exists, and a changed password takes
effect at the restart its configure brings. The file holds only a salted SHA-256 hash of the
password; the password itself is on no command line and in no log. No ``guest`` user is made.

``./bin/rabbitmqctl`` and ``./bin/rabbitmq-diagnostics`` under ``$DATA_DIR/rabbit`` run Debian's
tools against this stack's node (``$DATA_DIR/rabbit/bin/rabbitmqctl list_queues``).

For the services that use it: :func:`transport_url` (``rabbit://user:password@host:port/``, for
``[DEFAULT] transport_url``) and :func:`iniset_rpc_backend` (devstack's function of that name:
the URL and the ``RABBIT_HEARTBEAT_*`` settings). Nova and Neutron declare
``Need("message-bus", before="start")``; a stack that enables them without ``rabbit`` is refused
with "enable one of: rabbit", since devstack would configure them with no bus at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable
from urllib.parse import quote

from stackmagic.catalog.base import Process, Project
from stackmagic.catalog.system_user import check_reachable, require_account
from stackmagic.errors import ConfigError, StackError
from stackmagic.health import CommandCheck

if TYPE_CHECKING:
    from stackmagic.context import Context

PORT, EPMD_PORT, DIST_PORT = 5672, 4369, 25672
SYSTEM_USER = "rabbitmq"
LIB = Path("/usr/lib/rabbitmq/bin")
SERVER = LIB / "rabbitmq-server"
EPMD = "/usr/bin/epmd"
LOOPBACK = "127.0.0.1"
TOOLS = ("rabbitmqctl", "rabbitmq-diagnostics")


# -- for the services that use the bus ---------------------------------------------------------
def transport_url(ctx: "Context", virtual_host: str = "") -> str:
    """``rabbit://user:password@host:port/<virtual_host>`` (devstack's get_transport_url)."""
    s = ctx.settings
    host = s.get("RABBIT_HOST") or s.service_host
    if ":" in host:
        host = f"[{host}]"
    user, password = quote(_user(ctx), safe=""), quote(_password(ctx), safe="")
    return f"rabbit://{user}:{password}@{host}:{s.int('RABBIT_PORT', PORT)}/{virtual_host}"


def iniset_rpc_backend(ctx: "Context", path: Path, section: str = "DEFAULT", virtual_host: str = "") -> None:
    """devstack's iniset_rpc_backend: ``transport_url`` in ``section``, and the heartbeat
    settings ``RABBIT_HEARTBEAT_TIMEOUT_THRESHOLD`` / ``RABBIT_HEARTBEAT_RATE`` when set."""
    s = ctx.settings
    ctx.iniset(path, section, "transport_url", transport_url(ctx, virtual_host))
    for setting, option in (("RABBIT_HEARTBEAT_TIMEOUT_THRESHOLD", "heartbeat_timeout_threshold"),
                            ("RABBIT_HEARTBEAT_RATE", "heartbeat_rate")):
        if s.get(setting):
            ctx.iniset(path, "oslo_messaging_rabbit", option, s.get(setting))


# -- where things are --------------------------------------------------------------------------
def base(ctx: "Context") -> Path:
    return ctx.settings.data_dir / "rabbit"


def node_name(ctx: "Context") -> str:
    """This stack's node: one name per DATA_DIR."""
    digest = hashlib.sha256(str(ctx.settings.data_dir.resolve()).encode()).hexdigest()[:10]
    return f"stackmagic-{digest}@localhost"


def env_file(ctx: "Context") -> Path:
    return base(ctx) / "rabbitmq-env.conf"


def tool(ctx: "Context", name: str = "rabbitmqctl") -> Path:
    """This stack's wrapper of a RabbitMQ command line tool (``rabbitmqctl``, ``rabbitmq-diagnostics``)."""
    return base(ctx) / "bin" / name


def _run_as() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


class Rabbit(Project):
    name = "rabbit"
    services = {"rabbit": "RabbitMQ message broker"}
    provides = {"message-bus": "start"}     # the node runs, and its user exists (imported at boot)
    persistent = True                       # a plain unstack keeps it, as devstack's unstack.sh
    ports = {"RABBIT_PORT": PORT, "RABBIT_EPMD_PORT": EPMD_PORT, "RABBIT_DIST_PORT": DIST_PORT}
    system_packages = ("rabbitmq-server",)

    def configure(self, ctx: "Context") -> None:
        if not SERVER.exists():
            raise StackError(f"{SERVER} is missing: install Debian's rabbitmq-server "
                             "(apt-get install -y rabbitmq-server)")
        s = ctx.settings
        ports = {name: s.int(name, default) for name, default in self.ports.items()}
        if len(set(ports.values())) != len(ports):
            raise ConfigError("RABBIT_PORT, RABBIT_EPMD_PORT and RABBIT_DIST_PORT must differ; they are "
                              + ", ".join(f"{k}={v}" for k, v in ports.items()))
        root = base(ctx)
        user = _run_as()
        # The broker's account owns only what it writes (its data and logs) and the two secrets
        # it reads; the scripts root runs (health, tools) stay root's.
        if user:
            require_account(user, "rabbitmq-server")
        for sub in ("", "bin", "mnesia", "log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            if user and sub in ("mnesia", "log"):
                shutil.chown(root / sub, user, user)
        if user:
            check_reachable(root, user, "RabbitMQ")
        cookie = root / ".erlang.cookie"
        if not cookie.exists():
            self._write(ctx, cookie, secrets.token_hex(20), 0o400, owner=user)
        self._write(ctx, root / "definitions.json", self.definitions(ctx), 0o600, owner=user)
        self._write(ctx, env_file(ctx), self.env_text(ctx), 0o644)
        self._write(ctx, root / "rabbitmq.conf", self.conf_text(ctx), 0o644)
        self._write(ctx, root / "enabled_plugins", "[].\n", 0o644)
        self._write(ctx, root / "bin" / "rabbit-server", self.launcher(ctx), 0o755)
        wrapper = self.tool_wrapper(ctx)
        for name in TOOLS:
            self._write(ctx, tool(ctx, name), wrapper, 0o755)
        self._write(ctx, root / "bin" / "health", self.health_script(ctx), 0o755)
        ctx.log(f"RabbitMQ node {node_name(ctx)}: AMQP on {s.service_listen}:{ports['RABBIT_PORT']}, "
                f"epmd on {LOOPBACK}:{ports['RABBIT_EPMD_PORT']}, distribution on "
                f"{LOOPBACK}:{ports['RABBIT_DIST_PORT']}, user {_user(ctx)}")

    def processes(self, ctx: "Context") -> Iterable[Process]:
        s = ctx.settings
        port, host = s.int("RABBIT_PORT", PORT), s.service_listen
        root = base(ctx)
        yield Process("rabbit", ["/bin/bash", str(root / "bin" / "rabbit-server")], cwd=root,
                      health=CommandCheck((str(root / "bin" / "health"),), timeout=30),
                      endpoint=f"amqp://{s.get('RABBIT_HOST') or s.service_host}:{port}",
                      host=host, port=port, timeout=180, user=_run_as(), stop_timeout=60)

    def unstack(self, ctx: "Context") -> None:
        if not ctx.tmux.is_running("rabbit"):
            _stop_strays(ctx)

    def cleanup(self, ctx: "Context") -> None:
        _stop_strays(ctx)
        shutil.rmtree(base(ctx), ignore_errors=True)

    # -- the files ---------------------------------------------------------------------------
    @staticmethod
    def _write(ctx: "Context", path: Path, text: str, mode: int, owner: str | None = None) -> None:
        ctx.write_file(path, text, mode=mode)
        if owner:
            shutil.chown(path, owner, owner)

    def env_text(self, ctx: "Context") -> str:
        """rabbitmq-env.conf: read by the server's and the tools' scripts (shell syntax)."""
        s, root = ctx.settings, base(ctx)
        dist_args = f"-kernel inet_dist_use_interface {{{LOOPBACK.replace('.', ',')}}}"
        values = {
            "NODENAME": node_name(ctx),
            "USE_LONGNAME": "false",
            "CONFIG_FILE": root / "rabbitmq.conf",
            "ADVANCED_CONFIG_FILE": root / "advanced.config",
            "MNESIA_BASE": root / "mnesia",
            "LOG_BASE": root / "log",
            "ENABLED_PLUGINS_FILE": root / "enabled_plugins",
            "DIST_PORT": s.int("RABBIT_DIST_PORT", DIST_PORT),
            "ERL_EPMD_PORT": s.int("RABBIT_EPMD_PORT", EPMD_PORT),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            # the broker and the tools listen for Erlang distribution on loopback only
            "SERVER_ADDITIONAL_ERL_ARGS": f"{dist_args} -start_epmd false",
            "CTL_ERL_ARGS": dist_args,
        }
        lines = ["# Written by stackmagic (catalog/rabbit.py) at each configure: edits are lost."]
        lines += [f"{k}={shlex.quote(str(v))}" for k, v in values.items()]
        lines.append(f"export ERL_CRASH_DUMP={shlex.quote(str(root / 'log' / 'erl_crash.dump'))}")
        return "\n".join(lines) + "\n"

    def conf_text(self, ctx: "Context") -> str:
        s, root = ctx.settings, base(ctx)
        return "\n".join([
            "# Written by stackmagic (catalog/rabbit.py) at each configure: edits are lost.",
            f"listeners.tcp.default = {s.service_listen}:{s.int('RABBIT_PORT', PORT)}",
            f"load_definitions = {root / 'definitions.json'}",
            "log.file.level = info",
            "log.console = true",
            "log.console.level = info",
            "log.console.use_colors = off",
        ]) + "\n"

    def definitions(self, ctx: "Context") -> str:
        """The user, vhost ``/`` and permissions, with the password as RabbitMQ's salted SHA-256
        (``rabbit_password_hashing_sha256``: base64 of salt + sha256(salt + password))."""
        user = _user(ctx)
        salt = secrets.token_bytes(4)
        digest = hashlib.sha256(salt + _password(ctx).encode()).digest()
        return json.dumps({
            "users": [{"name": user, "password_hash": base64.b64encode(salt + digest).decode(),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}],
            "vhosts": [{"name": "/"}],
            "permissions": [{"user": user, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
        }, indent=1) + "\n"

    def launcher(self, ctx: "Context") -> str:
        """The window's program: epmd (in the foreground of this family), then the broker."""
        s, root = ctx.settings, base(ctx)
        epmd_port, dist_port = s.int("RABBIT_EPMD_PORT", EPMD_PORT), s.int("RABBIT_DIST_PORT", DIST_PORT)
        q = shlex.quote
        return f"""#!/bin/bash
# Written by stackmagic (catalog/rabbit.py) at each configure: edits are lost.
# Runs in tmux window rabbit: epmd as a child (not a daemon), then rabbitmq-server in the foreground.
export HOME={q(str(root))} RABBITMQ_CONF_ENV_FILE={q(str(env_file(ctx)))}
cd "$HOME" || exit 1
answers() {{ {EPMD} -port {epmd_port} -names >/dev/null 2>&1; }}
epmd_pid=
if answers; then
  echo "an epmd already answers on port {epmd_port} (RABBIT_EPMD_PORT); the node registers with it"
else
  {EPMD} -port {epmd_port} -address {LOOPBACK} </dev/null >>log/epmd.log 2>&1 &
  epmd_pid=$!
  for _ in $(seq 200); do answers && break; kill -0 "$epmd_pid" 2>/dev/null || break; sleep 0.05; done
  if ! answers; then
    echo "epmd could not listen on {LOOPBACK}:{epmd_port}: choose another RABBIT_EPMD_PORT"
    tail -n 5 log/epmd.log
    exit 1
  fi
fi
if (exec 3<>/dev/tcp/{LOOPBACK}/{dist_port}) 2>/dev/null; then
  echo "{LOOPBACK}:{dist_port} is held by another program: choose another RABBIT_DIST_PORT"
  [ -n "$epmd_pid" ] && kill "$epmd_pid"
  exit 1
fi
{SERVER}
status=$?
[ -n "$epmd_pid" ] && kill "$epmd_pid" 2>/dev/null
exit "$status"
"""

    def tool_wrapper(self, ctx: "Context") -> str:
        root = base(ctx)
        return f"""#!/bin/sh
# Written by stackmagic (catalog/rabbit.py): Debian's tool of this name, against this stack's node.
export HOME={shlex.quote(str(root))} RABBITMQ_CONF_ENV_FILE={shlex.quote(str(env_file(ctx)))}
exec {LIB}/"$(basename "$0")" "$@"
"""

    def health_script(self, ctx: "Context") -> str:
        """Healthy: the AMQP port answers, then the node says it runs. The tools are asked only
        once the port answers: with no epmd on their port they would start a daemon one."""
        s = ctx.settings
        host = s.get("RABBIT_HOST") or s.service_host
        port = s.int("RABBIT_PORT", PORT)
        return f"""#!/bin/bash
# Written by stackmagic (catalog/rabbit.py): the health check of service rabbit.
if ! (exec 3<>/dev/tcp/{host}/{port}) 2>/dev/null; then
  echo "AMQP port {host}:{port} closed"
  exit 1
fi
exec {shlex.quote(str(tool(ctx, 'rabbitmq-diagnostics')))} check_running --timeout 20
"""


# -- settings -----------------------------------------------------------------------------------
def _user(ctx: "Context") -> str:
    user = ctx.settings.get("RABBIT_USERID") or "stackrabbit"
    if not user.isprintable() or not user.strip():
        raise ConfigError(f"RABBIT_USERID={user!r}: use a printable name")
    return user


def _password(ctx: "Context") -> str:
    password = ctx.settings.rabbit_password
    if not password:
        raise ConfigError("RABBIT_PASSWORD is empty; set it, or leave it unset to have one generated")
    return password


# -- the machine ----------------------------------------------------------------------------------
def _ours(ctx: "Context", pid: int) -> bool:
    """Whether ``pid`` was started for this stack's broker (its environment names our env file)."""
    wanted = f"RABBITMQ_CONF_ENV_FILE={env_file(ctx)}".encode()
    try:
        return wanted in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _stop_strays(ctx: "Context") -> None:
    """Stop an epmd or Erlang node of this stack that outlived its window: a daemon epmd the
    command line tools started, or a broker whose launcher was killed. Found by the ports it
    holds and our env file in its environment; never by name."""
    from stackmagic import ports
    from stackmagic.tmux import stop_pid

    s = ctx.settings
    for setting, default in (("RABBIT_PORT", PORT), ("RABBIT_DIST_PORT", DIST_PORT),
                             ("RABBIT_EPMD_PORT", EPMD_PORT)):
        holder = ports.who_listens(s.int(setting, default))
        if holder and holder[0] and _ours(ctx, holder[0]):
            ctx.log(f"stopping pid {holder[0]} ({holder[1][:60]}), left on {setting}")
            stop_pid(holder[0], 30)


def add_vhost(ctx: "Context", vhost: str) -> None:
    """devstack's rpc_backend_add_vhost: ``vhost`` on this stack's broker, RABBIT_USERID may use it."""
    ctl = tool(ctx, "rabbitmqctl")
    ctx.run(ctl, "add_vhost", vhost, timeout=120)           # one that exists is no error
    user = ctx.settings.get("RABBIT_USERID") or "stackrabbit"
    ctx.run(ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*", timeout=120)
