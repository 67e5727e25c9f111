"""The notebook front end: IPython magics over the same engine the CLI uses.

``%load_ext stackmagic`` (or the "Python 3 (stackmagic)" kernel) registers
:class:`~stackmagic.magics.core.StackMagics`: ``%%localrc``, ``%%local_conf``, ``%stack``,
``%unstack``, ``%stack_clean``, ``%services``, ``%screen_tail`` and ``%screen``.
"""

from __future__ import annotations

from stackmagic.magics.core import StackMagics
from stackmagic.magics.render import MagicError


def load_ipython_extension(ipython) -> None:
    """Register the magics in ``ipython`` (called by ``%load_ext stackmagic``)."""
    ipython.register_magics(StackMagics)


__all__ = ["MagicError", "StackMagics", "load_ipython_extension"]
