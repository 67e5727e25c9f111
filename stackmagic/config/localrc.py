"""Evaluate a localrc with real bash, the way devstack's stackrc sources it.

One bash process per evaluation (``bash --noprofile --norc``, a small
environment: HOME, PATH, USER, LC_ALL plus what the caller passes):

1. define devstack's service and plugin functions (``functions.sh``);
2. apply the pre-localrc defaults (``DEST``, ``DATA_DIR``, ``ENABLED_SERVICES``
   when unset ...), see :mod:`stackmagic.config.defaults`;
3. ``source`` the localrc text, read from stdin so nothing is written to disk,
   with the working directory set to the localrc's directory so that
   ``source ./other.sh`` works; its own output goes to stderr;
4. apply ``-x`` negations (stack.sh does it right after stackrc) and check
   that ``ENABLED_SERVICES`` does not list a service ``disable_service`` named;
5. apply the post-localrc ``${VAR:-default}`` defaults;
6. expand the strings the caller asks for (local.conf file parts and values)
   like devstack's ``eval``;
7. write everything back on a private file descriptor as NUL separated records:
   variables, the names the user set or changed, warnings, plugins, expansions.

Bash's own messages (``file: line N: syntax error ...``) and stackmagic's
fatal errors become :class:`~stackmagic.errors.ConfigError` naming the file
and line; a localrc that runs longer than ``timeout`` seconds is killed with
its whole process group.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackmagic.config import defaults
from stackmagic.errors import ConfigError

_FUNCTIONS = Path(__file__).with_name("functions.sh")
_STDIN = "/dev/stdin"
_BASH_MESSAGE = re.compile(r"^(?P<file>.+?): line (?P<line>\d+): (?P<message>.*)$")
_SYNTAX = ("syntax error", "unexpected EOF", "unexpected end of file")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Plugin:
    """A devstack plugin registered with ``enable_plugin NAME URL [REF]``."""

    name: str
    url: str
    ref: str = "master"


@dataclass(frozen=True)
class Location:
    """Where something happened: a file as the user knows it, and a line (0 if unknown)."""

    file: str
    line: int


@dataclass(frozen=True)
class Expansion:
    """The result of expanding one string: ``ok`` is False when bash could not."""

    text: str
    ok: bool


@dataclass(frozen=True)
class Evaluation:
    """What a localrc left behind."""

    values: dict[str, str]
    user: frozenset[str]
    warnings: list[str]
    plugins: list[Plugin]
    plugin_lines: dict[str, Location]
    expansions: list[Expansion]


_SCRIPT = r"""
mapfile -t __sm_base_names < <(compgen -v)
exec {__sm_out}>&1
source @functions@
@pre@
__sm_keep=(@keep@)
declare -A __sm_pre=()
for __sm_n in $(compgen -v); do [[ -v $__sm_n ]] && __sm_pre[$__sm_n]=${!__sm_n}; done
source /dev/stdin >&2
set +e +u +o pipefail
disable_negated_services
for __sm_n in ${ENABLED_SERVICES//,/ }; do
    if __sm_in_list "$__sm_n" "$DISABLED_SERVICES"; then
        printf 'X\0?\x1f0\0%s\0' "ENABLED_SERVICES lists '$__sm_n', which disable_service turned off; remove it from ENABLED_SERVICES or drop the disable_service" >&$__sm_out
        exit 97
    fi
done
declare -A __sm_skip=()
for __sm_n in "${__sm_base_names[@]}"; do __sm_skip[$__sm_n]=1; done
for __sm_n in "${__sm_keep[@]}"; do unset "__sm_skip[$__sm_n]"; done
declare -a __sm_user=("${__sm_keep[@]}")
for __sm_n in $(compgen -v); do
    [[ $__sm_n == __sm_* || -n ${__sm_skip[$__sm_n]:-} ]] && continue
    [[ -v $__sm_n ]] || continue
    [[ -v "__sm_pre[$__sm_n]" && ${__sm_pre[$__sm_n]} == "${!__sm_n}" ]] && continue
    __sm_user+=("$__sm_n")
done
@post@
__sm_exp=(@expand@)
{
    declare -A __sm_arrays=()
    for __sm_n in $(compgen -A arrayvar); do __sm_arrays[$__sm_n]=1; done
    for __sm_n in $(compgen -v); do
        [[ $__sm_n == __sm_* || -n ${__sm_skip[$__sm_n]:-} || -n ${__sm_arrays[$__sm_n]:-} ]] && continue
        [[ -v $__sm_n ]] && printf 'V\0%s\0%s\0' "$__sm_n" "${!__sm_n}"
    done
    for __sm_n in "${__sm_user[@]}"; do printf 'U\0%s\0' "$__sm_n"; done
    for __sm_n in "${__sm_warnings[@]}"; do printf 'W\0%s\0' "$__sm_n"; done
    for __sm_n in ${DEVSTACK_PLUGINS//,/ }; do
        printf 'P\0%s\0%s\0%s\0%s\0' "$__sm_n" "${GITREPO[$__sm_n]}" "${GITBRANCH[$__sm_n]}" \
            "${__sm_plugin_where[$__sm_n]}"
    done
    for __sm_n in "${__sm_exp[@]}"; do
        __sm_r=
        if eval "__sm_r=\"$__sm_n\"" 2>/dev/null; then
            printf 'E\0ok\0%s\0' "$__sm_r"
        else
            printf 'E\0error\0\0'
        fi
    done
    printf 'Z\0'
} >&$__sm_out
"""


def _base_environment(environ: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "HOME": os.path.expanduser("~"),
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "USER": getpass.getuser(),
        "LC_ALL": "C.UTF-8",
    }
    env.update(environ or {})
    return env


def _script(environ: Mapping[str, str], expand: Sequence[str]) -> str:
    keep = " ".join(shlex.quote(name) for name in environ if _IDENTIFIER.match(name))
    parts = {
        "@functions@": shlex.quote(str(_FUNCTIONS)),
        "@pre@": defaults.shell_pre_localrc(),
        "@post@": defaults.shell_post_localrc(),
        "@keep@": keep,
        "@expand@": " ".join(shlex.quote(text) for text in expand),
    }
    script = _SCRIPT
    for marker, value in parts.items():
        script = script.replace(marker, value)
    return script


class _Locator:
    """Maps bash's file names back to the user's: /dev/stdin is the localrc itself."""

    def __init__(self, name: str, cwd: Path):
        self.name = name
        self.cwd = cwd

    def file(self, bash_file: str) -> str:
        if bash_file in (_STDIN, "?"):
            return self.name
        return str(self.cwd / bash_file)

    def where(self, packed: str) -> Location:
        file, _, line = packed.partition("\x1f")
        return Location(self.file(file), int(line) if line.isdigit() else 0)


def _run(script: str, text: str, env: dict[str, str], cwd: Path, timeout: float,
         name: str) -> tuple[int, bytes, bytes]:
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(text.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ConfigError(
            f"still running after {timeout:g} s, so it was stopped; look for a loop or a "
            "command that waits (a localrc should only set variables and call enable_service)",
            file=name,
        ) from None
    return process.returncode, out, err


def _syntax_error(stderr: str, locator: _Locator) -> None:
    for raw in stderr.splitlines():
        match = _BASH_MESSAGE.match(raw)
        if match and any(marker in match["message"] for marker in _SYNTAX):
            raise ConfigError(
                f"bash cannot read this line: {match['message']}",
                file=locator.file(match["file"]),
                line=int(match["line"]),
            )


#: What bash says when a command of the localrc (or a file it sources) cannot run.
_NOT_FOUND = ": command not found"
_NO_FILE = ": No such file or directory"


def _functions() -> list[str]:
    """The devstack functions a localrc may call (those functions.sh defines)."""
    names = re.findall(r"^function ([A-Za-z]\w*)", _FUNCTIONS.read_text(), re.MULTILINE)
    return [n for n in names if not n.startswith("__sm")]


def _outside_localrc(path: Path, line: int) -> bool:
    """True when ``line`` of a sourced ``path`` is a local.conf line that is not shell: a
    ``[[phase|file]]`` header or a line of an INI block. Sourcing a whole local.conf from a
    localrc is a known way to reuse one (bash runs its localrc part and trips over the rest)."""
    from stackmagic.config import localconf

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if not localconf.has_meta_sections(text):
        return False
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return False
    try:
        shell = localconf.split(text, str(path)).localrc.splitlines()
    except ConfigError:
        return localconf.has_meta_sections(lines[line - 1])
    return line > len(shell) or shell[line - 1] != lines[line - 1]


def _shell_errors(stderr: str, locator: _Locator) -> list[str]:
    """Bash's complaints about the localrc: a command that does not exist or a file to source
    that is missing raise ConfigError (bash carries on after them, the stack would not be what
    the file says); every other ``file: line N: ...`` message is returned as a warning."""
    import difflib

    warnings: list[str] = []
    for raw in stderr.splitlines():
        match = _BASH_MESSAGE.match(raw)
        if not match:
            continue
        file, line, message = locator.file(match["file"]), int(match["line"]), match["message"]
        if file != locator.name and _outside_localrc(Path(file), line):
            continue
        if message.endswith(_NOT_FOUND):
            command = message[: -len(_NOT_FOUND)]
            hint = difflib.get_close_matches(command, _functions(), n=1, cutoff=0.7)
            raise ConfigError(
                f"{command}: command not found"
                + (f"; did you mean {hint[0]}?" if hint else
                   "; a localrc may call devstack's functions (enable_service, disable_service, "
                   "enable_plugin ...) and ordinary commands"),
                file=file, line=line)
        if message.endswith(_NO_FILE):
            missing = message[: -len(_NO_FILE)]
            raise ConfigError(
                f"{missing}: no such file or directory; fix the path (a relative path starts "
                f"from {locator.cwd}) or remove the line", file=file, line=line)
        warnings.append(f"{file}, line {line}: {message}")
    return warnings


def _records(out: bytes) -> list[list[str]]:
    fields = out.decode(errors="replace").split("\0")
    arity = {"V": 2, "U": 1, "W": 1, "P": 4, "E": 2, "X": 2, "Z": 0}
    records: list[list[str]] = []
    index = 0
    while index < len(fields) and fields[index] in arity:
        size = arity[fields[index]]
        records.append(fields[index : index + 1 + size])
        index += 1 + size
    return records


def _warning(packed: str, locator: _Locator) -> str:
    where, _, message = packed.rpartition("\x1f")
    location = locator.where(where)
    if location.line:
        return f"{location.file}, line {location.line}: {message}"
    return f"{location.file}: {message}"


def _collect(records: list[list[str]], locator: _Locator) -> Evaluation:
    values: dict[str, str] = {}
    user: set[str] = set()
    warnings: list[str] = []
    plugins: list[Plugin] = []
    plugin_lines: dict[str, Location] = {}
    expansions: list[Expansion] = []
    for kind, *fields in records:
        if kind == "V":
            values[fields[0]] = fields[1]
        elif kind == "U":
            user.add(fields[0])
        elif kind == "W":
            warnings.append(_warning(fields[0], locator))
        elif kind == "P":
            plugins.append(Plugin(fields[0], fields[1], fields[2]))
            plugin_lines[fields[0]] = locator.where(fields[3])
        elif kind == "E":
            expansions.append(Expansion(fields[1], fields[0] == "ok"))
    return Evaluation(values, frozenset(user & set(values)), warnings, plugins, plugin_lines,
                      expansions)


def evaluate(
    text: str,
    *,
    name: str = "localrc",
    cwd: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 10,
    expand: Sequence[str] = (),
) -> Evaluation:
    """Source ``text`` as a localrc in bash and return the variables it left.

    ``name`` is how errors and warnings name the file (line numbers are lines
    of ``text``); ``cwd`` is the directory relative ``source`` commands start
    from (default: the current directory); ``environ`` adds variables to the
    environment, as ``VAR=value ./stack.sh`` does in devstack; ``expand`` are
    strings expanded after the defaults, each as bash expands ``"..."``.
    """
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    env = _base_environment(environ)
    locator = _Locator(name, workdir)
    status, out, err = _run(_script(environ or {}, expand), text, env, workdir, timeout, name)
    stderr = err.decode(errors="replace")
    _syntax_error(stderr, locator)
    records = _records(out)
    for kind, *fields in records:
        if kind == "X":
            location = locator.where(fields[0])
            raise ConfigError(fields[1], file=location.file, line=location.line or None)
    shell_warnings = _shell_errors(stderr, locator)
    if not records or records[-1][0] != "Z":
        raise ConfigError(
            f"stopped before its end (bash exit status {status}); a localrc must not call "
            f"exit or set -e with a failing command{_tail(stderr)}",
            file=name,
        )
    evaluation = _collect(records, locator)
    evaluation.warnings.extend(shell_warnings)
    return evaluation


def _tail(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return f". Last output: {lines[-1]}" if lines else ""
