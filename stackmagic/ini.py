"""Edit INI configuration files the way devstack's ``inc/ini-config`` does.

Services are configured by setting single options in files such as ``nova.conf``. These
functions change only the lines they must: comments, blank lines, spacing and the order of
everything else stay as they were, so a sample config keeps its documentation.

The rules, as in devstack:

* A section header is a line that starts with ``[name]``; anything after the ``]`` (spaces,
  a comment) is ignored. The name is taken verbatim, spaces included (``[ ccc ]`` is section
  `` ccc ``, as devstack's ``iniget FILE " ccc " OPT`` reads it). The section runs until the
  next header. A section that appears twice is searched in every occurrence.
* An option line starts in the first column with the option name, then optional spaces or tabs,
  then ``=``. Lines starting with ``#`` or ``;`` are comments and are never read or replaced.
* :func:`iniset` replaces the first line of the option in place (keeping its ``name = ``
  spacing) and removes any further lines of it; a new option goes right after the section
  header; a new section is appended at the end of the file after a blank line; a missing file
  is created (and, like devstack's, starts with that blank line).
* Values are written verbatim: ``&``, ``\\``, ``/``, ``|``, ``%``, ``$``, quotes and spaces are
  not interpreted.

For many edits of one file, use :class:`IniFile`: it reads once and writes once. Every write
goes to a temporary file in the same directory that is then renamed over the original, so a
reader never sees half a file; the original's mode (and owner, when allowed) is kept.

Writers of one file may run at once (engine steps in threads or processes: devstack's Neutron
writes into ``nova.conf`` while Nova configures it). A write holds an exclusive ``flock`` on a
lock file beside the target (``.nova.conf.lock``) from reading the file again to renaming the
new text over it; if the file changed since it was loaded, the edits are made again on the new
text, so no writer's options are lost.

``python -m stackmagic.ini VERB ...`` offers the same edits to shell code (devstack plugins,
devstack's own tests): see :func:`main`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from stackmagic.errors import StackError

__all__ = [
    "IniError",
    "IniFile",
    "ini_has_option",
    "iniadd",
    "inicomment",
    "inidelete",
    "iniget",
    "iniget_multiline",
    "iniget_sections",
    "iniset",
    "iniset_multiline",
    "iniuncomment",
    "merge_file",
    "merge_into",
]

PathArg = str | os.PathLike[str]
"""A file path as the public functions accept it."""

_HEADER = re.compile(r"\[([^\]\n]*)\]")

# Writes text from stdin to $2 atomically through a temporary file in $1, keeping $2's mode
# and owner. Run under sudo when the caller may not write the directory itself.
_SUDO_WRITE = r"""
set -e
tmp=$(mktemp "$1/.stackmagic-ini.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
if [ -e "$2" ]; then
    chmod --reference="$2" "$tmp"
    chown --reference="$2" "$tmp"
else
    chmod 644 "$tmp"
fi
mv -f "$tmp" "$2"
trap - EXIT
"""


class IniError(StackError):
    """An INI edit could not be done: bad section/option/value, or the file is not usable."""


def _strip_eol(line: str) -> str:
    """Return ``line`` without its ``\\n`` or ``\\r\\n`` ending."""
    return line.rstrip("\n").rstrip("\r")


def _split_lines(text: str) -> list[str]:
    """Split ``text`` into lines that keep their endings; only ``\\n`` ends a line."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _header_name(line: str) -> str | None:
    """The section name if ``line`` is a section header, else None."""
    match = _HEADER.match(line)
    return match.group(1) if match else None


def _option_pattern(option: str) -> re.Pattern[str]:
    """Match the ``option = `` start of an active option line, up to where the value starts."""
    return re.compile(re.escape(option) + r"[ \t]*=[ \t]*")


def _commented_pattern(option: str) -> re.Pattern[str]:
    """Match a commented ``#option = value`` line; group 1 is the comment marker."""
    return re.compile(r"([ \t]*[#;]+[ \t]*)" + re.escape(option) + r"[ \t]*=")


def _check_name(kind: str, name: str, forbidden: str) -> None:
    """Raise IniError unless ``name`` is a usable option name."""
    if not name or name != name.strip() or any(ch in name for ch in forbidden):
        raise IniError(
            f"invalid INI {kind} name {name!r}: it must be non-empty, without surrounding "
            f"spaces and without any of {forbidden!r}"
        )


def _check_section(section: str) -> None:
    """Raise IniError unless ``section`` can be a ``[section]`` header (spaces are kept)."""
    if not isinstance(section, str) or not section.strip() or any(ch in section for ch in "[]\n\r"):
        raise IniError(
            f"invalid INI section name {section!r}: it must not be blank and must not contain "
            "'[', ']' or a line break"
        )


def _check_key(section: str, option: str) -> None:
    """Validate a section and option name pair."""
    _check_section(section)
    _check_name("option", option, "=\n\r")
    if option[0] in "#;[":
        raise IniError(
            f"invalid INI option name {option!r}: it must not start with '#', ';' or '['"
        )


def _check_value(option: str, value: str) -> None:
    """Raise IniError if ``value`` cannot be written on one line."""
    if not isinstance(value, str):
        raise IniError(
            f"the value of INI option {option!r} must be a string, not {type(value).__name__}"
        )
    if "\n" in value or "\r" in value:
        raise IniError(
            f"the value of INI option {option!r} contains a line break; give one line per value"
        )


class IniFile:
    """An INI file loaded into memory, edited with devstack's rules, written back by :meth:`save`.

    A missing file reads as empty and is created by the first :meth:`save` that has something to
    write. Used as a context manager, the file is saved when the block ends without an error::

        with IniFile("/etc/nova/nova.conf") as conf:
            conf.set("DEFAULT", "debug", "True")
            conf.set_multiline("filter_scheduler", "enabled_filters", ["A", "B"])

    With ``sudo=True`` a file the current user may not read or write is read and written with
    ``sudo`` (not needed, and not used, when running as root).
    """

    def __init__(self, path: PathArg, *, sudo: bool = False) -> None:
        self.path = Path(path)
        self.sudo = sudo
        self._original = self._read()
        self._lines = _split_lines(self._original or "")
        self._ops: list[tuple[Callable[..., None], tuple[Any, ...]]] = []

    # -- reading -----------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The current content, with the edits made so far."""
        return "".join(self._lines)

    @property
    def changed(self) -> bool:
        """True if the edits changed the content since it was loaded or last saved."""
        return self.text != (self._original or "")

    def sections(self) -> list[str]:
        """The section names in file order (a repeated section appears each time)."""
        return [name for line in self._lines if (name := _header_name(line)) is not None]

    def has_section(self, section: str) -> bool:
        """True if the file has a ``[section]`` header."""
        return bool(self._spans(section))

    def has_option(self, section: str, option: str) -> bool:
        """True if ``option`` is set (not commented) in ``section``."""
        _check_key(section, option)
        return bool(self._option_lines(section, option))

    def get(self, section: str, option: str) -> str | None:
        """The value of ``option`` in ``section`` with surrounding blanks removed, or None.

        If the option is set on several lines, the last value is returned: that is the one
        oslo.config uses for an option that takes a single value.
        """
        values = self.get_multiline(section, option)
        return values[-1] if values else None

    def get_multiline(self, section: str, option: str) -> list[str]:
        """Every value of ``option`` in ``section``, in file order (empty if unset)."""
        _check_key(section, option)
        return [
            _strip_eol(self._lines[index])[match.end() :].strip()
            for index, match in self._option_matches(section, option)
        ]

    # -- editing -----------------------------------------------------------------------------
    #
    # Every public edit checks its arguments, makes the change and records it, so that save()
    # can make the same edits again on the file's newer text if another writer changed it.

    def set(self, section: str, option: str, value: str) -> None:
        """Set ``option`` to ``value`` in ``section`` (devstack's ``iniset``)."""
        _check_key(section, option)
        _check_value(option, value)
        self._record(self._set, section, option, value)

    def set_multiline(self, section: str, option: str, values: Iterable[str]) -> None:
        """Make ``option`` a multi-line option with one ``option = value`` line per value.

        The lines take the place of the option's first existing line, or go right after the
        section header. With no values, the option is removed.
        """
        _check_key(section, option)
        values = list(values)
        for value in values:
            _check_value(option, value)
        self._record(self._set_multiline, section, option, values)

    def add(self, section: str, option: str, *values: str) -> None:
        """Append ``values`` to the values ``option`` already has (devstack's ``iniadd``)."""
        _check_key(section, option)
        for value in values:
            _check_value(option, value)
        self._record(self._add, section, option, values)

    def delete(self, section: str, option: str) -> None:
        """Remove every line that sets ``option`` in ``section``; comments stay."""
        _check_key(section, option)
        self._record(self._delete_option, section, option)

    def comment(self, section: str, option: str) -> None:
        """Turn every line that sets ``option`` in ``section`` into a ``#`` comment."""
        _check_key(section, option)
        self._record(self._comment, section, option)

    def uncomment(self, section: str, option: str) -> None:
        """Turn commented ``#option = value`` lines of ``section`` back into settings."""
        _check_key(section, option)
        self._record(self._uncomment, section, option)

    def merge(self, section: str, option: str, value: str | Sequence[str]) -> None:
        """Set ``option`` from a local.conf post-config entry: a list is a multi-line option."""
        if isinstance(value, str):
            self.set(section, option, value)
        else:
            self.set_multiline(section, option, value)

    def merge_all(self, entries: Iterable[tuple[str, str, str | Sequence[str]]]) -> None:
        """Merge local.conf options ``(section, option, value)`` given in local.conf order.

        The result is devstack's ``merge_config_file``: an option the file has is replaced where
        it stands; new options go right after their section header, in local.conf order; new
        sections are appended in the order they first appear. (devstack gets this by calling
        ``iniset``, which inserts after the header, for each section's options in reverse.)
        """
        by_section: dict[str, dict[str, str | Sequence[str]]] = {}
        for section, option, value in entries:
            by_section.setdefault(section, {})[option] = value
        for section, options in by_section.items():
            for option, value in reversed(options.items()):
                self.merge(section, option, value)

    # -- saving ------------------------------------------------------------------------------

    def save(self) -> bool:
        """Write the edits atomically if there are any; return True if the file was written.

        The write holds the target's lock; if another writer changed the file since it was
        read, the edits are made again on its new text first.
        """
        if not self._ops and not self.changed:
            return False
        target = Path(os.path.realpath(self.path))
        with _locked(target):
            current = self._read()
            if current != self._original:
                self._lines = _split_lines(current or "")
                for function, args in self._ops:
                    function(*args)
            self._ops = []
            text = self.text
            if text == (current or ""):
                self._original = current
                return False
            if self.sudo and os.geteuid() != 0:
                self._sudo_write(target, text)
            else:
                self._write(target, text)
        self._original = text
        return True

    def __enter__(self) -> IniFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.save()

    # -- internals ---------------------------------------------------------------------------

    def _record(self, function: Callable[..., None], *args: Any) -> None:
        """Make an edit now and remember it for :meth:`save`."""
        function(*args)
        self._ops.append((function, args))

    def _set(self, section: str, option: str, value: str) -> None:
        found = self._option_matches(section, option)
        if not found:
            self._insert_after_header(section, [f"{option} = {value}"])
            return
        first, match = found[0]
        self._lines[first] = match.group(0) + value + self._line_end(first)
        self._delete([index for index, _ in found[1:]])

    def _set_multiline(self, section: str, option: str, values: list[str]) -> None:
        found = self._option_matches(section, option)
        if not found:
            self._insert_after_header(section, [f"{option} = {value}" for value in values])
            return
        first, match = found[0]
        prefix, end = match.group(0), self._line_end(first)
        self._delete([index for index, _ in found])
        self._lines[first:first] = [prefix + value + end for value in values]

    def _add(self, section: str, option: str, values: tuple[str, ...]) -> None:
        self._set_multiline(section, option, [*self.get_multiline(section, option), *values])

    def _delete_option(self, section: str, option: str) -> None:
        self._delete(self._option_lines(section, option))

    def _comment(self, section: str, option: str) -> None:
        for index in self._option_lines(section, option):
            self._lines[index] = "#" + self._lines[index]

    def _uncomment(self, section: str, option: str) -> None:
        pattern = _commented_pattern(option)
        for index in self._section_body(section):
            match = pattern.match(self._lines[index])
            if match:
                self._lines[index] = self._lines[index][match.end(1) :]

    def _read(self) -> str | None:
        """The file's text, or None if it does not exist."""
        try:
            with open(self.path, encoding="utf-8", newline="") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except PermissionError:
            if self.sudo and os.geteuid() != 0:
                return self._sudo_read()
            raise IniError(f"cannot read {self.path}: permission denied (pass sudo=True)") from None
        except (OSError, UnicodeDecodeError) as err:
            raise IniError(f"cannot read {self.path}: {err}") from None

    def _sudo_read(self) -> str:
        """Read the file through ``sudo cat``."""
        result = _run_sudo(["cat", "--", str(self.path)], self.path)
        return result.stdout

    def _write(self, target: Path, text: str) -> None:
        """Write ``text`` to a temporary file next to ``target`` and rename it over ``target``."""
        try:
            old = target.stat()
        except FileNotFoundError:
            old = None
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 lets the umask decide the mode of a new file, as a plain create would.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if old is not None:
                os.chmod(tmp, old.st_mode & 0o7777)
                _keep_owner(tmp, old)
            os.replace(tmp, target)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            hint = " (pass sudo=True)" if isinstance(err, PermissionError) and not self.sudo else ""
            raise IniError(f"cannot write {target}: {err.strerror or err}{hint}") from None

    @staticmethod
    def _sudo_write(target: Path, text: str) -> None:
        """Write through ``sudo``, atomically, keeping the mode and owner of ``target``."""
        _run_sudo(["sh", "-c", _SUDO_WRITE, "sh", str(target.parent), str(target)], target, text)

    def _spans(self, section: str) -> list[tuple[int, int]]:
        """(header index, end index) of every occurrence of ``section``."""
        spans = []
        start: int | None = None
        for index, line in enumerate(self._lines):
            name = _header_name(line)
            if name is None:
                continue
            if start is not None:
                spans.append((start, index))
                start = None
            if name == section:
                start = index
        if start is not None:
            spans.append((start, len(self._lines)))
        return spans

    def _section_body(self, section: str) -> list[int]:
        """Indexes of the lines inside every occurrence of ``section``."""
        return [i for head, end in self._spans(section) for i in range(head + 1, end)]

    def _option_matches(self, section: str, option: str) -> list[tuple[int, re.Match[str]]]:
        """Index and match of every active line that sets ``option`` in ``section``.

        A match's group 0 is the line's ``option = `` prefix, up to where the value starts.
        """
        pattern = _option_pattern(option)
        found = []
        for index in self._section_body(section):
            match = pattern.match(self._lines[index])
            if match:
                found.append((index, match))
        return found

    def _option_lines(self, section: str, option: str) -> list[int]:
        """Indexes of the active lines that set ``option`` in ``section``."""
        return [index for index, _ in self._option_matches(section, option)]

    def _newline(self) -> str:
        """The line ending the file uses (``\\r\\n`` if its first line has one)."""
        return "\r\n" if self._lines and self._lines[0].endswith("\r\n") else "\n"

    def _line_end(self, index: int) -> str:
        """The ending of line ``index``, or the file's ending if it is the unterminated last."""
        line = self._lines[index]
        return line[len(_strip_eol(line)) :] or self._newline()

    def _terminate(self, index: int) -> None:
        """Give line ``index`` a line ending if it has none (an unterminated last line)."""
        if not self._lines[index].endswith("\n"):
            self._lines[index] += self._newline()

    def _insert_after_header(self, section: str, bodies: list[str]) -> None:
        """Insert ``bodies`` right after the first ``section`` header, adding it if missing."""
        spans = self._spans(section)
        if spans:
            head = spans[0][0]
        else:
            head = self._append_header(section)
        self._terminate(head)
        newline = self._newline()
        self._lines[head + 1 : head + 1] = [body + newline for body in bodies]

    def _append_header(self, section: str) -> int:
        """Append ``[section]`` at the end after a blank line; return its index.

        An empty file gets the blank line too: devstack's iniset appends ``"\n[section]"``.
        """
        newline = self._newline()
        if self._lines:
            self._terminate(len(self._lines) - 1)
            if _strip_eol(self._lines[-1]).strip():
                self._lines.append(newline)
        else:
            self._lines.append(newline)
        self._lines.append(f"[{section}]{newline}")
        return len(self._lines) - 1

    def _delete(self, indexes: list[int]) -> None:
        """Remove the lines at ``indexes``."""
        for index in sorted(indexes, reverse=True):
            del self._lines[index]


def _lock_path(target: Path) -> Path:
    """The lock file of ``target``: beside it, or a per-user one when its directory is not ours."""
    beside = target.with_name(f".{target.name}.lock")
    if os.access(target.parent, os.W_OK) or beside.exists():
        return beside
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:32]
    return Path(tempfile.gettempdir()) / f"stackmagic-ini-locks-{os.geteuid()}" / f"{digest}.lock"


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive lock for writing ``target``, across threads and processes.

    ``flock`` belongs to an open file, so two threads of one process that each open the lock
    file exclude each other too (``lockf``/``fcntl`` locks would not). The holder removes the
    lock file before it lets go, so none is left beside the config file; a waiter that then
    gets the lock of a removed file tries again on the path's new file.
    """
    path = _lock_path(target)
    while True:
        try:
            if path.parent != target.parent:
                path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise IniError(
                f"cannot lock {target} for writing ({path}): {err.strerror or err}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue  # its holder removed it: lock the next one
            if (current.st_dev, current.st_ino) != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                continue
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            return
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _keep_owner(path: Path, old: os.stat_result) -> None:
    """Give ``path`` the owner of the file it replaces, when this process may."""
    now = path.stat()
    if (now.st_uid, now.st_gid) == (old.st_uid, old.st_gid):
        return
    try:
        os.chown(path, old.st_uid, old.st_gid)
    except PermissionError:
        # Only root may give a file away; the new file then belongs to the writer, as with sed -i.
        pass


def _run_sudo(
    args: list[str], path: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sudo -n args``; raise IniError naming ``path`` if it fails."""
    try:
        result = subprocess.run(
            ["sudo", "-n", *args], input=stdin, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise IniError(
            f"cannot edit {path} with sudo=True: the sudo command is not installed"
        ) from None
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
        raise IniError(f"cannot edit {path} with sudo: {detail[0]}")
    return result


def iniset(path: PathArg, section: str, option: str, value: str, *, sudo: bool = False) -> None:
    """Set ``option = value`` in ``[section]`` of ``path``, creating file and section if missing."""
    with IniFile(path, sudo=sudo) as ini:
        ini.set(section, option, value)


def iniset_multiline(
    path: PathArg, section: str, option: str, *values: str, sudo: bool = False
) -> None:
    """Replace ``option`` in ``[section]`` with one ``option = value`` line per value."""
    with IniFile(path, sudo=sudo) as ini:
        ini.set_multiline(section, option, values)


def iniadd(path: PathArg, section: str, option: str, *values: str, sudo: bool = False) -> None:
    """Add ``values`` to the multi-line ``option`` in ``[section]``, keeping its values."""
    with IniFile(path, sudo=sudo) as ini:
        ini.add(section, option, *values)


def inicomment(path: PathArg, section: str, option: str, *, sudo: bool = False) -> None:
    """Comment out (prefix with ``#``) the lines setting ``option`` in ``[section]``."""
    with IniFile(path, sudo=sudo) as ini:
        ini.comment(section, option)


def iniuncomment(path: PathArg, section: str, option: str, *, sudo: bool = False) -> None:
    """Uncomment the ``#option = value`` lines of ``[section]``."""
    with IniFile(path, sudo=sudo) as ini:
        ini.uncomment(section, option)


def inidelete(path: PathArg, section: str, option: str, *, sudo: bool = False) -> None:
    """Remove the lines setting ``option`` in ``[section]``."""
    with IniFile(path, sudo=sudo) as ini:
        ini.delete(section, option)


def iniget(path: PathArg, section: str, option: str) -> str | None:
    """The value of ``option`` in ``[section]``; None if the file, section or option is missing."""
    return IniFile(path).get(section, option)


def iniget_multiline(path: PathArg, section: str, option: str) -> list[str]:
    """All values of ``option`` in ``[section]`` in file order; empty if it is not set."""
    return IniFile(path).get_multiline(section, option)


def iniget_sections(path: PathArg) -> list[str]:
    """The section names of ``path`` in file order; empty if the file is missing."""
    return IniFile(path).sections()


def ini_has_option(path: PathArg, section: str, option: str) -> bool:
    """True if ``option`` is set (not commented) in ``[section]`` of ``path``."""
    return IniFile(path).has_option(section, option)


def merge_into(
    path: PathArg,
    section: str,
    option: str,
    value_or_values: str | Sequence[str],
    *,
    sudo: bool = False,
) -> None:
    """Merge one local.conf post-config entry: a str is :func:`iniset`, a list is multi-line."""
    with IniFile(path, sudo=sudo) as ini:
        ini.merge(section, option, value_or_values)


def merge_file(
    path: PathArg,
    entries: Iterable[tuple[str, str, str | Sequence[str]]],
    *,
    sudo: bool = False,
) -> bool:
    """Merge local.conf options ``(section, option, value)``, in local.conf order, into ``path``.

    One read and one write; the result is devstack's ``merge_config_file`` (see
    :meth:`IniFile.merge_all`). A missing file is created. Returns True if the file was written.
    """
    ini = IniFile(path, sudo=sudo)
    ini.merge_all(entries)
    return ini.save()


# -- the shell interface -----------------------------------------------------------------------

_USAGE = """usage: python -m stackmagic.ini [--sudo] VERB FILE [SECTION OPTION [VALUE...]]

verbs (devstack's inc/ini-config functions):
  set FILE SECTION OPTION VALUE          iniset
  set-multiline FILE SECTION OPTION V... iniset_multiline
  add FILE SECTION OPTION V...           iniadd
  get FILE SECTION OPTION                iniget (prints the value)
  get-multiline FILE SECTION OPTION      iniget_multiline (one value a line)
  has-option FILE SECTION OPTION         ini_has_option (exit status 0 or 1)
  comment|uncomment|delete FILE SECTION OPTION
  sections FILE                          iniget_sections (one name a line)
  merge FILE                             merge_config_file (FILE and its directory are
                                         created if missing): stdin holds NUL-terminated
                                         SECTION, OPTION, VALUE triples in local.conf order
                                         (an option repeated in a section is multi-line)
"""

_VALUES = {"set": (1, 1), "set-multiline": (0, None), "add": (0, None), "get": (0, 0),
           "get-multiline": (0, 0), "has-option": (0, 0), "comment": (0, 0),
           "uncomment": (0, 0), "delete": (0, 0)}


def _merge_records(data: str) -> list[tuple[str, str, str | tuple[str, ...]]]:
    """Group NUL-separated (section, option, value) triples; a repeated option is multi-line."""
    fields = data.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    if len(fields) % 3:
        raise IniError("merge expects SECTION, OPTION, VALUE triples on stdin, each NUL-terminated")
    grouped: dict[tuple[str, str], list[str]] = {}
    for index in range(0, len(fields), 3):
        section, option, value = fields[index : index + 3]
        grouped.setdefault((section, option), []).append(value)
    return [(section, option, values[0] if len(values) == 1 else tuple(values))
            for (section, option), values in grouped.items()]


def _create(path: Path) -> None:
    """Make ``path`` and its directory exist, as devstack's merge_config_group does."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError as err:
        raise IniError(f"cannot create {path}: {err.strerror or err}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stackmagic.ini``: the INI edits for shell code, with devstack's contract.

    As devstack's functions do, a call without a section or an option changes nothing and
    succeeds (a warning goes to stderr); ``get`` of something unset prints nothing.
    Errors (a file that cannot be written ...) print one line to stderr and exit 1.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    sudo = bool(args) and args[0] in ("--sudo", "-sudo")
    if sudo:
        args.pop(0)
    if len(args) < 2 or args[0] not in (*_VALUES, "sections", "merge"):
        print(_USAGE, end="", file=sys.stderr)
        return 2
    verb, path, rest = args[0], args[1], args[2:]
    try:
        if verb == "sections":
            for name in iniget_sections(path):
                print(name)
            return 0
        if verb == "merge":
            _create(Path(path))
            merge_file(path, _merge_records(sys.stdin.read()), sudo=sudo)
            return 0
        if len(rest) < 2 or not rest[0] or not rest[1]:
            print(f"stackmagic.ini {verb} {path}: no section or option given; nothing done",
                  file=sys.stderr)
            return 1 if verb == "has-option" else 0
        section, option, values = rest[0], rest[1], rest[2:]
        least, most = _VALUES[verb]
        if len(values) < least or (most is not None and len(values) > most):
            print(_USAGE, end="", file=sys.stderr)
            return 2
        if verb == "get":
            value = iniget(path, section, option)
            if value is not None:
                print(value)
        elif verb == "get-multiline":
            for value in iniget_multiline(path, section, option):
                print(value)
        elif verb == "has-option":
            return 0 if ini_has_option(path, section, option) else 1
        elif verb == "set":
            iniset(path, section, option, values[0], sudo=sudo)
        elif verb == "set-multiline":
            iniset_multiline(path, section, option, *values, sudo=sudo)
        elif verb == "add":
            iniadd(path, section, option, *values, sudo=sudo)
        elif verb == "comment":
            inicomment(path, section, option, sudo=sudo)
        elif verb == "uncomment":
            iniuncomment(path, section, option, sudo=sudo)
        else:
            inidelete(path, section, option, sudo=sudo)
    except IniError as err:
        print(f"stackmagic.ini {verb}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
