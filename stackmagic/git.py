"""Clone and update source trees the way devstack's ``git_clone`` does, through GitPython.

A missing checkout is cloned at a branch, a tag or a commit SHA. A present checkout is left
alone unless ``reclone`` is set, in which case it is fetched from ``origin`` and hard-reset to
the ref, throwing local edits away. ``offline`` never touches the network; ``error_on_clone``
refuses to clone. Every git command runs with prompts disabled and stdin closed, so nothing
can block a notebook or the engine, and URL rewrites from ``git config url.<base>.insteadOf``
apply as they do for plain git.

What talks to the remote or rewrites the tree (ls-remote, clone, fetch, checkout) runs as a
command of :mod:`stackmagic.children`: it dies with stackmagic and stops at once when the run is
cancelled. A clone is made under a temporary name next to its place and renamed into place when
complete, so a checkout is never half made; the temporary trees a killed run left are removed by
the next clone of that project. GitPython reads what is there (HEAD, dirtiness).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git as gitpython

from stackmagic import children
from stackmagic.errors import StackError

_RefKind = Literal["branch", "tag", "other"]
Action = Literal["cloned", "kept", "updated"]

_SHA = re.compile(r"[0-9a-fA-F]{4,40}")
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
# GitCommandError.stderr wraps git's output as "stderr: '...'"
_GITPYTHON_STDERR = re.compile(r"\Astderr: '(?P<text>.*)'\Z", re.DOTALL)
_LISTED_REFS = 8
_STDERR_LINES = 6

_HINT = (
    "If the upstream host cannot be reached from this machine: point GIT_BASE at a local "
    "mirror (GIT_BASE=file:///path/to/mirror), or rewrite the upstream URL to a mirror with "
    "`git config --system url.<mirror>.insteadOf <upstream>`; if the checkout already exists, "
    "set OFFLINE=True to use it as it is."
)


@dataclass(frozen=True)
class CloneResult:
    """What :func:`git_clone` did to one checkout.

    ``action`` is ``"cloned"`` (it was missing), ``"kept"`` (left as it was) or ``"updated"``
    (fetched and reset because of ``reclone``); ``sha`` is the commit checked out afterwards.
    """

    path: Path
    url: str
    ref: str
    sha: str
    action: Action


class CloneError(StackError):
    """A checkout could not be cloned or updated; the message says why and what to try."""


@dataclass(frozen=True)
class _RemoteRefs:
    heads: frozenset[str]
    tags: frozenset[str]


def git_clone(
    url: str,
    dest: Path,
    ref: str = "master",
    *,
    reclone: bool = False,
    offline: bool = False,
    error_on_clone: bool = False,
    depth: int = 0,
    name: str | None = None,
) -> CloneResult:
    """Make ``dest`` a checkout of ``url`` at ``ref`` (a branch, a tag or a commit SHA).

    A branch is checked out as a local branch tracking ``origin``; a tag or a SHA gives a
    detached HEAD. ``depth > 0`` makes a shallow clone of that many commits. ``name`` (the
    project, default ``dest.name``) is used in error messages. Raises :class:`CloneError` when
    the URL cannot be reached, the ref does not exist, ``dest`` exists but is not a git
    checkout, or the checkout is missing while ``offline`` or ``error_on_clone`` is set.
    """
    dest = Path(dest)
    label = name or dest.name
    if not ref or ref.startswith("-"):
        raise CloneError(
            f"{label}: {ref!r} is not a valid git ref; set the project's *_BRANCH to a branch, "
            "a tag or a commit SHA."
        )
    present = _existing_checkout(dest, label)
    if present and (offline or not reclone):
        return _result(dest, url, ref, "kept")
    if not present and offline:
        raise CloneError(
            f"{label}: OFFLINE is set and the checkout {dest} is missing. Clone it once with "
            f"OFFLINE unset, or copy an existing checkout of {_redact(url)} to {dest}."
        )
    if not present and error_on_clone:
        raise CloneError(
            f"{label}: ERROR_ON_CLONE is set, {dest} is missing. Provide the checkout at that "
            "path, or unset ERROR_ON_CLONE to let stackmagic clone it."
        )
    refs = _remote_refs(url, label)
    kind = _ref_kind(ref, refs)
    if present:
        _update(dest, url, ref, kind, depth, label, refs)
        return _result(dest, url, ref, "updated")
    _clone_new(url, dest, ref, kind, depth, label, refs)
    return _result(dest, url, ref, "cloned")


def head_sha(dest: Path) -> str | None:
    """The commit checked out in ``dest``, or None if ``dest`` is not a git checkout."""
    repo = _open(Path(dest))
    if repo is None:
        return None
    with repo:
        try:
            return repo.head.commit.hexsha
        except ValueError:  # a repository without any commit
            return None


def is_dirty(dest: Path) -> bool:
    """True if tracked files in the checkout ``dest`` have uncommitted changes.

    Untracked files do not count (a reclone keeps them); a path that is not a checkout is not
    dirty.
    """
    repo = _open(Path(dest))
    if repo is None:
        return False
    with repo:
        return repo.is_dirty(untracked_files=False)


def _open(dest: Path) -> gitpython.Repo | None:
    try:
        repo = gitpython.Repo(dest)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        return None
    repo.git.update_environment(**_git_env())
    return repo


def _existing_checkout(dest: Path, label: str) -> bool:
    """True if ``dest`` is a checkout; False if it is missing or an empty directory."""
    if not dest.exists():
        return False
    if dest.is_dir() and not any(dest.iterdir()):
        return False
    if head_sha(dest) is None:
        raise CloneError(
            f"{label}: {dest} exists but is not a git checkout with a commit. stackmagic "
            "leaves it untouched; move it away or delete it so it can be cloned, or point "
            "the project's DEST at another directory."
        )
    return True


def _result(dest: Path, url: str, ref: str, action: Action) -> CloneResult:
    sha = head_sha(dest)
    assert sha is not None, f"{dest} was just checked to be a checkout"
    return CloneResult(path=dest, url=url, ref=ref, sha=sha, action=action)


def _git_env() -> dict[str, str]:
    """Environment for every git command: no terminal or ssh prompts."""
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GCM_INTERACTIVE": "never",
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
    }


def _git(*args: str, cwd: Path | None = None) -> str:
    """Run git (no prompts) as a command that dies with us and stops on cancel; its stdout.
    Failing, it raises :class:`git.GitCommandError` as GitPython does."""
    argv = ["git", *args]
    with tempfile.TemporaryFile() as errors:
        result = children.run(argv, cwd=cwd, env={**os.environ, **_git_env()}, stderr=errors)
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if result.returncode != 0:
        raise gitpython.GitCommandError(argv, result.returncode, stderr, result.output)
    return result.output


def _redact(text: str) -> str:
    """Replace ``user:password@`` in URLs with ``***@``."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def _git_said(err: gitpython.GitCommandError, lines: int) -> str:
    """The last ``lines`` lines of a failed git command's stderr, credentials redacted."""
    stderr = _GITPYTHON_STDERR.sub(r"\g<text>", str(err.stderr or "").strip())
    kept = [line.strip() for line in stderr.splitlines() if line.strip()][-lines:]
    return _redact("\n  ".join(kept)) or f"git exited with status {err.status}"


