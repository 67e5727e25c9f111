"""What this machine can run of the tutorials' cloud, and what a kernel shows where it cannot.

The tutorials' cloud (Nova guests under QEMU, Open vSwitch/OVN, Cinder's disks) needs root and
QEMU; Binder or a small machine has neither, or too little memory (``STACKMAGIC_CLOUD=no``).
:func:`here` says which, in a sentence in the reader's language (``%here`` shows it).

There a kernel runs what it can (the quickstart services) and, for a code cell tagged ``cloud`` in
a notebook of its current directory, shows the outputs committed with that cell instead of running
it: :func:`install` puts an input transformer in front of IPython's own, which sees each cell's
raw source and replaces an unedited tagged cell by a call to :func:`replay`.

>>> from stackmagic.here import here
>>> here()                                        # doctest: +SKIP
This machine can run the whole cloud.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from stackmagic.errors import ConfigError
from stackmagic.i18n import N_, _

QEMU = "qemu-system-x86_64"
#: The environment variable that turns the cloud off on a machine that could run it.
CHOICE = "STACKMAGIC_CLOUD"
#: The notebook cell tag of a cell that needs the whole cloud.
TAG = "cloud"
#: The key of the notice's output metadata: ``{"stackmagic": {"replayed": true}}``.
MARK = "stackmagic"

NOT_ROOT = N_("not root: libvirtd, Open vSwitch and Cinder's disks need root")
NO_QEMU = N_("no QEMU (qemu-system-x86_64): guests cannot run; ./scripts/setup-host installs it")
CHOSEN = N_("STACKMAGIC_CLOUD=no: only the quickstart services")

_CAN = N_("This machine can run the whole cloud.")
_CANNOT = N_("This machine cannot run the whole cloud ({reasons}): only the quickstart services run "
             "here, and cells that need the cloud show the outputs they had on a machine that can run it.")
_JOIN = N_("; ")
_NOTICE = N_("(Not run, as this machine cannot run the cloud. What follows is the output on a "
             "machine that can run it.)")


@dataclass(frozen=True)
class Here:
    """Whether the whole cloud runs on this machine; if not, why (English msgids, in order)."""

    cloud: bool
    reasons: tuple[str, ...] = ()

    def sentence(self) -> str:
        """One sentence in the current language."""
        if self.cloud:
            return _(_CAN)
        return _(_CANNOT).format(reasons=_(_JOIN).join(_(reason) for reason in self.reasons))

    def __repr__(self) -> str:
        return self.sentence()

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.sentence())}</p>"


def here(environ=None) -> Here:
    """What this machine can run: the whole cloud only as root, with QEMU, and unless
    ``STACKMAGIC_CLOUD=no``. Another value of ``STACKMAGIC_CLOUD`` than ``yes`` or ``no`` (or
    unset, or empty) is a :class:`ConfigError`."""
    environ = os.environ if environ is None else environ
    choice = environ.get(CHOICE, "")
    if choice not in ("", "yes", "no"):
        raise ConfigError(f"{CHOICE}={choice!r} is not understood: write {CHOICE}=no to run only the "
                          f"quickstart services, or {CHOICE}=yes (or leave it unset) to run the whole "
                          "cloud where this machine can")
    reasons = []
    if os.geteuid() != 0:
        reasons.append(NOT_ROOT)
    if shutil.which(QEMU, path=environ.get("PATH")) is None:
        reasons.append(NO_QEMU)
    if choice == "no":
        reasons.append(CHOSEN)
    return Here(cloud=not reasons, reasons=tuple(reasons))


# -- replaying committed outputs in a kernel ------------------------------------------------------

def _normal(source: str) -> str:
    """A cell's source without trailing whitespace (on each line, and blank lines at the end)."""
    return "\n".join(line.rstrip() for line in source.splitlines()).rstrip()


def _text(value) -> str:
    """A notebook's multi-line string: a str, or the list of lines nbformat may store."""
    return "".join(value) if isinstance(value, list) else str(value)


def _replayed(output: dict) -> bool:
    return bool(((output.get("metadata") or {}).get(MARK) or {}).get("replayed"))


