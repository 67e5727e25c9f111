"""Run INSIDE the stack's venv (it needs Trove itself): what stackmagic asks of Trove in one
process instead of one ``trove-manage`` each. Executed by path with the venv's python; it imports
nothing from stackmagic. Passwords come from the config file named here, never argv.

``datastores --conf F --templates DIR NAME:VERSION ...``
    What the devstack plugin's create_guest_image does for each datastore of TROVE_DATASTORES
    through trove-manage, with Trove's own functions: the datastore (``datastore_update NAME
    ""``), its version as active, found by the image tag ``trove`` (``datastore_version_update
    NAME VERSION NAME "" "" 1 --image-tags trove``), the version as the datastore's default
    (``datastore_update NAME VERSION``), and its configuration parameters from
    ``DIR/NAME/validation-rules.json`` when Trove ships one
    (``db_load_datastore_config_parameters``). Prints a line per datastore.

``rpc-ping --conf F --topic T [--key K]``
    Exit 0 when the Trove service that serves topic T on this host (``[DEFAULT] host``) answers
    oslo.messaging's ping (``oslo_rpc_server_ping``, served when ``rpc_ping_enabled`` is true)
    over the stack's message bus, through Trove's own RPC client and serializers; ``--key`` names
    the option holding the key its messages are encrypted with (the task manager's
    ``taskmanager_rpc_encr_key``; the conductor's have none). Prints one line saying why.
"""

import argparse
import logging
import os
import sys
import warnings

# the services monkeypatch on import of trove.cmd; nothing here needs it
os.environ.setdefault("NO_EVENTLET_MONKEYPATCH", "1")
# the last line printed is the verdict stackmagic shows: no library's warnings after it
# (eventlet's deprecation warning on import, log records without a handler)
warnings.simplefilter("ignore")
logging.getLogger().addHandler(logging.NullHandler())

IMAGE_TAGS = "trove"


def load(conf_file):
    from trove.common import cfg

    cfg.parse_args(["trove", "--config-file", conf_file], default_config_files=[])
    return cfg.CONF


def datastores(args):
    load(args.conf)
    from trove.configuration import models as config_models
    from trove.datastore import models

    for pair in args.datastore:
        name, _, version = pair.partition(":")
        models.update_datastore(name, None)
        models.update_datastore_version(name, version, name, "", IMAGE_TAGS, "", 1)
        models.update_datastore(name, version)
        rules = os.path.join(args.templates, name, "validation-rules.json")
        loaded = ""
        if os.path.isfile(rules):
            config_models.load_datastore_configuration_parameters(name, version, rules)
            loaded = ", its configuration parameters loaded"
        print(f"datastore {name} {version}: active, default, image tag {IMAGE_TAGS}{loaded}")
    return 0


def rpc_ping(args):
    conf = load(args.conf)
    import oslo_messaging as messaging

    from trove import rpc
    from trove.common import context

    who = f"{args.topic} on {conf.host}"
    rpc.init(conf)
    try:
        key = getattr(conf, args.key) if args.key else None
        target = messaging.Target(topic=args.topic, server=conf.host)
        client = rpc.get_client(target, key=key).prepare(timeout=args.timeout)
        try:
            answer = client.call(context.TroveContext(), "oslo_rpc_server_ping")
        except messaging.MessagingTimeout:
            print(f"{who}: no answer to a ping within {args.timeout} s")
            return 1
        except Exception as err:  # noqa: BLE001 - the reason is the answer
            print(f"{who}: ping failed ({type(err).__name__})")
            return 1
    finally:
        rpc.cleanup()
    if answer != "pong":
        print(f"{who}: answered {answer!r} to a ping")
        return 1
    print(f"{who}: answers over the message bus")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ds = sub.add_parser("datastores")
    ds.add_argument("--conf", required=True)
    ds.add_argument("--templates", required=True)
    ds.add_argument("datastore", nargs="+")
    ping = sub.add_parser("rpc-ping")
    ping.add_argument("--conf", required=True)
    ping.add_argument("--topic", required=True)
    ping.add_argument("--key")
    ping.add_argument("--timeout", type=int, default=5)
    args = parser.parse_args()
    return {"datastores": datastores, "rpc-ping": rpc_ping}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