def _git_failure(label: str, url: str, what: str, err: gitpython.GitCommandError) -> CloneError:
    why = _git_said(err, _STDERR_LINES)
    return CloneError(f"{label}: {what} {_redact(url)} failed:\n  {why}\n{_HINT}")


def _remote_refs(url: str, label: str) -> _RemoteRefs:
    """Branches and tags the remote has (``git ls-remote``)."""
    try:
        listing = _git("ls-remote", "--heads", "--tags", "--", url)
    except gitpython.GitCommandError as err:
        raise _git_failure(label, url, "reading the branches and tags of", err) from err
    heads: set[str] = set()
    tags: set[str] = set()
    for line in listing.splitlines():
        _, _, refname = line.partition("\t")
        if refname.startswith("refs/heads/"):
            heads.add(refname.removeprefix("refs/heads/"))
        elif refname.startswith("refs/tags/") and not refname.endswith("^{}"):
            tags.add(refname.removeprefix("refs/tags/"))
    return _RemoteRefs(heads=frozenset(heads), tags=frozenset(tags))


def _ref_kind(ref: str, refs: _RemoteRefs) -> _RefKind:
    """Tags win over branches of the same name, as in devstack's reclone."""
    if ref in refs.tags:
        return "tag"
    if ref in refs.heads:
        return "branch"
    return "other"


