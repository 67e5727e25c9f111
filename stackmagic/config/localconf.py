"""local.conf: devstack's meta-sections ``[[phase|file]]``.

A local.conf is a sequence of blocks, each opened by a header line
``[[phase|file]]`` with no spaces inside. ``[[local|localrc]]`` blocks hold the
localrc (shell); every other block holds INI text to merge into ``file`` in
``phase`` (post-config, extra, post-extra, test-config). Text before the first
header is ignored, as devstack does.

:func:`split` extracts the localrc as a text of the same line count as the
local.conf (other lines blanked), so bash's line numbers are local.conf line
numbers, and the INI options as :class:`Option` records. :func:`merges` turns
options into :class:`Merge` records once the file parts and values have been
expanded by bash (devstack expands both with ``eval``).

Repeated blocks for the same phase and file are concatenated in order, as
devstack's awk does. A key repeated in one section of that text is a
multi-line option: it becomes ONE :class:`Merge` whose ``value`` is a tuple of
every value in order; a plain option's ``value`` is a str.

Where devstack warns and carries on, so does stackmagic (the messages are in
``Split.warnings`` and then ``Config.warnings``): an option before any
``[section]`` of its block is skipped, and so is a block whose file part
expands to nothing (``[[post-config|$UNSET]]``).

``python -m stackmagic.config`` gives shell code devstack's
``get_meta_section_files`` / ``get_meta_section`` and the options
``merge_config_file`` merges, for any group name (see :func:`main`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stackmagic.errors import ConfigError

#: The phases devstack knows, in the order stack.sh runs them.
PHASES: tuple[str, ...] = ("local", "post-config", "extra", "post-extra", "test-config")

_HEADER = re.compile(r"^\[\[(?P<phase>[^|\[\]\s]+)\|(?P<file>[^|\[\]\s]+)\]\]\s*$")
_LOOSE_HEADER = re.compile(r"^\[\[\s*(?P<phase>[\w-]+)\s*\|\s*(?P<file>[^|\]\s]+)\s*\]\]")
_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)[^}]*\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Option:
    """One ``key = value`` line of a non-local block, before expansion."""

    phase: str
    file_spec: str
    section: str
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class Merge:
    """An option to merge into a config file in a phase.

    ``file`` is the expanded path, ``file_spec`` the header's text
    (``$NOVA_CONF``); ``value`` is a str, or a tuple of str for a multi-line
    option (the key repeated in one section); ``line`` is the local.conf line
    of its first occurrence.
    """

    phase: str
    file: Path
    section: str
    key: str
    value: str | tuple[str, ...]
    line: int
    file_spec: str

    @property
    def multi(self) -> bool:
        """True for a multi-line option (``value`` is a tuple)."""
        return isinstance(self.value, tuple)


@dataclass(frozen=True)
class Split:
    """A local.conf taken apart: the localrc text (same line numbers) and the options."""

    localrc: str
    has_localrc: bool
    options: list[Option]
    headers: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def has_meta_sections(text: str) -> bool:
    """True if ``text`` has a ``[[phase|file]]`` header line (then it is a local.conf)."""
    return any(_header(line) for line in text.splitlines())


def _header(line: str) -> bool:
    return bool(_HEADER.match(line) or _LOOSE_HEADER.match(line))


def _parse_header(raw: str, line: int, name: str,
                  phases: Sequence[str] | None = PHASES) -> tuple[str, str]:
    match = _HEADER.match(raw)
    if not match:
        loose = _LOOSE_HEADER.match(raw)
        assert loose is not None
        raise ConfigError(
            f"a meta-section header may not contain spaces: write "
            f"[[{loose['phase']}|{loose['file']}]] instead of {raw.strip()}",
            file=name, line=line,
        )
    phase, spec = match["phase"], match["file"]
    if phases is not None and phase not in phases:
        raise ConfigError(
            f"unknown phase {phase!r} in [[{phase}|{spec}]]; use one of: {', '.join(PHASES)}",
            file=name, line=line,
        )
    if phase == "local" and spec != "localrc":
        raise ConfigError(
            f"the local phase only takes [[local|localrc]], not [[local|{spec}]]",
            file=name, line=line,
        )
    return phase, spec


def split(text: str, name: str = "local.conf", phases: Sequence[str] | None = PHASES) -> Split:
    """Take a local.conf apart; raise ConfigError for a bad header or INI line.

    ``phases`` are the group names a header may use (None: any, as devstack's
    meta-config functions take any group).
    """
    localrc: list[str] = []
    options: list[Option] = []
    headers: dict[str, int] = {}
    warnings: list[str] = []
    block: tuple[str, str] | None = None
    section: str | None = None
    has_localrc = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if _header(raw):
            block = _parse_header(raw, number, name, phases)
            section = None
            has_localrc = has_localrc or block[0] == "local"
            headers.setdefault(block[1], number)
            localrc.append("")
            continue
        in_localrc = block is not None and block[0] == "local"
        localrc.append(raw if in_localrc else "")
        if block is None or in_localrc:
            continue
        section, option = _ini_line(raw, number, name, block, section, warnings)
        if option is not None:
            options.append(option)
    return Split("\n".join(localrc) + "\n", has_localrc, options, headers, warnings)


def _ini_line(raw: str, number: int, name: str, block: tuple[str, str],
              section: str | None, warnings: list[str]) -> tuple[str | None, Option | None]:
    """Parse one line of an INI block like devstack's merge_config_file awk."""
    if not raw.strip() or raw[0] in " \t#":
        return section, None
    match = _SECTION.match(raw)
    if match:
        return match["name"], None
    if "=" not in raw:
        raise ConfigError(f"expected 'key = value' or a [section] header, not {raw.strip()!r}",
                          file=name, line=number)
    if section is None:
        warnings.append(
            f"{name}, line {number}: option {raw.split('=', 1)[0].strip()!r} of "
            f"[[{block[0]}|{block[1]}]] comes before any [section], so it is skipped (devstack "
            "skips it too); add a header such as [DEFAULT] above it"
        )
        return section, None
    key, _, value = raw.partition("=")
    return section, Option(block[0], block[1], section, key.rstrip(), value.strip(), number)


