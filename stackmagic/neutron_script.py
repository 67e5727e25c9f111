"""Run INSIDE the stack's venv (it needs oslo.config and SQLAlchemy): what stackmagic asks of a
running Neutron. Executed by path with the venv's python; it imports nothing from stackmagic.
Passwords come from the config files named here, never argv.

``agent-alive --conf F [--conf F2] --type T [--log L --service S]``
    Exit 0 when Neutron itself counts the agent of type ``T`` on this host alive, as its API
    does (``heartbeat_timestamp`` within ``agent_down_time``), in the database of
    ``[database] connection``. With ``--log``, the report must be newer than the last
    ``--- <time> start S:`` header stackmagic wrote there: a row left by the agent before a
    restart does not count. Prints one line saying why.
"""

import argparse
import datetime
import sys

import venv_db  # beside this file (sys.path[0])
from venv_db import _utc, engine, started_at


def load_conf(files):
    return venv_db.load_conf(files, "neutron", agent_down_time=75)


def agent_alive(args):
    import sqlalchemy

    conf = load_conf(args.conf)
    agents = sqlalchemy.table("agents", *map(sqlalchemy.column, (
        "host", "agent_type", "heartbeat_timestamp", "admin_state_up")))
    query = (sqlalchemy.select(agents.c.heartbeat_timestamp, agents.c.admin_state_up)
             .where(agents.c.host == conf.host, agents.c.agent_type == args.type))
    try:
        with engine(conf).connect() as db:
            row = db.execute(query).first()
    except Exception as err:  # noqa: BLE001 - the reason is the answer
        print(f"{args.type}: cannot read the agents table ({type(err).__name__})")
        return 1
    if row is None:
        print(f"{args.type} on {conf.host}: not registered yet")
        return 1
    heartbeat = _utc(row[0])
    age = (datetime.datetime.now(datetime.timezone.utc) - heartbeat).total_seconds()
    if abs(age) > conf.agent_down_time:
        print(f"{args.type} on {conf.host}: down (last report {age:.0f} s ago, "
              f"agent_down_time {conf.agent_down_time} s)")
        return 1
    if args.log:
        since = started_at(args.log, args.service)
        if since is not None and heartbeat < since - datetime.timedelta(seconds=1):
            print(f"{args.type} on {conf.host}: no report since it was started at {since:%H:%M:%S}")
            return 1
    state = "up" if row[1] else "administratively down"
    print(f"{args.type} on {conf.host}: alive, {state} (last report {max(age, 0):.0f} s ago)")
    return 0


def main():
    parser = argparse.ArgumentParser(prog="neutron_script.py")
    sub = parser.add_subparsers(dest="command", required=True)
    alive = sub.add_parser("agent-alive")
    alive.add_argument("--conf", action="append", required=True)
    alive.add_argument("--type", required=True)
    alive.add_argument("--log")
    alive.add_argument("--service")
    args = parser.parse_args()
    return {"agent-alive": agent_alive}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
