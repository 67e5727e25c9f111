"""Run INSIDE the stack's venv (it needs oslo.config, keystoneauth1, openstacksdk): what
stackmagic asks of a running Cinder. Executed by path with the venv's python; it imports nothing
from stackmagic. Passwords come from the config file named here or from stdin, never argv.

``pools --conf F --url U [--backend HOST@NAME]``
    Ask Cinder's API at ``U`` (``http://host:port/v3``) for the scheduler's pools, as the service
    user of ``[keystone_authtoken]`` in ``F``. Exit 0 when the scheduler answers (that call goes
    to cinder-scheduler over the message bus) and, with ``--backend``, when it lists a pool of
    that backend: cinder-volume has set up its driver and reported its capacity, so volumes can
    be made there. Prints one line saying why.
``service-up --conf F --url U --binary B [--host H]``
    Exit 0 when the API counts service ``B`` of this host up (``openstack volume service list``).
``types``
    stdin: JSON ``{"auth": {...openstack.connect kwargs...}, "types": [{"name", "extra_specs"}]}``.
    Creates the volume types that are missing (by name), as devstack's create_volume_types.
``ids``
    stdin: JSON ``{"auth": {...}, "project": P, "user": U}``; prints ``{"project_id", "user_id"}``
    of that project and user of the Default domain (cinder's internal tenant).
"""

import argparse
import json
import socket
import sys


def service_session(conf_file):
    """A keystoneauth session as the ``[keystone_authtoken]`` user of ``conf_file``."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    names = ("auth_url", "username", "password", "project_name", "user_domain_name",
             "project_domain_name")
    conf.register_opts([cfg.StrOpt(n, secret=(n == "password")) for n in names],
                       group="keystone_authtoken")
    conf(["--config-file", conf_file], project="cinder", default_config_files=[],
         default_config_dirs=[])
    a = conf.keystone_authtoken
    auth = v3.Password(auth_url=a.auth_url, username=a.username, password=a.password,
                       project_name=a.project_name, user_domain_name=a.user_domain_name,
                       project_domain_name=a.project_domain_name)
    # short: a get_pools sent before the scheduler listens is lost and waits out the timeout
    return session.Session(auth=auth, timeout=8)


def api_get(args, path):
    """(status, body) of GET ``<url>/<project id><path>``; (None, reason) when it cannot ask."""
    try:
        sess = service_session(args.conf)
        project = sess.get_project_id()
        resp = sess.get(f"{args.url.rstrip('/')}/{project}{path}", raise_exc=False,
                        headers={"Accept": "application/json"})
    except Exception as err:  # noqa: BLE001 - the reason is the answer
        return None, f"cannot ask Cinder's API ({type(err).__name__}: {str(err)[:120]})"
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, {}


def pools(args):
    status, body = api_get(args, "/scheduler-stats/get_pools")
    if status is None:
        print(body)
        return 1
    if status != 200:
        print(f"get_pools answered HTTP {status}: {str(body)[:160]}")
        return 1
    names = [p.get("name", "") for p in body.get("pools", [])]
    if not args.backend:
        print(f"cinder-scheduler answers: {len(names)} pool(s)")
        return 0
    mine = [n for n in names if n.split("#")[0] == args.backend]
    if not mine:
        print(f"no pool of {args.backend} at the scheduler yet (pools: {', '.join(names) or 'none'})")
        return 1
    print(f"{args.backend} reports pool {mine[0]}")
    return 0


def service_up(args):
    status, body = api_get(args, f"/os-services?binary={args.binary}")
    if status != 200:
        print(body if status is None else f"os-services answered HTTP {status}")
        return 1
    host = args.host or socket.gethostname()
    rows = [s for s in body.get("services", []) if s.get("host", "").split("@")[0] == host]
    if not rows:
        print(f"{args.binary} on {host}: no service record yet")
        return 1
    state = rows[0].get("state")
    print(f"{args.binary} on {host}: {state}, {rows[0].get('status')}")
    return 0 if state == "up" else 1


def types(_args):
    import openstack

    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["auth"])
    have = {t.name: t for t in conn.block_storage.types()}
    for want in spec["types"]:
        found = have.get(want["name"])
        if found is None:
            found = conn.block_storage.create_type(name=want["name"],
                                                   extra_specs=want.get("extra_specs") or {})
            print(f"volume type {want['name']}: created (id {found.id})", flush=True)
            continue
        missing = {k: v for k, v in (want.get("extra_specs") or {}).items()
                   if (found.extra_specs or {}).get(k) != v}
        if missing:
            conn.block_storage.update_type_extra_specs(found, **missing)
        print(f"volume type {want['name']}: present", flush=True)
    return 0


def ids(_args):
    import openstack

    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["auth"])
    project = conn.identity.find_project(spec["project"], domain_id="default", ignore_missing=False)
    user = conn.identity.find_user(spec["user"], domain_id="default", ignore_missing=False)
    print(json.dumps({"project_id": project.id, "user_id": user.id}))
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("pools", "service-up"):
        p = sub.add_parser(name)
        p.add_argument("--conf", required=True)
        p.add_argument("--url", required=True)
        if name == "pools":
            p.add_argument("--backend")
        else:
            p.add_argument("--binary", required=True)
            p.add_argument("--host")
    sub.add_parser("types")
    sub.add_parser("ids")
    args = parser.parse_args()
    return {"pools": pools, "service-up": service_up, "types": types, "ids": ids}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
