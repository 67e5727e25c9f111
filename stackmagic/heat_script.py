"""Run INSIDE the stack's venv (it needs oslo.config and SQLAlchemy): what stackmagic asks of a
running Heat. Executed by path with the venv's python; it imports nothing from stackmagic.
Passwords come from the config file named here, never argv.

``engine-up --conf F [--log L --service S]``
    Exit 0 when every heat-engine worker of this host (``num_engine_workers``) is up as
    ``openstack orchestration service list`` counts it: its row in Heat's ``service`` table
    (``[database] connection`` of F) not deleted, and its last report (``updated_at``, else
    ``created_at``) within twice its ``report_interval``. With ``--log``, only reports newer
    than the last ``--- <time> start S:`` header stackmagic wrote there count: rows left by
    the workers before a restart do not. Prints one line saying why.
"""

import argparse
import datetime
import sys

import venv_db  # beside this file (sys.path[0])
from venv_db import heartbeat_verdict


def engine_up(args):
    import sqlalchemy

    conf = venv_db.load_conf(args.conf, "heat", num_engine_workers=4)
    service = sqlalchemy.table("service", *map(sqlalchemy.column, (
        "host", "binary", "report_interval", "created_at", "updated_at", "deleted_at")))
    query = (sqlalchemy.select(service.c.created_at, service.c.updated_at, service.c.report_interval)
             .where(service.c.host == conf.host, service.c.binary == "heat-engine",
                    service.c.deleted_at.is_(None)))
    who = f"heat-engine on {conf.host}"
    found = venv_db.rows(conf, query, f"{who}: cannot read its service records")
    if found is None:
        return 1
    since = venv_db.started_at(args.log, args.service) if args.log else None
    now = datetime.datetime.now(datetime.timezone.utc)
    reports = []
    for created, updated, interval in found:
        beat = venv_db.utc(updated or created)
        if since is not None and beat < since - datetime.timedelta(seconds=1):
            continue            # a worker of the process before the last start
        if (now - beat).total_seconds() <= 2 * interval:
            reports.append((beat, interval))
    wanted = conf.num_engine_workers
    if len(reports) < wanted:
        print(f"{who}: {len(reports)} of {wanted} engine workers up")
        return 1
    beat, interval = max(reports)
    return heartbeat_verdict(who, beat, 2 * interval, "2 x report_interval",
                             f"{len(reports)} workers up", args.log, args.service)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    venv_db.heartbeat_command(sub, "engine-up")
    args = parser.parse_args()
    return {"engine-up": engine_up}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
