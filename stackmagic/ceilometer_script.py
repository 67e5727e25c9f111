"""The health probes of Ceilometer's agents and Gnocchi's metricd (catalog/ceilometer.py,
catalog/gnocchi.py). Executed by path with the stack's venv python (``consumers`` needs its
oslo.config and amqp); it imports nothing from stackmagic. Each command prints one line saying
why, and exits 0 when healthy. No password is ever an argument.

``heartbeat --socket S``
    A polling agent (central, compute) answers on its heartbeat socket (ceilometer's
    ``[polling] heartbeat_socket_dir``): its heartbeat child runs, and it lists the pollsters
    that have polled and when.

``consumers --conf F --queue Q``
    The notification agent listens: RabbitMQ counts a consumer on queue Q
    (``notifications.info``, where the services' notifications arrive), asked over AMQP (a
    passive declare, which answers the count) at the ``[DEFAULT] transport_url`` of F.

``members --redis-cli C --port P --group G --host H``
    gnocchi-metricd works: a member of this host (``H.<worker>.<uuid>``) is in its tooz group G
    in Redis (``_tooz_group:G``) and its heartbeat key (``_tooz_beats:<member>``) is alive.
"""

import argparse
import socket
import subprocess
import sys


def heartbeat(args):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(args.socket)
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as err:
        print(f"no heartbeat on {args.socket} ({err.strerror or err})")
        return 1
    polled = [line.split()[0] for line in data.decode(errors="replace").splitlines() if line.strip()]
    print(f"heartbeat answers; {len(polled)} pollsters polled" + (f" ({', '.join(polled[:5])}"
                                                                  f"{' ...' if len(polled) > 5 else ''})"
                                                                  if polled else " yet"))
    return 0


def _run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, str(err)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return None, f"{argv[0]} exited {proc.returncode}: {last[0][:160]}"
    return proc.stdout, ""


def consumers(args):
    from urllib.parse import unquote, urlsplit

    import amqp
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("transport_url", secret=True))
    conf(["--config-file", args.conf], project="ceilometer", default_config_files=[],
         default_config_dirs=[])
    url = urlsplit((conf.transport_url or "").split(",")[0])
    where = f"{url.hostname}:{url.port}"
    try:
        with amqp.Connection(where, userid=unquote(url.username or ""),
                             password=unquote(url.password or ""),
                             virtual_host=unquote(url.path[1:]) or "/", connect_timeout=5) as conn:
            _, _, count = conn.channel().queue_declare(args.queue, passive=True)
    except amqp.exceptions.NotFound:
        print(f"queue {args.queue} does not exist yet")
        return 1
    except (OSError, amqp.exceptions.AMQPError) as err:
        print(f"RabbitMQ at {where} does not answer ({type(err).__name__})")
        return 1
    print(f"queue {args.queue}: {count} consumers")
    return 0 if count else 1


def members(args):
    cli = [args.redis_cli, "-h", "127.0.0.1", "-p", str(args.port), "--raw"]
    out, why = _run([*cli, "HKEYS", f"_tooz_group:{args.group}"])
    if out is None:
        print(f"cannot read Redis ({why})")
        return 1
    mine = [m for m in out.split() if m.startswith(f"{args.host}.")]
    alive = []
    for member in mine:
        beat, _ = _run([*cli, "EXISTS", f"_tooz_beats:{member}"])
        if beat is not None and beat.strip() == "1":
            alive.append(member)
    print(f"{len(alive)} live members of {args.group} on {args.host}")
    return 0 if alive else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("heartbeat").add_argument("--socket", required=True)
    queue = sub.add_parser("consumers")
    queue.add_argument("--conf", required=True)
    queue.add_argument("--queue", required=True)
    group = sub.add_parser("members")
    group.add_argument("--redis-cli", required=True)
    group.add_argument("--port", type=int, required=True)
    group.add_argument("--group", required=True)
    group.add_argument("--host", required=True)
    args = parser.parse_args()
    return {"heartbeat": heartbeat, "consumers": consumers, "members": members}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
