"""The "Python 3 (stackmagic)" kernelspec: an IPython kernel that loads the magics at start.

>>> install(prefix="/tmp/somewhere")             # doctest: +SKIP
'/tmp/somewhere/share/jupyter/kernels/stackmagic'
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

NAME = "stackmagic"
DISPLAY_NAME = "Python 3 (stackmagic)"


def spec(python: str | None = None) -> dict:
    """The kernel.json: ipykernel on ``python`` (default: this one) with ``--ext stackmagic``."""
    return {
        "argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--ext", "stackmagic"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }


def install(*, user: bool = False, prefix: str | None = None, sys_prefix: bool = False) -> str:
    """Install the kernelspec (for this user, into ``prefix``, or into ``sys.prefix``; default:
    the system-wide Jupyter path) and return the directory it went to."""
    from jupyter_client.kernelspec import KernelSpecManager

    if sys_prefix:
        prefix = sys.prefix
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / NAME
        source.mkdir()
        (source / "kernel.json").write_text(json.dumps(spec(), indent=1) + "\n")
        return KernelSpecManager().install_kernel_spec(str(source), kernel_name=NAME, user=user,
                                                       prefix=prefix)
