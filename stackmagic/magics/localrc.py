"""``%%localrc`` / ``%%local_conf``: write the cell, evaluate it, show what it enables and sets."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from stackmagic.errors import ConfigError
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
            runs = "yes" if row["runs_here"] else {"retired": "retired upstream",
                                                   "plugin": "needs a plugin"}.get(row["status"], "not yet")
            rows.append((row["project"] if row["project"] != last else "", row["service"],
                         row["description"], runs))
            last = row["project"]
        return rows

    def _settings_rows(self) -> list[tuple[str, str]]:
        return sorted(self.data["settings"].items())

    def _merge_lines(self) -> list[str]:
        return [f"{m['phase']}: {m['file']} [{m['section']}] {m['key']} = {m['value']}"
                for m in self.data["merges"]]

    def __repr__(self) -> str:
        parts = [f"configuration: {self.data['source']}"] if self.data.get("source") else []
        parts.append(text_table(("project", "service", "what it is", "runs here"),
                                self._service_rows(), "enabled services"))
        if self.data["disabled"]:
            parts.append("disabled: " + ", ".join(self.data["disabled"]))
        if self.data["settings"]:
            parts.append(text_table(("setting", "value"), self._settings_rows(),
                                    "settings that differ from the defaults"))
        parts += self._merge_lines()
        parts += [f"warning: {w}" for w in self.data["warnings"]]
        return self._mask("\n".join(parts))

    def _repr_html_(self) -> str:
        parts = [html_table(("project", "service", "what it is", "runs here"), self._service_rows(),
                            "enabled services")]
        if self.data["disabled"]:
            parts.append("<p>disabled: " + html.escape(", ".join(self.data["disabled"])) + "</p>")
        if self.data["settings"]:
            parts.append(html_table(("setting", "value"), self._settings_rows(),
                                    "settings that differ from the defaults"))
        if self.data["merges"]:
            parts.append(pre(self._merge_lines()))
        parts += [f'<p style="color:#b58900">warning: {html.escape(w)}</p>' for w in self.data["warnings"]]
        return self._mask("".join(parts))


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
        where = f"line {err.line} of the cell" if err.line and err.file == str(path) else (
            f"{err.file}, line {err.line}" if err.line else (err.file or str(path)))
        raise MagicError(f"{where}: {err.message}\n(written to {path}; fix the cell and run it again)") from None
    return ConfigReport(api.config_report(cfg), Masker(cfg.settings))


def show(path: Path | None) -> ConfigText:
    """The configuration file the magics use, masked."""
    if path is None or not path.exists():
        raise MagicError("no localrc yet: write one with a %%localrc cell "
                         "(or set %config StackMagics.localrc_path)")
    return ConfigText(path, path.read_text())
