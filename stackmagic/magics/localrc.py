"""``%%localrc`` / ``%%local_conf``: write the cell, evaluate it, show what it enables and sets."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from stackmagic.errors import ConfigError
from stackmagic.i18n import _, message
from stackmagic.magics.render import Masker, MagicError, html_table, mask_text, pre, text_table


class ConfigReport:
    """The evaluated configuration: services by project, settings that differ from the defaults
    (passwords masked), local.conf merges, warnings. ``.data`` is the plain dict."""

    def __init__(self, data: dict[str, Any], masker: Masker):
        self.data = data
        self._mask = masker

    def _service_rows(self) -> list[tuple[str, str, str, str]]:
        rows, last = [], None
        for row in sorted(self.data["services"], key=lambda r: r["project"]):
            runs = _("yes") if row["runs_here"] else _({"retired": "retired upstream",
                                                      "plugin": "needs a plugin"}.get(row["status"], "not yet"))
            rows.append((row["project"] if row["project"] != last else "", row["service"],
                         _(row["description"]), runs))
            last = row["project"]
        return rows

    def _settings_rows(self) -> list[tuple[str, str]]:
        rows = []
        for name, value in sorted(self.data["settings"].items()):
            for i, part in enumerate(_wrap(value)):
                rows.append((name if i == 0 else "", part))
        return rows

    def _merge_lines(self) -> list[str]:
        return [f"{m['phase']}: {m['file']} [{m['section']}] {m['key']} = {m['value']}"
                for m in self.data["merges"]]

    def _source(self) -> str | None:
        """The file, relative to the working directory when it is below it."""
        source = self.data.get("source")
        if not source:
            return None
        try:
            return str(Path(source).relative_to(Path.cwd()))
        except ValueError:
            return source

    def _headers(self) -> tuple[str, ...]:
        return (_("project"), _("service"), _("what it is"), _("runs here"))

    def _warnings(self) -> list[str]:
        here = str(Path.cwd()) + "/"
        return [_("warning: {text}").format(text=message(w).replace(here, "")) for w in self.data["warnings"]]

    def __repr__(self) -> str:
        source = self._source()
        parts = [_("configuration: {file}").format(file=source)] if source else []
        parts.append(text_table(self._headers(), self._service_rows(), _("enabled services")))
        if self.data["disabled"]:
            parts.append(_("disabled: {names}").format(names=", ".join(self.data["disabled"])))
        if self.data["settings"]:
            parts.append(text_table((_("setting"), _("value")), self._settings_rows(),
                                    _("settings that differ from the defaults")))
        parts += self._merge_lines()
        parts += self._warnings()
        return self._mask("\n".join(parts))

    def _repr_html_(self) -> str:
        source = self._source()
        parts = [f"<p>{html.escape(_('configuration: {file}').format(file=source))}</p>"] if source else []
        parts.append(html_table(self._headers(), self._service_rows(), _("enabled services")))
        if self.data["disabled"]:
            parts.append("<p>" + html.escape(_("disabled: {names}").format(
                names=", ".join(self.data["disabled"]))) + "</p>")
        if self.data["settings"]:
            parts.append(html_table((_("setting"), _("value")), self._settings_rows(),
                                    _("settings that differ from the defaults")))
        if self.data["merges"]:
            parts.append(pre(self._merge_lines()))
        parts += [f'<p style="color:#b58900">{html.escape(w)}</p>' for w in self._warnings()]
        return self._mask("".join(parts))


#: Longest value shown on one line of the settings table; longer comma lists are wrapped.
WIDTH = 64


def _wrap(value: str, width: int = WIDTH) -> list[str]:
    """A long comma list (``ENABLED_SERVICES``) as lines of at most ``width`` characters, each
    ending with the comma it was split at; other values as they are."""
    if len(value) <= width or "," not in value:
        return [value]
    lines, line = [], ""
    for item in value.split(","):
        if line and len(line) + len(item) + 1 > width:
            lines.append(line)
            line = ""
        line += item + ","
    lines.append(line.rstrip(","))
    return lines


class ConfigText:
    """A localrc / local.conf's text with secret assignments masked."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, mask_text(text)

    def __repr__(self) -> str:
        return f"# {self.path}\n{self.text}"

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(str(self.path))}</b>" + pre(self.text.splitlines())


def write_and_evaluate(path: Path, text: str) -> ConfigReport:
    """Write ``text`` to ``path``, evaluate it, and report; a mistake raises :class:`MagicError`
    naming the line of the cell."""
    from stackmagic import api

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    try:
        cfg = api.load(path, remembered=False)
    except ConfigError as err:
        where = _("line {line} of the cell").format(line=err.line) if err.line and err.file == str(path) else (
            _("{file}, line {line}").format(file=err.file, line=err.line) if err.line else (err.file or str(path)))
        raise MagicError(f"{where}: {message(err.message)}\n"
                         + _("(written to {path}; fix the cell and run it again)").format(path=path)) from None
    return ConfigReport(api.config_report(cfg), Masker(cfg.settings))


def show(path: Path | None) -> ConfigText:
    """The configuration file the magics use, masked."""
    if path is None or not path.exists():
        raise MagicError(_("no localrc yet: write one with a %%localrc cell "
                           "(or set %config StackMagics.localrc_path)"))
    from stackmagic.config import read_text

    try:
        return ConfigText(path, read_text(path))
    except ConfigError as err:          # binary, another encoding, not a regular file
        raise MagicError(str(err)) from None
