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
import sys

import venv_db  # beside this file (sys.path[0])
from venv_db import engine, heartbeat_verdict


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
    state = "up" if row[1] else "administratively down"
    return heartbeat_verdict(f"{args.type} on {conf.host}", row[0], conf.agent_down_time,
                             "agent_down_time", f"alive, {state}", args.log, args.service)


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
