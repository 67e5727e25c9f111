"""`stackmagic kernel install`: the Jupyter kernel "Python 3 (stackmagic)" that preloads the magics."""

from __future__ import annotations

from stackmagic.cli.common import console


def register(sub) -> None:
    p = sub.add_parser("kernel", help="install the Jupyter kernel that preloads the magics")
    verbs = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = verbs.add_parser("install", help="install the kernelspec")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python's prefix (a venv)")
    where.add_argument("--prefix", metavar="DIR", help="into DIR/share/jupyter/kernels")
    p.set_defaults(func=run)


def run(args) -> int:
    from stackmagic.kernel import DISPLAY_NAME, install

    path = install(user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix)
    console.print(f"installed kernel \"{DISPLAY_NAME}\" in {path}", markup=False)
    return 0
