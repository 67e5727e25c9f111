"""Record which settings a step reads, so a changed setting re-runs exactly the steps that read it.

:func:`tracked` returns a copy of a :class:`~stackmagic.config.settings.Settings` whose every
lookup (``settings["X"]``, ``.get``, ``.bool``, the properties ...) writes ``name -> value`` into
``reads`` (``None`` for an unset name, which is a fact worth recording too).
"""

from __future__ import annotations

import copy
from typing import Any


class _Recording(dict):
    __slots__ = ("reads",)

    def __getitem__(self, name: str) -> str:
        try:
            value = super().__getitem__(name)
        except KeyError:
            self.reads[name] = None
            raise
        self.reads[name] = value
        return value

    def get(self, name: str, default: Any = None) -> Any:
        value = super().get(name)
        self.reads[name] = value
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        found = super().__contains__(name)
        if isinstance(name, str):
            self.reads[name] = super().get(name)
        return found


def tracked(settings, reads: dict[str, str | None]):
    """A view of ``settings`` that records every read into ``reads``."""
    view = copy.copy(settings)
    recording = _Recording(settings._values)
    recording.reads = reads
    view._values = recording
    return view
