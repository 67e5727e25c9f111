"""Tests for stackmagic.git: devstack's git_clone semantics on real repositories in tmp dirs.

Every test runs git with a private global/system config (GIT_CONFIG_GLOBAL / GIT_CONFIG_SYSTEM
point at a temp file), so nothing on the machine is read or changed.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git as gitpython
import pytest

from stackmagic.errors import StackError
from stackmagic.git import CloneError, git_clone, head_sha, is_dirty

pytestmark = pytest.mark.timeout(30)


@dataclass
class Origin:
    """An upstream repository: master (3 commits), branch stable/2024.1, tag 1.0.0."""

    repo: gitpython.Repo
    url: str
    first: str
    tagged: str
    stable: str

    def commit(self, text: str) -> str:
        """Add a commit on the checked-out branch of the origin and return its SHA."""
        return _commit(self.repo, text)


def _commit(repo: gitpython.Repo, text: str, filename: str = "README") -> str:
    Path(repo.working_dir, filename).write_text(text + "\n")
    repo.index.add([filename])
    return repo.index.commit(text).hexsha


@pytest.fixture
def gitconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private git config used as both the global and the system config."""
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Test\n\temail = test@example.invalid\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(config))
    for var in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG_PARAMETERS"):
        monkeypatch.delenv(var, raising=False)
    return config


def _make_origin(path: Path) -> Origin:
    repo = gitpython.Repo.init(path, initial_branch="master")
    first = _commit(repo, "one")
    tagged = _commit(repo, "two")
    repo.create_tag("1.0.0", message="release 1.0.0")
    stable_branch = repo.create_head("stable/2024.1")
    stable_branch.checkout()
    stable = _commit(repo, "stable fix", filename="STABLE")
    repo.heads["master"].checkout()
    _commit(repo, "three")
    return Origin(repo=repo, url=path.as_uri(), first=first, tagged=tagged, stable=stable)


@pytest.fixture
def origin(tmp_path: Path, gitconfig: Path) -> Iterator[Origin]:
    made = _make_origin(tmp_path / "origin")
    yield made
    made.repo.close()


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    """The DEST directory the checkouts go into."""
    path = tmp_path / "stack"
    path.mkdir()
    return path


def _commit_count(dest: Path) -> int:
    with gitpython.Repo(dest) as repo:
        return int(repo.git.rev_list("--count", "HEAD"))


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".clone-" in p.name)


# --- fresh clones -------------------------------------------------------------------------


def test_clone_branch_gives_local_branch_tracking_origin(origin: Origin, stack: Path) -> None:
    dest = stack / "nova"
    result = git_clone(origin.url, dest, "stable/2024.1")
    assert result.action == "cloned"
    assert result.sha == origin.stable == head_sha(dest)
    assert result.path == dest and result.ref == "stable/2024.1"
    with gitpython.Repo(dest) as repo:
        assert repo.active_branch.name == "stable/2024.1"
        assert repo.active_branch.tracking_branch().name == "origin/stable/2024.1"
    assert (dest / "STABLE").read_text() == "stable fix\n"
    assert not is_dirty(dest)
    assert _leftovers(stack) == []


def test_clone_default_branch(origin: Origin, stack: Path) -> None:
    result = git_clone(origin.url, stack / "nova")
    assert result.sha == origin.repo.head.commit.hexsha
    assert (stack / "nova" / "README").read_text() == "three\n"


def test_clone_tag_gives_detached_head(origin: Origin, stack: Path) -> None:
    result = git_clone(origin.url, stack / "nova", "1.0.0")
    assert result.sha == origin.tagged
    with gitpython.Repo(stack / "nova") as repo:
        assert repo.head.is_detached
    assert (stack / "nova" / "README").read_text() == "two\n"


@pytest.mark.parametrize("length", [40, 10])
def test_clone_sha_gives_detached_head(origin: Origin, stack: Path, length: int) -> None:
    result = git_clone(origin.url, stack / "nova", origin.first[:length])
    assert result.sha == origin.first
    with gitpython.Repo(stack / "nova") as repo:
        assert repo.head.is_detached
    assert (stack / "nova" / "README").read_text() == "one\n"


