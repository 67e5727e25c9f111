"""Sample localrc / local.conf files shipped with stackmagic.

Each sample's first comment line is ``# name: description``; :func:`list_samples`
reads it, so adding a file here is all it takes to add a sample.
"""

from __future__ import annotations

from pathlib import Path

from stackmagic.errors import StackError

_HERE = Path(__file__).parent
_SUFFIXES = (".conf", ".localrc")


def _description(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").partition(": ")[2] or line.lstrip("# ")
    return ""


def list_samples() -> dict[str, tuple[Path, str]]:
    """Sample name -> (path, one-line description), sorted by name."""
    return {
        path.stem: (path, _description(path))
        for path in sorted(_HERE.iterdir())
        if path.suffix in _SUFFIXES
    }


def sample_path(name: str) -> Path:
    """The path of sample ``name`` (as listed by :func:`list_samples`)."""
    samples = list_samples()
    if name not in samples:
        raise StackError(f"no sample named {name!r}; choose one of: {', '.join(samples)}")
    return samples[name][0]
