"""The tutorials in a real browser (issues 6, 14 and 15): JupyterLab on 127.0.0.1, headless Debian
Chromium driven by Playwright, on the session's shared cloud at its heat stage (after the nbval
run of the series: tests/test_tutorials.py). The server's environment, and so the kernel's,
holds the cloud's sandbox, as a reader's ``DEST=/x jupyter lab`` would. 02 runs first and
writes the local.conf beside the notebooks; then 05 runs all its cells: a guest booted, pinged
and reached over SSH from the provider namespace, a volume attached and seen inside it, an
object in Swift, a Heat stack, Horizon's instances page, and everything deleted. No cell may
show an error; the page must show the guest's own answer (its hostname) and the Horizon
screenshot as an image. The page is saved as ``test-artifacts/tutorial-05.png``. The kernels
and the browser are stopped; the cloud stays for the modules after this one.

Slow (05 boots a guest under QEMU's emulation: 2-4 minutes here), root only, run by CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser import page as lab_page
from tests.browser.lab import JupyterLab, copy_cleared
from tests.browser.procs import alive, descendants
from tests.test_tutorials import TUTORIALS, listening

pytestmark = [pytest.mark.slow, pytest.mark.cloud_stage("heat")]

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "test-artifacts" / "tutorial-05.png"


def run_notebook(page, lab: JupyterLab, notebook: str, timeout: float) -> None:
    """Open ``notebook``, Run All Cells, and assert every cell ran on the stackmagic kernel
    without an error on the page."""
    lab_page.open_notebook(page, lab, notebook)
    assert lab.kernel_of(notebook)["name"] == "stackmagic"
    lab_page.run_all(page)
    state = lab_page.wait_all_ran(page, timeout)
    assert not state["errors"], (notebook, state["errors"])
    assert state["done"] == state["total"], (notebook, state)


def save_screenshot(page, source: str) -> None:
    """The page, with the output of the cell whose source has ``source`` in view, saved to
    :data:`SCREENSHOT`."""
    SCREENSHOT.parent.mkdir(exist_ok=True)
    cell = lab_page.code_cell(page, source)
    if cell.count() == 1:
        cell.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(SCREENSHOT))


def test_tutorial_05_uses_the_cloud_in_jupyterlab(tutorial_run):
    from playwright.sync_api import sync_playwright

    assert Path(lab_page.CHROMIUM).exists(), "install Debian's chromium: apt-get install chromium"
    root = tutorial_run["root"] / "browser"
    shutil.rmtree(root, ignore_errors=True)
    started: set[int] = set()
    lab = JupyterLab(copy_cleared(TUTORIALS, root / "notebooks"), root / "jupyter", tutorial_run["env"])
    try:
        lab.start()
        started.add(lab.proc.pid)
        with sync_playwright() as pw:
            browser = lab_page.launch(pw, root / "chromium-profile")
            started |= descendants(os.getpid()) - {lab.proc.pid}
            page = browser.pages[0] if browser.pages else browser.new_page()
            try:
                run_notebook(page, lab, "02-localrc.ipynb", timeout=120)
                assert (root / "notebooks" / "local.conf").exists()
                run_notebook(page, lab, "05-use-openstack.ipynb", timeout=900)
                # the guest's own answer over SSH, and Horizon's page as an image
                answer = lab_page.code_cell(page, 'said = in_guest("hostname")').locator(".jp-OutputArea-output")
                assert "仮想マシンの答え: tutorial-vm" in answer.inner_text()
                shot = lab_page.code_cell(page, "shot = %horizon project/instances/")
                image = shot.locator(".jp-OutputArea-output img")
                assert image.count() == 1 and image.evaluate("e => e.naturalWidth") >= 800
                assert "tutorial-vm" in lab_page.code_cell(page, "shot.text").locator(".jp-OutputArea-output").inner_text()
            finally:
                save_screenshot(page, "shot = %horizon project/instances/")
                started |= descendants(lab.proc.pid)
                browser.close()
    finally:
        lab.stop()
    assert not listening(lab.port)
    assert not alive(started), f"left running: {sorted(alive(started))}"
