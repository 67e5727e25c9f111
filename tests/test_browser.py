"""The tutorials in a real browser (issues 6 and 14): JupyterLab on 127.0.0.1, headless Debian
Chromium driven by Playwright opens 00, 01 and 02 and runs all their cells (02 writes the
local.conf beside the notebooks), then 03 (a real cold ``%stack``; the server's environment, and so
the kernel's, moves DEST, the ports and the tmux socket into a sandbox, as a reader's
``DEST=/x jupyter lab`` would). The summary of ``%stack`` must appear in Japanese, with every service
健全 (healthy), and no cell may show an error. The page is saved as
``test-artifacts/tutorial-03.png``. Nothing started is left running.

Slow (a cold stack: 75-100 s here with warm pip and uv caches; 03 may take 5 minutes), run by CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import page as lab_page
from tests.browser.lab import JupyterLab, copy_cleared
from tests.browser.procs import alive, descendants, tmux_tree
from tests.test_tutorials import TUTORIALS, listening
from tests.tutorial_outputs import new_root, run_environment

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "test-artifacts" / "tutorial-03.png"
SERVICES = ("key", "g-api", "placement-api", "memcached")

def run_notebook(page, lab: JupyterLab, notebook: str, timeout: float) -> None:
    """Open ``notebook``, Run All Cells, and assert every cell ran on the stackmagic kernel
    without an error on the page."""
    lab_page.open_notebook(page, lab, notebook)
    assert lab.kernel_of(notebook)["name"] == "stackmagic"
    lab_page.run_all(page)
    state = lab_page.wait_all_ran(page, timeout)
    assert not state["errors"], (notebook, state["errors"])
    assert state["done"] == state["total"], (notebook, state)


def assert_summary_table(page) -> None:
    """``%stack``'s result in 03 (the cell's value, below its live progress) shows, in Japanese, a
    row per service in the table with a 状態 (health) column, each 健全 (healthy), and how many
    steps ran."""
    cell = lab_page.code_cell(page, "summary = %stack")
    output = cell.locator(".jp-OutputArea-executeResult .jp-OutputArea-output")
    table = output.locator("table").filter(has=page.get_by_role("columnheader", name="状態", exact=True))
    for service in SERVICES:
        row = table.locator("tr").filter(
            has=page.locator("td", has_text=re.compile(rf"^{re.escape(service)}$")))
        assert row.count() == 1, f"no row for {service} in the summary of %stack"
        assert "健全" in row.inner_text() and "異常" not in row.inner_text(), row.inner_text()
    text = output.inner_text()
    assert "実行した手順" in text and "stack の所要時間" in text and "steps ran" not in text


def save_screenshot(page) -> None:
    """The page, with the summary of ``%stack`` in view if there is one, saved to :data:`SCREENSHOT`."""
    SCREENSHOT.parent.mkdir(exist_ok=True)
    summary = lab_page.code_cell(page, "summary = %stack").locator(".jp-OutputArea-executeResult")
    if summary.count() == 1:
        summary.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(SCREENSHOT))


def unstack(env: dict[str, str]) -> str | None:
    """``stackmagic unstack --all -c <the local.conf 02 wrote>`` (if it wrote one), then the end of
    the tmux server; return what went wrong with the unstack, if anything."""
    conf = Path(env["DEST"]).parent / "notebooks" / "local.conf"
    failure = None
    if conf.exists():
        done = subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "unstack", "--all",
                               "-c", str(conf)], cwd=conf.parent, capture_output=True, text=True,
                              env={**os.environ, **env})
        failure = None if done.returncode == 0 else done.stdout + done.stderr
    subprocess.run(["tmux", "-L", env["TMUX_SOCKET"], "kill-server"], capture_output=True)
    Path(f"/tmp/tmux-{os.getuid()}/{env['TMUX_SOCKET']}").unlink(missing_ok=True)
    return failure


def test_tutorial_03_runs_in_jupyterlab_and_shows_the_stack_summary(tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(lab_page.CHROMIUM).exists(), "install Debian's chromium: apt-get install chromium"
    root = new_root(tmp_path)
    prefix = root / "prefix"
    subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "kernel", "install",
                    "--prefix", str(prefix)], check=True, capture_output=True)
    env = {**run_environment(root), "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    ports = [int(v) for k, v in env.items() if k.endswith("_PORT")]
    started: set[int] = set()
    lab = JupyterLab(copy_cleared(TUTORIALS, root / "notebooks"), root / "jupyter", env)
    try:
        lab.start()
        started.add(lab.proc.pid)
        with sync_playwright() as pw:
            browser = lab_page.launch(pw, root / "chromium-profile")
            started |= descendants(os.getpid()) - {lab.proc.pid}
            page = browser.pages[0] if browser.pages else browser.new_page()
            try:
                for notebook in ("00-introduction.ipynb", "01-preparation.ipynb", "02-localrc.ipynb"):
                    run_notebook(page, lab, notebook, timeout=120)
                assert (root / "notebooks" / "local.conf").exists()
                run_notebook(page, lab, "03-stack.ipynb", timeout=300)
                assert_summary_table(page)
                kernels, stack = descendants(lab.proc.pid), tmux_tree(env["TMUX_SOCKET"])
                assert kernels and stack, "the kernels or the stack on the tutorial's tmux socket are missing"
            finally:
                save_screenshot(page)
                started |= descendants(lab.proc.pid) | tmux_tree(env["TMUX_SOCKET"])
                browser.close()
    finally:
        failure = unstack(env)
        lab.stop()
    assert failure is None, failure
    assert not [p for p in ports + [lab.port] if listening(p)]
    assert not alive(started), f"left running: {sorted(alive(started))}"
