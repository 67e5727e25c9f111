"""Servers that root starts under a Debian system account (rabbitmq, etcd): the account must
exist, and it must be able to reach its directory under DATA_DIR."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from pathlib import Path

from stackmagic.errors import StackError


def run_as(account: str) -> str | None:
    """The user a Debian server runs as: its package's system ``account`` when root starts it
    (as the package's own unit would), else the current user (None)."""
    return account if os.geteuid() == 0 else None


def require_account(user: str, package: str) -> None:
    """Raise, naming the package that makes it, if there is no account ``user``."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise StackError(f"there is no system user {user!r}; Debian's {package} makes it: "
                         f"apt-get install -y {package}") from None


def check_reachable(path: Path, user: str, server: str) -> None:
    """Raise if ``user`` cannot enter every directory above ``path`` (e.g. one of mode 0700)."""
    account = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, account.pw_gid))
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == account.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            owner, group = pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
            raise StackError(
                f"{server} runs as {user!r}, which cannot enter {parent} (mode {st.st_mode & 0o777:o}, "
                f"owner {owner}:{group}), so it cannot reach {path}. Choose a DATA_DIR under "
                f"directories others may enter, or run: chmod o+x {parent}")


def own_data_dir(path: Path, user: str | None, package: str, server: str, mode: int = 0o700) -> None:
    """Make ``path`` (mode ``mode``) for a server that writes there, owned by the system account
    ``user`` that root runs it as (None: the current user runs it), which must reach it."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if user:
        require_account(user, package)
        shutil.chown(path, user, user)
        check_reachable(path, user, server)
