"""The notebook front end: IPython magics over the same engine the CLI uses.

``%load_ext stackmagic`` (or the "Python 3 (stackmagic)" kernel) registers
:class:`~stackmagic.magics.core.StackMagics`: ``%%localrc``, ``%%local_conf``, ``%stack``,
``%unstack``, ``%stack_clean``, ``%services``, ``%screen_tail``, ``%screen``, ``%horizon`` and
``%here``; and (:func:`stackmagic.here.install`) the committed outputs of cells tagged ``cloud``
are shown instead of running them where the whole cloud cannot run.
"""

from __future__ import annotations

from stackmagic.magics.core import StackMagics
from stackmagic.magics.render import MagicError


def load_ipython_extension(ipython) -> None:
    """Register the magics in ``ipython`` (called by ``%load_ext stackmagic``) and the replay of
    cells tagged ``cloud``."""
    from stackmagic import here

    ipython.register_magics(StackMagics)
    here.install(ipython)


__all__ = ["MagicError", "StackMagics", "load_ipython_extension"]
