"""Edit INI configuration files the way devstack's ``inc/ini-config`` does.

Services are configured by setting single options in files such as ``nova.conf``. These
functions change only the lines they must: comments, blank lines, spacing and the order of
everything else stay as they were, so a sample config keeps its documentation.

The rules, as in devstack:

* A section header is a line that starts with ``[name]``; anything after the ``]`` (spaces,
  a comment) is ignored. The section runs until the next header. A section that appears twice
  is searched in every occurrence.
* An option line starts in the first column with the option name, then optional spaces or tabs,
  then ``=``. Lines starting with ``#`` or ``;`` are comments and are never read or replaced.
* :func:`iniset` replaces the first line of the option in place (keeping its ``name = ``
  spacing) and removes any further lines of it; a new option goes right after the section
  header; a new section is appended at the end of the file after a blank line; a missing file
  is created.
* Values are written verbatim: ``&``, ``\\``, ``/``, ``|``, ``%``, ``$``, quotes and spaces are
  not interpreted.

For many edits of one file, use :class:`IniFile`: it reads once and writes once. Every write
goes to a temporary file in the same directory that is then renamed over the original, so a
reader never sees half a file; the original's mode (and owner, when allowed) is kept.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

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
    """Raise IniError unless ``name`` is a usable section or option name."""
    if not name or name != name.strip() or any(ch in name for ch in forbidden):
        raise IniError(
            f"invalid INI {kind} name {name!r}: it must be non-empty, without surrounding "
            f"spaces and without any of {forbidden!r}"
        )


def _check_key(section: str, option: str) -> None:
    """Validate a section and option name pair."""
    _check_name("section", section, "[]\n\r")
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

    def set(self, section: str, option: str, value: str) -> None:
        """Set ``option`` to ``value`` in ``section`` (devstack's ``iniset``)."""
        _check_key(section, option)
        _check_value(option, value)
        found = self._option_matches(section, option)
        if not found:
            self._insert_after_header(section, [f"{option} = {value}"])
            return
        first, match = found[0]
        self._lines[first] = match.group(0) + value + self._line_end(first)
        self._delete([index for index, _ in found[1:]])

    def set_multiline(self, section: str, option: str, values: Iterable[str]) -> None:
        """Make ``option`` a multi-line option with one ``option = value`` line per value.

        The lines take the place of the option's first existing line, or go right after the
        section header. With no values, the option is removed.
        """
        _check_key(section, option)
        values = list(values)
        for value in values:
            _check_value(option, value)
        found = self._option_matches(section, option)
        if not found:
            self._insert_after_header(section, [f"{option} = {value}" for value in values])
            return
        first, match = found[0]
        prefix, end = match.group(0), self._line_end(first)
        self._delete([index for index, _ in found])
        self._lines[first:first] = [prefix + value + end for value in values]

    def add(self, section: str, option: str, *values: str) -> None:
        """Append ``values`` to the values ``option`` already has (devstack's ``iniadd``)."""
        self.set_multiline(section, option, [*self.get_multiline(section, option), *values])

    def delete(self, section: str, option: str) -> None:
        """Remove every line that sets ``option`` in ``section``; comments stay."""
        _check_key(section, option)
        self._delete(self._option_lines(section, option))

    def comment(self, section: str, option: str) -> None:
        """Turn every line that sets ``option`` in ``section`` into a ``#`` comment."""
        _check_key(section, option)
        for index in self._option_lines(section, option):
            self._lines[index] = "#" + self._lines[index]

    def uncomment(self, section: str, option: str) -> None:
        """Turn commented ``#option = value`` lines of ``section`` back into settings."""
        _check_key(section, option)
        pattern = _commented_pattern(option)
        for index in self._section_body(section):
            match = pattern.match(self._lines[index])
            if match:
                self._lines[index] = self._lines[index][match.end(1) :]

    def merge(self, section: str, option: str, value: str | Sequence[str]) -> None:
        """Set ``option`` from a local.conf post-config entry: a list is a multi-line option."""
        if isinstance(value, str):
            self.set(section, option, value)
        else:
            self.set_multiline(section, option, value)

    # -- saving ------------------------------------------------------------------------------

    def save(self) -> bool:
        """Write the edits atomically if there are any; return True if the file was written."""
        if not self.changed:
            return False
        target = Path(os.path.realpath(self.path))
        text = self.text
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
        """Append ``[section]`` at the end after a blank line; return its index."""
        newline = self._newline()
        if self._lines:
            self._terminate(len(self._lines) - 1)
            if _strip_eol(self._lines[-1]).strip():
                self._lines.append(newline)
        self._lines.append(f"[{section}]{newline}")
        return len(self._lines) - 1

    def _delete(self, indexes: list[int]) -> None:
        """Remove the lines at ``indexes``."""
        for index in sorted(indexes, reverse=True):
            del self._lines[index]


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
