"""stackmagic: devstack rebuilt in Python, driven from Jupyter."""

__version__ = "0.1.0"
