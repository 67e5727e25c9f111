"""Driving JupyterLab in headless Debian Chromium through Playwright, as a reader would: open a
notebook, Run > Run All Cells, wait until every cell ran, read the outputs the page shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackmagic.dashboard import CHROMIUM, FLAGS       # Debian's Chromium, as the product runs it
from tests.conftest import wait_until

__all__ = ["CHROMIUM", "FLAGS", "launch"]

STDERR = 'application/vnd.jupyter.stderr'

#: The state of the open notebook's code cells, read from their prompts: ``[ ]:`` not run,
#: ``[*]:`` queued or running, ``[12]:`` done; and the error outputs shown so far.
CELL_STATE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  const errors = [...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')]
    .filter(o => (o.getAttribute('data-mime-type') === '%s' && /Traceback|Error/.test(o.textContent))
                 || /Error/.test(o.textContent))
    .map(o => o.textContent.slice(0, 2000));
  return {total: prompts.length, done: prompts.filter(p => /^\\[\\d+\\]:$/.test(p)).length,
          running: prompts.filter(p => p.includes('*')).length, errors};
}""" % STDERR


def launch(playwright: Any, profile: Path) -> Any:
    """Debian's Chromium, headless, with a fresh profile in ``profile``: a browser context."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
        viewport={"width": 1440, "height": 1000}, locale="ja-JP")


def open_notebook(page: Any, lab: Any, notebook: str, timeout: float = 120) -> None:
    """Open ``notebook`` alone in a workspace of its own and wait until its kernel is idle."""
    page.goto(lab.url(f"/lab/workspaces/{Path(notebook).stem}/tree/{notebook}"))
    page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=timeout * 1000)

    def idle() -> bool:
        return (lab.kernel_of(notebook) or {}).get("execution_state") == "idle"

    assert wait_until(idle, timeout), f"the kernel of {notebook} did not become idle:\n{lab.log_tail()}"


def run_all(page: Any) -> None:
    """Run > Run All Cells, through the menu bar."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def cell_state(page: Any) -> dict[str, Any]:
    """``total``, ``done``, ``running`` code cells and the ``errors`` the page shows now."""
    return page.evaluate(CELL_STATE_JS)


def wait_all_ran(page: Any, timeout: float) -> dict[str, Any]:
    """Wait until every code cell has run, or an error stopped the run; return :func:`cell_state`."""
    page.wait_for_function(
        f"() => {{ const s = ({CELL_STATE_JS})();"
        " return s.total > 0 && (s.done === s.total || (s.running === 0 && s.errors.length > 0)); }",
        polling=500, timeout=timeout * 1000)
    return cell_state(page)


def code_cell(page: Any, source: str) -> Any:
    """The code cell whose input contains ``source``."""
    return page.locator(".jp-NotebookPanel .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=source))