def variables(spec: str) -> list[str]:
    """Names of the shell variables a file part refers to (``$X``, ``${X}``, ``${X:-y}``)."""
    return [m["braced"] or m["plain"] for m in _VARIABLE.finditer(spec)]


def check_file_spec(spec: str, expanded: str, settings: dict[str, str], line: int,
                    name: str, warnings: list[str] | None = None) -> Path | None:
    """The path a file part names, or None (with a warning) when it expands to nothing.

    devstack warns and skips a block whose file part is empty (``$NOVA_CONF``
    while Nova is not configured); a part that uses an unset variable but is
    not empty (``$UNSET/nova.conf``) is a ConfigError: devstack would write
    ``/nova.conf``.
    """
    unset = [variable for variable in variables(spec)
             if not settings.get(variable) and "${" + variable + ":-" not in spec]
    if not expanded.strip():
        why = f"${unset[0]} is not set" if unset else "it expands to an empty file name"
        if warnings is not None:
            warnings.append(
                f"{name}, line {line}: [[...|{spec}]] names no file ({why}), so its options are "
                f"skipped; set {unset[0] if unset else 'the variable'} in the localrc or write "
                "the file's path"
            )
            return None
        raise ConfigError(f"[[...|{spec}]] names no file ({why}); write the file's path",
                          file=name, line=line)
    if unset:
        raise ConfigError(
            f"[[...|{spec}]] uses ${unset[0]}, which is not set; set {unset[0]} in the "
            "localrc or write the file's path", file=name, line=line,
        )
    return Path(re.sub(r"^/+", "/", expanded.strip()))


def merges(options: list[Option], files: dict[str, Path], values: list[str]) -> list[Merge]:
    """Group expanded options into Merges, in order of first appearance.

    ``files`` maps each file part to its path, ``values`` are the expanded
    values of ``options`` in the same order. Options for the same phase, file,
    section and key become one multi-line Merge.
    """
    grouped: dict[tuple[str, Path, str, str], list[tuple[Option, str]]] = {}
    for option, value in zip(options, values, strict=True):
        if option.file_spec not in files:
            continue  # a block that names no file: skipped with a warning
        key = (option.phase, files[option.file_spec], option.section, option.key)
        grouped.setdefault(key, []).append((option, value))
    result: list[Merge] = []
    for (phase, path, section, key), entries in grouped.items():
        first = entries[0][0]
        found = [value for _, value in entries]
        value: str | tuple[str, ...] = found[0] if len(found) == 1 else tuple(found)
        result.append(Merge(phase, path, section, key, value, first.line, first.file_spec))
    return result


# -- the shell interface -----------------------------------------------------------------------

_USAGE = """usage: python -m stackmagic.config VERB LOCAL_CONF GROUP [FILE_PART]

  files LOCAL_CONF GROUP              the file parts of GROUP's blocks, one a line
                                      (devstack's get_meta_section_files)
  section LOCAL_CONF GROUP FILE_PART  the text of those blocks (get_meta_section)
  options LOCAL_CONF GROUP FILE_PART  the options merge_config_file merges, in order, as
                                      NUL-terminated SECTION, OPTION, VALUE triples; values
                                      are not expanded (the caller's shell does that)

A missing LOCAL_CONF gives nothing, as in devstack; warnings go to stderr.
"""


def _blocks(text: str, name: str) -> list[tuple[str, str, list[str]]]:
    """(group, file part, lines) of every block, in order; any group name is accepted."""
    blocks: list[tuple[str, str, list[str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if _header(raw):
            group, spec = _parse_header(raw, number, name, None)
            blocks.append((group, spec, []))
        elif blocks:
            blocks[-1][2].append(raw)
    return blocks


def _only(text: str, name: str, group: str, spec: str) -> str:
    """``text`` with the lines of every other block blanked (line numbers stay)."""
    keep = False
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if _header(raw):
            keep = _parse_header(raw, number, name, None) == (group, spec)
            lines.append(raw)
        else:
            lines.append(raw if keep else "")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stackmagic.config``: local.conf blocks for shell code."""
    args = list(sys.argv[1:] if argv is None else argv)
    wanted = {"files": 3, "section": 4, "options": 4}
    if not args or args[0] not in wanted or len(args) != wanted[args[0]]:
        print(_USAGE, end="", file=sys.stderr)
        return 2
    verb, path, group = args[0], args[1], args[2]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as err:
        print(f"stackmagic.config.localconf: cannot read {path}: {err}", file=sys.stderr)
        return 1
    try:
        if verb == "files":
            for block_group, spec, _ in _blocks(text, path):
                if block_group == group:
                    print(spec)
        elif verb == "section":
            for block_group, spec, lines in _blocks(text, path):
                if (block_group, spec) == (group, args[3]):
                    for line in lines:
                        print(line)
        else:
            parts = split(_only(text, path, group, args[3]), path, None)
            for warning in parts.warnings:
                print(f"WARNING: {warning}", file=sys.stderr)
            out = sys.stdout.buffer
            for option in parts.options:
                out.write(f"{option.section}\0{option.key}\0{option.value}\0".encode())
            out.flush()
    except ConfigError as err:
        print(f"stackmagic.config.localconf: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
