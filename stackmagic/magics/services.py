"""``%services``: every service, probed now, as a table that is also usable in code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from stackmagic.i18n import N_, _
from stackmagic.magics.render import badge, html_table, seconds, text_table

COLUMNS = (N_("project"), N_("service"), N_("window"), N_("pid"), N_("endpoint"), N_("health"),
           N_("uptime"), N_("memory"))


def _state(row: dict[str, Any]) -> str:
    if not row["enabled"] and not row["running"] and row["detail"] == "disabled":
        return "disabled"
    if row["healthy"]:
        return "healthy"
    return "unhealthy" if row["running"] else "down"


def _health(row: dict[str, Any]) -> str:
    state = _state(row)
    if state == "unhealthy":
        return _("unhealthy: {detail}").format(detail=_(row["detail"] or ""))
    if state == "down":
        return _("down ({detail})").format(detail=_(row["detail"] or ""))
    return _(state)


def _colour(row: dict[str, Any]) -> str:
    return {"healthy": "green", "disabled": "grey"}.get(_state(row), "red")


def headers() -> tuple[str, ...]:
    """:data:`COLUMNS` in the current language."""
    return tuple(_(c) for c in COLUMNS)


class ServiceTable(Sequence[dict[str, Any]]):
    """One dict per service (``service``, ``project``, ``window``, ``pid``, ``running``, ``healthy``,
    ``detail``, ``endpoint``, ``logfile``, ``uptime``, ``rss_kib``, ``enabled``).

    Iterate it, index it by position or by service name, or take :meth:`to_dicts`.
    """

    def __init__(self, rows: list[dict[str, Any]]):
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            for row in self._rows:
                if row["service"] == key:
                    return row
            raise KeyError(key)
        return self._rows[key]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def to_dicts(self) -> list[dict[str, Any]]:
        """A copy of the rows as plain dicts."""
        return [dict(r) for r in self._rows]

    @property
    def healthy(self) -> bool:
        """True when every enabled service is healthy."""
        return all(r["healthy"] for r in self._rows if r["enabled"])

    def _cells(self, row: dict[str, Any], html: bool) -> list[object]:
        health = _health(row)
        return [row["project"] or "-", row["service"], row["window"] or "-", row["pid"] or "-",
                row["endpoint"] or "-", badge(health, _colour(row)) if html else health,
                seconds(row["uptime"]), f"{row['rss_kib'] // 1024} MiB" if row["rss_kib"] else "-"]

    def __repr__(self) -> str:
        if not self._rows:
            return _("no services: nothing is enabled or started (run %stack)")
        return text_table(headers(), [self._cells(r, False) for r in self._rows])

    def _repr_html_(self) -> str:
        if not self._rows:
            return "<p>" + _("no services: nothing is enabled or started (run %stack)") + "</p>"
        return html_table(headers(), [self._cells(r, True) for r in self._rows],
                          raw_columns=frozenset({5}))


def rows_of(statuses) -> list[dict[str, Any]]:
    """The engine's :class:`~stackmagic.engine.ServiceStatus` list as dicts."""
    from dataclasses import asdict

    return [asdict(s) for s in statuses]


def disabled_rows(enabled: set[str]) -> list[dict[str, Any]]:
    """A row for every service stackmagic knows of that is not enabled."""
    from stackmagic.catalog.names import CURRENT, all_names, lookup

    out = []
    for name in all_names():
        info = lookup(name)
        if name in enabled or info is None or info.status != CURRENT:
            continue
        out.append({"service": name, "project": info.project, "window": None, "pid": None,
                    "running": False, "healthy": None, "detail": "disabled", "endpoint": None,
                    "logfile": None, "uptime": None, "rss_kib": None, "enabled": False})
    return out


def services(engine, include_disabled: bool = False) -> ServiceTable:
    """Every enabled or started service, probed now; with ``include_disabled`` also the rest."""
    rows = rows_of(engine.status())
    if include_disabled:
        rows += disabled_rows({r["service"] for r in rows} | set(engine.config.enabled))
    return ServiceTable(rows)
