"""The quickstart as an ordinary user (Binder runs as one): DEST defaults to ~/stack, nothing
needs root, and a missing Debian package is reported with what to ask an administrator for.

Runs as root (as CI does) by creating a real unprivileged user and a venv of its own with
Debian's python3; slow, run by CI.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, free_port

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create the user")]

ROOT = Path(__file__).resolve().parent.parent
USER = "stackmagic-user"


def as_user(*argv: str, timeout: float = 900, check: bool = False) -> subprocess.CompletedProcess:
    home = pwd.getpwnam(USER).pw_dir
    # the machine's network settings (CA bundle, proxy) stay; the user's own identity replaces ours
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("XDG_", "PYTEST", "VIRTUAL_ENV", "PYENV", "UV_CACHE", "TMUX"))
            and k not in ("HOME", "USER", "LOGNAME", "PATH", "PWD", "OLDPWD", "MAIL", "PYTHONPATH")}
    env = {**keep, "HOME": home, "USER": USER, "LOGNAME": USER, "LANG": "C.UTF-8", "COLUMNS": "200",
           "PATH": f"{home}/venv/bin:/usr/local/bin:/usr/bin:/bin"}
    proc = subprocess.run(["/usr/sbin/runuser", "-u", USER, "--", *argv], capture_output=True, text=True,
                          env=env, cwd=home, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def user():
    created = subprocess.run(["id", USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
    home = Path(pwd.getpwnam(USER).pw_dir)
    src = home / "stackmagic-src"
    for leftover in ("stackmagic-src", "stack", "pkgstack", "needs-pkg-plugin"):
        shutil.rmtree(home / leftover, ignore_errors=True)
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info",
                                                             ".pytest_cache", "build"))
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(src)], check=True)
    as_user("/usr/bin/python3", "-m", "venv", f"{home}/venv", check=True)
    as_user(f"{home}/venv/bin/pip", "install", "-q", str(src), check=True)
    yield home
    as_user(f"{home}/venv/bin/stackmagic", "unstack", "--all")
    subprocess.run(["pkill", "-u", USER, "-x", "tmux"], capture_output=True)
    if created:
        subprocess.run(["userdel", "--remove", USER], capture_output=True)


def test_quickstart_runs_as_an_ordinary_user(user):
    conf = user / "local.conf"
    conf.write_text("\n".join([
        "[[local|localrc]]",
        f"TMUX_SOCKET=stackmagic-user-{uuid.uuid4().hex[:6]}",
        f"KEYSTONE_SERVICE_PORT={free_port()}", f"GLANCE_SERVICE_PORT={free_port()}",
        f"PLACEMENT_SERVICE_PORT={free_port()}", f"MEMCACHED_PORT={free_port()}",
        "source $(python3 -c 'from stackmagic.samples import sample_path; print(sample_path(\"quickstart\"))')",
        ""]))
    shutil.chown(conf, USER, USER)
    as_user("stackmagic", "plan", "-c", str(conf), check=True)
    stack = as_user("stackmagic", "stack", "-c", str(conf), check=True)
    assert "stack finished" in stack.stdout
    assert (user / "stack" / "keystone" / ".git").is_dir()          # DEST defaulted to ~/stack
    assert (user / "stack" / "data" / "stackmagic" / "state.json").is_file()
    owner = {pwd.getpwuid(p.stat().st_uid).pw_name for p in (user / "stack").iterdir()}
    assert owner == {USER}
    verify = as_user("stackmagic", "verify", "-c", str(conf), check=True)
    assert "token: issued" in verify.stdout and "stackmagic-tiny (active" in verify.stdout
    status = as_user("stackmagic", "status", "-c", str(conf))
    assert status.returncode == 0, status.stdout
    down = as_user("stackmagic", "unstack", "--all", "-c", str(conf), check=True)
    assert "stopped" in down.stdout


def test_a_missing_debian_package_says_what_to_ask_for(user, tmp_path):
    import git

    repo_dir = user / "needs-pkg-plugin"
    shutil.copytree(FIXTURES / "echo-plugin", repo_dir)
    plugin = repo_dir / "stackmagic_plugin.py"
    plugin.write_text(plugin.read_text().replace(
        'services = {"echo-api": "Echo API (test fixture)"}',
        'services = {"echo-api": "Echo API (test fixture)"}\n    system_packages = ("cowsay",)'))
    repo = git.Repo.init(repo_dir, initial_branch="master")
    repo.git.add(A=True)
    repo.index.commit("needs a package", author=git.Actor("t", "t@example.invalid"),
                      committer=git.Actor("t", "t@example.invalid"))
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(repo_dir)], check=True)
    assert subprocess.run(["dpkg-query", "-W", "cowsay"], capture_output=True).returncode != 0
    rc = user / "needs-pkg.localrc"
    rc.write_text(f"DEST={user}/pkgstack\nTMUX_SOCKET=stackmagic-pkg-{uuid.uuid4().hex[:6]}\n"
                  f"disable_all_services\nenable_plugin echo {repo_dir.as_uri()}\n"
                  f"enable_service echo-api\nECHO_PORT={free_port()}\n")
    shutil.chown(rc, USER, USER)
    proc = as_user("stackmagic", "stack", "-c", str(rc))
    assert proc.returncode == 1
    assert "only root can install them: cowsay" in proc.stderr
    assert "sudo apt-get install -y cowsay" in proc.stderr
    assert not (user / "pkgstack" / "data" / "venv").exists()     # it stopped before installing
