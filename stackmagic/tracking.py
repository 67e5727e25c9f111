"""Record which settings a step reads, so a changed setting re-runs exactly the steps that read it.

:func:`tracked` returns a copy of a :class:`~stackmagic.config.settings.Settings` whose every
lookup (``settings["X"]``, ``.get``, ``.bool``, the properties ...) writes ``name -> value`` into
``reads`` (``None`` for an unset name, which is a fact worth recording too).

:func:`tracked_config` does the same for what a step asks the :class:`~stackmagic.config.Config`
about the enabled services (``is_service_enabled``, ``enabled``, ``layout`` ...): a configure
step that writes one option when Ceilometer runs, or the agents' OVSDB address in the agent
layout, re-runs when only the enabled services change. Those questions are recorded under
names no setting can have (``config.…``); :func:`answer` asks them again of another Config.
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


#: the Config attributes a step may read whose answer is recorded (as ``config.<name>``)
_ATTRIBUTES = ("enabled", "disabled", "layout", "set_aside", "renamed")
_ASKED = "config.is_service_enabled:"


def answer(config, name: str) -> str:
    """What ``config`` answers to the question recorded as ``name`` (a ``config.…`` read)."""
    if name.startswith(_ASKED):
        return "yes" if config.is_service_enabled(*name[len(_ASKED):].split(",")) else "no"
    value = getattr(config, name.removeprefix("config."))
    if isinstance(value, dict):
        return repr(sorted(value.items()))
    return repr(value)


def is_question(name: str) -> bool:
    """True for a read recorded by :func:`tracked_config` (not a setting's name)."""
    return name.startswith("config.")


class _TrackedConfig:
    """A view of a Config that records the questions asked of it (see :func:`tracked_config`)."""

    def __init__(self, config, reads: dict[str, str | None]):
        self._config = config
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._config, name)
        if name in _ATTRIBUTES:
            self._reads[f"config.{name}"] = answer(self._config, f"config.{name}")
        return value

    @property
    def settings(self):
        return tracked(self._config.settings, self._reads)

    def is_service_enabled(self, *names: str) -> bool:
        question = _ASKED + ",".join(names)
        self._reads[question] = answer(self._config, question)
        return self._reads[question] == "yes"


def tracked_config(config, reads: dict[str, str | None]):
    """A view of ``config`` that records into ``reads`` every question about the enabled
    services and every setting read through ``.settings``."""
    return _TrackedConfig(getattr(config, "_config", config), reads)