def _missing_ref(
    label: str, url: str, ref: str, refs: _RemoteRefs, err: gitpython.GitCommandError
) -> CloneError:
    def some(names: frozenset[str]) -> str:
        listed = sorted(names)[:_LISTED_REFS]
        more = f", ... ({len(names) - len(listed)} more)" if len(names) > len(listed) else ""
        return (", ".join(listed) + more) or "(none)"

    return CloneError(
        f"{label}: ref {ref!r} is neither a branch, a tag nor a commit of {_redact(url)}.\n"
        f"  git said: {_git_said(err, 1)}\n"
        f"  branches: {some(refs.heads)}\n  tags: {some(refs.tags)}\n"
        "Set the project's *_BRANCH to one of these or to a full commit SHA "
        "(with GIT_DEPTH set, only a full 40-character SHA can be fetched)."
    )


def _clone_new(
    url: str, dest: Path, ref: str, kind: _RefKind, depth: int, label: str, refs: _RemoteRefs
) -> None:
    """Clone into a temporary sibling of ``dest`` and rename it into place when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.clone-*"):     # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.clone-", dir=dest.parent))
    checkout = tmp / dest.name  # made by git, so it gets the usual permissions, not mkdtemp's 0700
    try:
        options = [f"--depth={depth}"] if depth > 0 else []
        options += ["--no-checkout"] if kind == "other" else [f"--branch={ref}"]
        try:
            _git("clone", *options, "--", url, str(checkout))
        except gitpython.GitCommandError as err:
            raise _git_failure(label, url, "cloning", err) from err
        if kind == "other":
            _checkout_commit(checkout, url, ref, depth, label, refs)
        os.replace(checkout, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _update(
    dest: Path,
    url: str,
    ref: str,
    kind: _RefKind,
    depth: int,
    label: str,
    refs: _RemoteRefs,
) -> None:
    """Fetch ``ref`` from ``url`` as origin and hard-reset the checkout to it."""
    # a git killed with its run leaves its lock; no git of ours runs here now (stack's lock)
    (dest / ".git" / "index.lock").unlink(missing_ok=True)
    remotes = _git("remote", cwd=dest).split()
    _git("remote", "set-url" if "origin" in remotes else "add", "origin", url, cwd=dest)
    shallow = [f"--depth={depth}"] if depth > 0 else []
    try:
        if kind == "branch":
            _git("fetch", *shallow, "origin", f"+refs/heads/{ref}:refs/remotes/origin/{ref}", cwd=dest)
            _git("checkout", "-f", "-B", ref, f"refs/remotes/origin/{ref}", cwd=dest)
            _git("config", f"branch.{ref}.remote", "origin", cwd=dest)
            _git("config", f"branch.{ref}.merge", f"refs/heads/{ref}", cwd=dest)
        elif kind == "tag":
            _git("fetch", *shallow, "--force", "origin", f"+refs/tags/{ref}:refs/tags/{ref}", cwd=dest)
            _git("checkout", "-f", "--detach", f"refs/tags/{ref}", cwd=dest)
    except gitpython.GitCommandError as err:
        raise _git_failure(label, url, f"updating to {ref!r} from", err) from err
    if kind == "other":
        _checkout_commit(dest, url, ref, depth, label, refs)


def _checkout_commit(
    checkout: Path, url: str, ref: str, depth: int, label: str, refs: _RemoteRefs
) -> None:
    """Detach HEAD at a SHA (or another ref such as ``refs/changes/...``), fetching it if needed."""
    target = f"{ref}^{{commit}}"
    if not (_SHA.fullmatch(ref) and _resolves(checkout, target)):
        shallow = [f"--depth={depth}"] if depth > 0 else []
        try:
            _git("fetch", *shallow, "origin", ref, cwd=checkout)
        except gitpython.GitCommandError as err:
            raise _missing_ref(label, url, ref, refs, err) from err
        target = "FETCH_HEAD"
    _git("checkout", "-f", "--detach", target, cwd=checkout)


def _resolves(checkout: Path, rev: str) -> bool:
    try:
        _git("rev-parse", "--verify", "--quiet", rev, cwd=checkout)
    except gitpython.GitCommandError:
        return False
    return True