def test_clone_into_empty_directory(origin: Origin, stack: Path) -> None:
    (stack / "nova").mkdir()
    assert git_clone(origin.url, stack / "nova").action == "cloned"
    assert (stack / "nova" / "README").is_file()


@pytest.mark.parametrize("ref", ["master", "1.0.0"])
def test_depth_one_clone_has_one_commit(origin: Origin, stack: Path, ref: str) -> None:
    result = git_clone(origin.url, stack / "nova", ref, depth=1)
    assert _commit_count(stack / "nova") == 1
    assert result.sha == origin.repo.commit(ref).hexsha


def test_depth_one_clone_of_older_sha(origin: Origin, stack: Path) -> None:
    result = git_clone(origin.url, stack / "nova", origin.first, depth=1)
    assert result.sha == origin.first
    assert _commit_count(stack / "nova") == 1


# --- present checkouts ----------------------------------------------------------------------


def test_present_checkout_is_kept_even_after_origin_moved(origin: Origin, stack: Path) -> None:
    before = git_clone(origin.url, stack / "nova").sha
    origin.commit("four")
    result = git_clone(origin.url, stack / "nova")
    assert result.action == "kept"
    assert result.sha == before


def test_reclone_moves_to_new_head_and_discards_local_edits(origin: Origin, stack: Path) -> None:
    dest = stack / "nova"
    git_clone(origin.url, dest)
    (dest / "README").write_text("my local edit\n")
    (dest / "untracked.txt").write_text("mine\n")
    assert is_dirty(dest)
    new_head = origin.commit("four")
    result = git_clone(origin.url, dest, reclone=True)
    assert result.action == "updated"
    assert result.sha == new_head == head_sha(dest)
    assert (dest / "README").read_text() == "four\n"
    assert not is_dirty(dest)
    assert (dest / "untracked.txt").read_text() == "mine\n"
    with gitpython.Repo(dest) as repo:
        assert repo.active_branch.name == "master"


def test_reclone_switches_a_shallow_clone_to_another_branch(origin: Origin, stack: Path) -> None:
    dest = stack / "nova"
    git_clone(origin.url, dest, "master", depth=1)
    result = git_clone(origin.url, dest, "stable/2024.1", reclone=True, depth=1)
    assert result.sha == origin.stable
    with gitpython.Repo(dest) as repo:
        assert repo.active_branch.name == "stable/2024.1"
        assert repo.active_branch.tracking_branch().name == "origin/stable/2024.1"


def test_reclone_follows_a_moved_tag(origin: Origin, stack: Path) -> None:
    dest = stack / "nova"
    git_clone(origin.url, dest, "1.0.0")
    retagged = origin.commit("four")
    origin.repo.create_tag("1.0.0", force=True, message="moved")
    result = git_clone(origin.url, dest, "1.0.0", reclone=True)
    assert result.sha == retagged
    with gitpython.Repo(dest) as repo:
        assert repo.head.is_detached


def test_reclone_to_sha(origin: Origin, stack: Path) -> None:
    dest = stack / "nova"
    git_clone(origin.url, dest)
    result = git_clone(origin.url, dest, origin.first, reclone=True)
    assert result.action == "updated"
    assert result.sha == origin.first
    assert (dest / "README").read_text() == "one\n"


# --- offline and error_on_clone -------------------------------------------------------------


def test_offline_keeps_present_checkout_without_network(origin: Origin, stack: Path) -> None:
    before = git_clone(origin.url, stack / "nova").sha
    result = git_clone("file:///nonexistent/nova.git", stack / "nova", reclone=True, offline=True)
    assert result.action == "kept"
    assert result.sha == before


def test_offline_with_missing_checkout_fails(origin: Origin, stack: Path) -> None:
    with pytest.raises(CloneError, match="OFFLINE is set") as info:
        git_clone(origin.url, stack / "nova", offline=True)
    assert str(stack / "nova") in str(info.value)
    assert not (stack / "nova").exists()


