"""stackmagic: devstack rebuilt in Python, driven from Jupyter."""

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """``%load_ext stackmagic``: register the magics (IPython is imported only here)."""
    from stackmagic.magics import load_ipython_extension as load

    load(ipython)
