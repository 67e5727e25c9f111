"""Helpers for the real-browser test of the tutorials: a JupyterLab server on a free port, a
headless Debian Chromium driven by Playwright, and the bookkeeping of the processes they start."""