def test_error_on_clone_with_missing_checkout_fails(origin: Origin, stack: Path) -> None:
    dest = stack / "nova"
    with pytest.raises(CloneError, match=f"ERROR_ON_CLONE is set, {dest} is missing"):
        git_clone(origin.url, dest, error_on_clone=True)
    assert not dest.exists()


def test_error_on_clone_keeps_present_checkout(origin: Origin, stack: Path) -> None:
    git_clone(origin.url, stack / "nova")
    assert git_clone(origin.url, stack / "nova", error_on_clone=True).action == "kept"


# --- errors ---------------------------------------------------------------------------------


def test_missing_ref_names_it_and_lists_existing_refs(origin: Origin, stack: Path) -> None:
    with pytest.raises(CloneError) as info:
        git_clone(origin.url, stack / "nova", "stable/1999.1", name="nova")
    message = str(info.value)
    assert "'stable/1999.1'" in message and message.startswith("nova:")
    assert "master" in message and "stable/2024.1" in message and "1.0.0" in message
    assert isinstance(info.value, StackError)
    assert not (stack / "nova").exists()
    assert _leftovers(stack) == []


def test_missing_sha_on_reclone_leaves_checkout_alone(origin: Origin, stack: Path) -> None:
    before = git_clone(origin.url, stack / "nova").sha
    with pytest.raises(CloneError, match="'deadbeef'"):
        git_clone(origin.url, stack / "nova", "deadbeef", reclone=True)
    assert head_sha(stack / "nova") == before


def test_dest_that_is_not_a_repo_is_left_untouched(origin: Origin, stack: Path) -> None:
    dest = stack / "nova"
    dest.mkdir()
    (dest / "notes.txt").write_text("precious\n")
    for reclone in (False, True):
        with pytest.raises(CloneError, match="not a git checkout"):
            git_clone(origin.url, dest, reclone=reclone)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert (dest / "notes.txt").read_text() == "precious\n"
    assert head_sha(dest) is None and not is_dirty(dest)


def test_head_sha_and_is_dirty_of_missing_path(tmp_path: Path) -> None:
    assert head_sha(tmp_path / "nope") is None
    assert not is_dirty(tmp_path / "nope")


def test_unreachable_url_fails_with_helpful_message(gitconfig: Path, stack: Path) -> None:
    url = "https://stacker:s3cret@git.example.invalid/openstack/nova.git"
    with pytest.raises(CloneError) as info:
        git_clone(url, stack / "nova", name="nova")
    message = str(info.value)
    assert message.startswith("nova:")
    assert "git.example.invalid/openstack/nova.git" in message
    assert "s3cret" not in message and "stacker" not in message
    assert "\n  fatal: " in message and "stderr: '" not in message  # git's own reason, unwrapped
    assert "GIT_BASE=file://" in message
    assert "url.<mirror>.insteadOf <upstream>" in message
    assert "OFFLINE=True" in message
    assert not (stack / "nova").exists()
    assert _leftovers(stack) == []


class _AuthRequired(http.server.BaseHTTPRequestHandler):
    """Answers every request with 401 Basic, which makes git want to prompt for a username."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep the test output quiet."""


def test_credential_prompt_fails_instead_of_blocking(gitconfig: Path, stack: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthRequired)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/openstack/nova.git"
        with pytest.raises(CloneError, match="terminal prompts disabled"):
            git_clone(url, stack / "nova")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- url.<base>.insteadOf --------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["GIT_CONFIG_SYSTEM", "GIT_CONFIG_GLOBAL"])