def _tagged_cells(path: Path) -> dict[str, tuple[dict, ...]]:
    """source -> committed outputs of the code cells tagged ``cloud`` in the notebook ``path``
    (the first cell wins when two have the same source); a notebook that is not JSON has none."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = notebook.get("cells", [])
    except (OSError, ValueError, AttributeError):
        return {}
    found: dict[str, tuple[dict, ...]] = {}
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        if TAG not in ((cell.get("metadata") or {}).get("tags") or []):
            continue
        found.setdefault(_normal(_text(cell.get("source", ""))), tuple(cell.get("outputs") or ()))
    return found


class Replayer:
    """The input transformer (a cleanup transform: it gets the raw cell's lines). Where the cloud
    runs it returns them as they are and reads nothing."""

    #: IPython's ``check_complete`` (a front end asking whether input is complete) skips
    #: transforms with side effects: it need not read notebooks to answer that.
    has_side_effects = True

    def __init__(self, cloud: bool):
        self.cloud = cloud
        self._parsed: dict[Path, tuple[tuple[int, int], dict[str, tuple[dict, ...]]]] = {}

    def outputs(self, source: str, folder: Path | None = None) -> tuple[dict, ...] | None:
        """The committed outputs of the tagged cell whose source is ``source``, from the
        notebooks of ``folder`` (the current directory) in name order; None when there is none."""
        source = _normal(source)
        for path in sorted((folder or Path.cwd()).glob("*.ipynb")):
            try:
                stat = path.stat()
            except OSError:
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._parsed.get(path)
            if cached is None or cached[0] != key:
                cached = self._parsed[path] = (key, _tagged_cells(path))
            if source in cached[1]:
                return cached[1][source]
        return None

    def __call__(self, lines: list[str]) -> list[str]:
        if self.cloud:
            return lines
        outputs = self.outputs("".join(lines))
        if outputs is None:
            return lines
        token = hashlib.sha256(json.dumps(outputs, sort_keys=True).encode()).hexdigest()[:16]
        _PENDING[token] = outputs
        return [f"__import__({__name__!r}, fromlist=['replay']).replay({token!r})\n"]


#: Outputs a transformed cell will replay, by token (few: one entry per distinct tagged cell).
_PENDING: dict[str, tuple[dict, ...]] = {}


def notice() -> tuple[dict[str, str], dict]:
    """The notice shown before replayed outputs: its mime bundle and metadata."""
    text = _(_NOTICE)
    return ({"text/plain": text, "text/html": f'<p style="color:#6c757d"><i>{html.escape(text)}</i></p>'},
            {MARK: {"replayed": True}})


def _bundle(data: dict) -> dict:
    """A committed mime bundle as a kernel publishes it (JSON types stay objects)."""
    return {mime: value if mime == "application/json" or mime.endswith("+json") else _text(value)
            for mime, value in data.items()}


def replay(token: str) -> None:
    """Show the notice, then the committed outputs in order: streams to stdout/stderr, rich
    outputs as display data; errors and earlier notices are left out."""
    from IPython.display import publish_display_data

    data, metadata = notice()
    publish_display_data(data, metadata=metadata)
    for output in _PENDING[token]:
        kind = output.get("output_type")
        if _replayed(output):
            continue
        if kind == "stream":
            stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
            stream.write(_text(output.get("text", "")))
            stream.flush()
        elif kind in ("display_data", "execute_result"):
            publish_display_data(_bundle(output.get("data") or {}), metadata=output.get("metadata") or {})


def install(shell) -> Replayer | None:
    """Put the replaying transformer in front of ``shell``'s input transformers (once); whether
    the cloud runs is decided now, for the kernel's life. A wrong ``STACKMAGIC_CLOUD`` is
    reported on stderr and nothing is replayed (``%here`` shows the same error)."""
    transforms = shell.input_transformer_manager.cleanup_transforms
    for transform in transforms:
        if isinstance(transform, Replayer):
            return transform
    try:
        cloud = here().cloud
    except ConfigError as err:
        print(f"stackmagic: {err}", file=sys.stderr)
        return None
    replayer = Replayer(cloud)
    transforms.insert(0, replayer)
    return replayer
