"""Run INSIDE the stack's venv, imported by the *_script.py files beside it (their directory is
sys.path[0]): the database and log helpers they share. Imports nothing from stackmagic."""

import datetime
import os


def engine(conf):
    import sqlalchemy

    return sqlalchemy.create_engine(conf.database.connection, poolclass=sqlalchemy.pool.NullPool)


def _utc(dt):
    return dt.replace(tzinfo=datetime.timezone.utc) if dt.tzinfo is None else dt


def started_at(log, service):
    """When stackmagic last started ``service``, from its header line in ``log`` (read from the end)."""
    marker = f" start {service}: ".encode()
    try:
        fh = open(log, "rb")
    except OSError:
        return None
    with fh:
        end = fh.seek(0, os.SEEK_END)
        carry = b""
        while end > 0:
            size = min(end, 1 << 20)
            end -= size
            fh.seek(end)
            lines = (fh.read(size) + carry).split(b"\n")
            carry = lines.pop(0) if end else b""    # a line that began in the block before
            for line in reversed(lines):
                if line.startswith(b"--- ") and marker in line:
                    stamp = line[4:].split(b" start ", 1)[0].decode()
                    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S %z")
    return None


def heartbeat_verdict(who, heartbeat, down_time, option, up, log=None, service=None):
    """Print one line on whether ``who`` is up by its last report at ``heartbeat`` and return the
    exit code: down when the report is more than ``down_time`` s away (``option`` names that
    setting), and, with ``log``, when it is older than the last start of ``service`` recorded
    there (``started_at``): a report left by the process before a restart does not count.
    When up, the line says ``up`` (e.g. ``alive, up`` or ``up, disabled``)."""
    heartbeat = _utc(heartbeat)
    age = (datetime.datetime.now(datetime.timezone.utc) - heartbeat).total_seconds()
    if abs(age) > down_time:
        print(f"{who}: down (last report {age:.0f} s ago, {option} {down_time} s)")
        return 1
    if log:
        since = started_at(log, service)
        # the database keeps whole seconds
        if since is not None and heartbeat < since - datetime.timedelta(seconds=1):
            print(f"{who}: no report since it was started at {since:%H:%M:%S}")
            return 1
    print(f"{who}: {up} (last report {max(age, 0):.0f} s ago)")
    return 0


def load_conf(files, project, **int_options):
    """``host``, ``[database] connection`` and the integer options named (with their defaults)
    from ``files``, as ``project`` reads them."""
    import socket

    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("host", default=socket.gethostname()),
                        *(cfg.IntOpt(name, default=value) for name, value in int_options.items())])
    conf.register_opt(cfg.StrOpt("connection", secret=True), group="database")
    args = []
    for f in files:
        args += ["--config-file", f]
    conf(args, project=project, default_config_files=[], default_config_dirs=[])
    if not conf.database.connection:
        raise SystemExit(f"no [database] connection in {', '.join(files)}")
    return conf