def test_insteadof_rewrites_upstream_url_to_mirror(
    tmp_path: Path, gitconfig: Path, stack: Path, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    mirror = tmp_path / "mirror"
    upstream = _make_origin(mirror / "openstack" / "foo.git")
    rules = tmp_path / "rules.gitconfig"
    rules.write_text(f'[url "{mirror.as_uri()}/"]\n\tinsteadOf = https://git.example.invalid/\n')
    monkeypatch.setenv(scope, str(rules))
    upstream_url = "https://git.example.invalid/openstack/foo.git"
    result = git_clone(upstream_url, stack / "foo", "stable/2024.1")
    assert result.action == "cloned"
    assert result.sha == upstream.stable
    upstream.commit("four")
    updated = git_clone(upstream_url, stack / "foo", reclone=True)
    assert updated.sha == upstream.repo.head.commit.hexsha
    upstream.repo.close()


@pytest.mark.parametrize("ref", ["master", "1.0.0"])
def test_reclone_at_same_commit_still_discards_staged_and_unstaged_edits(
    origin: Origin, stack: Path, ref: str
) -> None:
    dest = stack / "nova"
    before = git_clone(origin.url, dest, ref).sha
    (dest / "README").write_text("staged edit\n")
    with gitpython.Repo(dest) as repo:
        repo.index.add(["README"])
    (dest / "README").write_text("unstaged edit on top\n")
    result = git_clone(origin.url, dest, ref, reclone=True)
    assert result.sha == before
    assert not is_dirty(dest)


# --- interrupts and kills -----------------------------------------------------------------


def _slow_transport(gitconfig: Path, origin: Origin, stall: Path) -> None:
    """Make ``origin.url`` reachable only through a transport that waits until ``stall`` goes
    (private git config: ``ext::`` through ``insteadOf``, as an upstream that hangs)."""
    script = stall.with_suffix(".sh")
    script.write_text(f'#!/bin/bash\nwhile [[ -e {stall} ]]; do sleep 0.05; done\nexec "$@"\n')
    script.chmod(0o755)
    path = Path(origin.repo.working_dir)
    with gitconfig.open("a") as fh:
        fh.write(f'[protocol "ext"]\n\tallow = always\n[url "ext::{script} %S {path}"]\n'
                 f"\tinsteadOf = {origin.url}\n")


def test_cancel_stops_a_hanging_clone_at_once_and_leaves_nothing(
        origin: Origin, stack: Path, gitconfig: Path, tmp_path: Path) -> None:
    import time

    from stackmagic import children

    stall = tmp_path / "stall"
    stall.touch()
    _slow_transport(gitconfig, origin, stall)
    cancel = children.Cancel()
    outcome: list[BaseException] = []

    def clone() -> None:
        try:
            git_clone(origin.url, stack / "nova")
        except BaseException as err:  # noqa: BLE001 - the test looks at it
            outcome.append(err)

    worker = threading.Thread(target=clone)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not children._live and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        t0 = time.monotonic()
        cancel.set()              # git_clone never sees the flag: setting it stops its git
        worker.join(timeout=10)
        assert time.monotonic() - t0 < 2.0
    finally:
        stall.unlink()
        worker.join()
    assert outcome and isinstance(outcome[0], children.Cancelled)
    assert not (stack / "nova").exists() and _leftovers(stack) == []


def test_a_clone_left_half_made_by_a_killed_run_is_removed_and_made_again(
        origin: Origin, stack: Path) -> None:
    import subprocess

    # what a killed clone leaves: git's temporary checkout beside the place it was going to
    half = stack / ".nova.clone-dead1234"
    subprocess.run(["git", "clone", "-q", "--no-checkout", origin.url, str(half / "nova")], check=True)
    result = git_clone(origin.url, stack / "nova")
    assert result.action == "cloned" and result.sha == head_sha(stack / "nova")
    assert _leftovers(stack) == []


def test_reclone_after_a_killed_checkout_left_its_index_lock(origin: Origin, stack: Path) -> None:
    git_clone(origin.url, stack / "nova")
    (stack / "nova" / ".git" / "index.lock").write_text("")     # git killed mid-checkout
    new = origin.commit("four")
    result = git_clone(origin.url, stack / "nova", reclone=True)
    assert result.action == "updated" and result.sha == new
