"""The configuration model: a localrc or local.conf in, a :class:`Config` out.

>>> config = load_config(text="disable_all_services\\nenable_service key g-api\\n")
>>> config.enabled
['key', 'g-api']
>>> config.is_service_enabled("glance")
True

:func:`load_config` evaluates the localrc with real bash (see
:mod:`stackmagic.config.localrc`), parses the local.conf meta-sections (see
:mod:`stackmagic.config.localconf`), checks every enabled service name against
:mod:`stackmagic.catalog.names`, refuses bad values before anything is touched (see
:mod:`stackmagic.config.validate`), and never writes to disk.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from stackmagic import services
from stackmagic.catalog import names
from stackmagic.config import layout as layouts, localconf, validate
from stackmagic.config.localconf import Merge
from stackmagic.config.localrc import Evaluation, Plugin, evaluate
from stackmagic.config.settings import Settings
from stackmagic.errors import ConfigError

__all__ = ["Config", "Merge", "Plugin", "Settings", "load_config", "read_text"]

Kind = Literal["auto", "localrc", "local.conf"]


@dataclass(frozen=True)
class Config:
    """An evaluated configuration.

    ``enabled`` / ``disabled`` are ENABLED_SERVICES / DISABLED_SERVICES as
    lists; ``merges`` are the local.conf options to merge into config files;
    ``warnings`` are messages for the user (file, line: text); ``source`` is
    the file read (None for ``text=``).
    """

    settings: Settings
    enabled: list[str]
    disabled: list[str]
    plugins: list[Plugin]
    merges: list[Merge]
    warnings: list[str]
    source: Path | None
    #: Neutron's layout: "ovn" (devstack's default) or "openvswitch" (q-agt and its agents)
    layout: str = "ovn"
    #: services the localrc enables that the layout keeps from starting -> why (not in enabled)
    set_aside: dict[str, str] = field(default_factory=dict)
    #: names the localrc enables that run as others -> what each runs as (devstack's neutron-*
    #: names -> their q- name; the seed post's zaqar-server -> zaqar-wsgi, zaqar-websocket)
    renamed: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def is_service_enabled(self, *names: str) -> bool:
        """True if any of ``names`` is enabled (group names such as ``nova`` included)."""
        return services.is_service_enabled(self.enabled, *names)


@dataclass(frozen=True)
class _Input:
    """What to evaluate: local.conf text (or None), localrc text, names for messages."""

    localconf: str | None
    localconf_name: str
    localrc: str | None
    localrc_name: str
    directory: Path
    source: Path | None


def load_config(
    path: str | Path | None = None,
    *,
    text: str | None = None,
    kind: Kind = "auto",
    environ: Mapping[str, str] | None = None,
    timeout: float = 10,
    extra_services: Iterable[str] = (),
) -> Config:
    """Evaluate a localrc or local.conf and return the :class:`Config`.

    ``path`` is a local.conf, a localrc, or a directory holding them (None:
    the current directory); in a directory ``local.conf`` is used, else
    ``localrc``. A ``localrc`` file beside a local.conf replaces its
    ``[[local|localrc]]`` block, as in devstack (with a warning). ``text``
    gives the content directly (``path`` then only sets the directory that
    relative ``source`` commands start from). ``kind`` "auto" means local.conf
    when the text has a ``[[phase|file]]`` header. ``environ`` adds
    environment variables (``VAR=value ./stack.sh``). ``timeout`` bounds the
    bash evaluation in seconds. Service names are known from devstack's list,
    from the catalog's modules, and from ``extra_services`` (projects handed
    to the engine directly).

    Raises :class:`~stackmagic.errors.ConfigError` with file and line for
    every mistake in the input.
    """
    source = _read_input(path, text, kind)
    warnings: list[str] = []
    split = localconf.split(source.localconf, source.localconf_name) if source.localconf else None
    localrc_text, localrc_name = _localrc_text(source, split, warnings)
    options = split.options if split else []
    specs = list(dict.fromkeys(option.file_spec for option in options))
    evaluation = evaluate(
        localrc_text,
        name=localrc_name,
        cwd=source.directory,
        environ=environ,
        timeout=timeout,
        expand=specs + [option.value for option in options],
    )
    merges = _merges(evaluation, split, specs, source.localconf_name, warnings)
    enabled = services.parse_service_list(evaluation.values.get("ENABLED_SERVICES", ""))
    # the localrc's values with what enable_plugin lines for the catalog's recipes add
    added, values = _plugin_recipes(evaluation, enabled)
    enabled += added
    warnings += evaluation.warnings
    warnings += _check_services(enabled, evaluation, localrc_text, localrc_name, set(extra_services))
    warnings += _check_dirs(values, evaluation.user, localrc_name)
    for plugin in evaluation.plugins:
        where = evaluation.plugin_lines.get(plugin.name)
        validate.check_name("plugin", plugin.name, file=where.file if where else localrc_name,
                            line=(where.line or None) if where else None)
    for service in enabled:
        validate.check_name("service", service, file=localrc_name, line=_line_of(service, localrc_text))
    settings = Settings(values, evaluation.user)
    validate.check_places(settings, file=localrc_name)
    disabled = services.parse_service_list(values.get("DISABLED_SERVICES", ""))
    enabled, renamed = layouts.run_names(enabled, disabled)
    layout, set_aside = layouts.neutron_layout(values, enabled, localrc_name)
    running = [s for s in enabled if s not in set_aside]
    validate.check_values(values, running, file=localrc_name, text=localrc_text)
    return Config(
        settings=settings,
        enabled=running,
        layout=layout,
        set_aside=set_aside,
        renamed=renamed,
        disabled=disabled,
        plugins=evaluation.plugins,
        merges=merges,
        warnings=warnings,
        source=source.source,
    )


def _check_dirs(values: dict[str, str], user: frozenset[str] | set[str], name: str) -> list[str]:
    """devstack sets DATA_DIR from the default DEST *before* the localrc: a localrc that moves
    only DEST keeps its data in the old place. Faithful, and a trap worth a warning."""
    if "DEST" in user and "DATA_DIR" not in user:
        dest, data = values.get("DEST", ""), values.get("DATA_DIR", "")
        if dest and data and not data.startswith(dest.rstrip("/") + "/"):
            return [f"{name}: DEST={dest} is set but DATA_DIR stays {data} (devstack sets it before "
                    "the localrc); add DATA_DIR=$DEST/data to keep the data with the stack"]
    return []


#: A localrc or local.conf larger than this is not one (it is read whole, then given to bash).
MAX_SIZE = 1024 * 1024


def _read(path: Path) -> str:
    """The text of a localrc / local.conf: a regular UTF-8 text file, else a ConfigError.

    Anything that is not a regular file (a FIFO, a device, a socket) is refused before it is
    opened, so reading never blocks."""
    try:
        info = path.stat()
    except OSError as error:
        raise ConfigError(f"cannot read it: {error.strerror}", file=str(path)) from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a named pipe (FIFO)"
                if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode)
                or stat.S_ISBLK(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                else "not a regular file")
        raise ConfigError(f"this is {kind}, not a localrc or local.conf; name a regular text file",
                          file=str(path))
    if info.st_size > MAX_SIZE:
        raise ConfigError(f"{info.st_size} bytes is too large for a localrc or local.conf "
                          f"(at most {MAX_SIZE // 1024} KiB); is it the right file?", file=str(path))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read it: {error.strerror}", file=str(path)) from None
    return decode(data, str(path))


def read_text(path: str | Path) -> str:
    """The text of a localrc / local.conf for showing it: what :func:`load_config` reads, with
    the same errors (not a regular file, too large, not UTF-8 text) as ConfigError."""
    return _read(Path(path))


def decode(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text, or a ConfigError that names the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"this is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}): "
            "it is a binary file or in another encoding; save it as UTF-8 text",
            file=name, line=line) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    nul = text.find("\0")
    if nul >= 0:
        raise ConfigError("this contains NUL bytes, so it is a binary file, not a localrc or "
                          "local.conf; name the text file", file=name, line=text.count("\n", 0, nul) + 1)
    return text


def _is_localconf(text: str, kind: Kind) -> bool:
    return kind == "local.conf" or (kind == "auto" and localconf.has_meta_sections(text))


def _read_input(path: str | Path | None, text: str | None, kind: Kind) -> _Input:
    if text is not None:
        base = Path(path) if path is not None else Path.cwd()
        directory = base if base.is_dir() else base.parent
        if _is_localconf(text, kind):
            return _Input(text, "local.conf", None, "local.conf", directory, None)
        return _Input(None, "local.conf", text, "localrc", directory, None)
    target = Path(path) if path is not None else Path.cwd()
    if target.is_dir():
        return _from_directory(target, kind)
    content = _read(target)
    if _is_localconf(content, kind):
        beside = target.parent / "localrc"
        localrc = _read(beside) if beside.is_file() else None
        return _Input(content, str(target), localrc, str(beside), target.parent, target)
    return _Input(None, str(target), content, str(target), target.parent, target)


def _from_directory(directory: Path, kind: Kind) -> _Input:
    conf, rc = directory / "local.conf", directory / "localrc"
    if conf.is_file() and kind != "localrc":
        return _read_input(conf, None, "local.conf")
    if rc.is_file():
        return _read_input(rc, None, "localrc")
    raise ConfigError(
        f"no local.conf or localrc in {directory}; write one there or pass the text",
        file=str(directory),
    )


def _localrc_text(source: _Input, split: localconf.Split | None,
                  warnings: list[str]) -> tuple[str, str]:
    """The shell text to evaluate and the file name its line numbers refer to."""
    if source.localrc is not None:
        if split is not None and split.has_localrc:
            warnings.append(
                f"{source.localrc_name}: localrc and the [[local|localrc]] section of "
                f"{source.localconf_name} both exist; using localrc, as devstack does"
            )
        return source.localrc, source.localrc_name
    if split is not None:
        return split.localrc, source.localconf_name
    return "", source.localrc_name


def _merges(evaluation: Evaluation, split: localconf.Split | None, specs: list[str],
            name: str, warnings: list[str]) -> list[Merge]:
    if split is None:
        return []
    warnings += split.warnings
    expanded = evaluation.expansions
    files = {}
    for index, spec in enumerate(specs):
        path = localconf.check_file_spec(
            spec, expanded[index].text, evaluation.values, split.headers[spec], name, warnings
        )
        if path is not None:
            files[spec] = path
    values = expanded[len(specs):]
    for option, value in zip(split.options, values, strict=True):
        if not value.ok and option.file_spec in files:
            raise ConfigError(
                f"bash cannot expand the value of {option.key} ({option.value!r}); check its "
                "quotes and $ signs (write \\$ for a literal $)", file=name, line=option.line,
            )
    return localconf.merges(split.options, files, [value.text for value in values])


def _line_of(word: str, text: str) -> int | None:
    pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line.split("#", 1)[0]):
            return number
    return None


def _plugin_recipes(evaluation: Evaluation, enabled: list[str]) -> tuple[list[str], dict[str, str]]:
    """``enable_plugin NAME URL [REF]`` for a plugin the catalog has a recipe for: the services
    the plugin's settings enable, less those the localrc disabled; and the localrc's values with
    URL and REF as the project's ``<PROJECT>_REPO`` and ``_BRANCH`` (unless the localrc set
    them) and those services in ENABLED_SERVICES (a new dict: the evaluation stays as read)."""
    from stackmagic.catalog import plugin_recipes
    from stackmagic.config.settings import _project_prefix

    recipes = plugin_recipes()
    disabled = set(services.parse_service_list(evaluation.values.get("DISABLED_SERVICES", "")))
    added: list[str] = []
    values = dict(evaluation.values)
    for plugin in evaluation.plugins:
        recipe = recipes.get(plugin.name)
        if recipe is None:
            continue
        prefix = _project_prefix(recipe.name)
        for key, value in ((f"{prefix}_REPO", plugin.url), (f"{prefix}_BRANCH", plugin.ref)):
            if value and key not in evaluation.user:
                values[key] = value
        added += [s for s in recipe.plugin_services
                  if s not in enabled and s not in added and s not in disabled]
    if added:
        values["ENABLED_SERVICES"] = ",".join([*enabled, *added])
    return added, values


def _check_services(enabled: list[str], evaluation: Evaluation, text: str,
                    name: str, extra: set[str]) -> list[str]:
    """Unknown names are errors (warnings when a plugin may define them); retired
    names and names that need a plugin are warnings."""
    from stackmagic.catalog import runnable_services

    warnings: list[str] = []
    plugin_names = {plugin.name for plugin in evaluation.plugins}
    runnable = set(runnable_services()) | extra
    for service in enabled:
        if service in runnable and names.lookup(service) is None:
            continue            # a catalog module's own service, not in devstack's list
        line = _line_of(service, text)
        where = f"{name}, line {line}" if line else name
        known = names.lookup(service)
        if known is None:
            message = f"unknown service {service!r}"
            suggestions = names.closest(service)
            if suggestions:
                message += f"; did you mean: {', '.join(suggestions)}?"
            if not plugin_names:
                raise ConfigError(message, file=name, line=line)
            warnings.append(f"{where}: {message} (left in, a plugin may define it)")
        elif known.status != "current" and known.note and known.project not in plugin_names:
            if known.status == "plugin" and service in runnable:
                warnings.append(f"{where}: {service} runs from stackmagic's own {known.project} "
                                f"recipe; devstack runs it only with the line: {known.note}")
            else:
                warnings.append(f"{where}: {service} ({known.status}): {known.note}")
    return warnings
