"""The Japanese tutorials where the whole cloud cannot run (stackmagic/here.py): the series 00-08
runs in order with ``STACKMAGIC_CLOUD=no`` in the kernel's environment, in a sandbox of its own
(tests/tutorial_outputs.py), not on the session's shared cloud.

There each notebook's first cell says so in one sentence, the quickstart services (Keystone,
Glance, Placement, which 02 puts in local.conf and 03 stacks) really run, and every cell tagged
``cloud`` shows a notice and then the outputs committed with it instead of running. No cell may
fail: a cell that needs the whole cloud must be tagged.

Slow (03 stacks the quickstart, 08 unstacks and cleans it: about 2 minutes here), root only (the
tutorials run as root, and so does the quickstart's sandbox), run by CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import processes_under, wait_until
from tests.tutorial_outputs import TUTORIALS, new_root, prepare, stop

pytestmark = pytest.mark.slow

#: What the fixture appends to each notebook (and takes out again): the kernel's parsed input
#: history, which holds what each cell really executed.
PROBE = 'print(__import__("json").dumps(In))'
QUICKSTART = {"key", "g-api", "placement-api"}


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _committed(name: str) -> dict:
    return json.loads((TUTORIALS / name).read_text())


def _code_cells(nb) -> list:
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


def _tagged(cell) -> bool:
    from stackmagic.here import TAG

    return TAG in (cell.get("metadata") or {}).get("tags", [])


def _replayed(output) -> bool:
    from stackmagic.here import MARK

    return bool(((output.get("metadata") or {}).get(MARK) or {}).get("replayed"))


def _shown(outputs) -> list[tuple[str, object]]:
    """What ``outputs`` show, as the replay publishes it: streams by name (consecutive ones of a
    stream joined), rich outputs by their mime bundle; notices and errors left out."""
    shown: list[tuple[str, object]] = []
    for output in outputs:
        kind = output["output_type"]
        if _replayed(output) or kind == "error":
            continue
        if kind == "stream":
            if shown and shown[-1][0] == output["name"]:
                shown[-1] = (output["name"], shown[-1][1] + _text(output["text"]))
            else:
                shown.append((output["name"], _text(output["text"])))
        else:
            shown.append(("data", {mime: value if isinstance(value, dict) else _text(value)
                                   for mime, value in output.get("data", {}).items()}))
    return shown


def _stdout(cell) -> str:
    return "".join(_text(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream")


@pytest.fixture(scope="module")
def series():
    """The series run once in order on the quickstart: each executed notebook (the probe cell
    taken out) with the inputs its kernel executed, and what ran after 03, 05 and 08. Whatever
    is left running is unstacked (``--all``) and the sandbox's tmux server ended afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the tutorials and their sandbox run as root")
    import nbformat
    from nbclient import NotebookClient

    from stackmagic.samples import sandbox

    tmp = Path(tempfile.mkdtemp(prefix="tutorials-nocloud-"))
    tmp.chmod(0o755)
    root = new_root(tmp)
    root.mkdir()
    run = prepare(root, sandbox(root, "tutorial"))
    env = {**run["env"], "STACKMAGIC_CLOUD": "no"}
    work = run["work"]
    saved = dict(os.environ)
    os.environ.update(env)
    found: dict = {"root": root, "env": env, "notebooks": {}, "inputs": {}}
    try:
        for path in sorted(work.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(PROBE))
            NotebookClient(nb, kernel_name="stackmagic", timeout=600, allow_errors=True,
                           resources={"metadata": {"path": str(work)}}).execute()
            probe = nb.cells.pop()
            found["inputs"][path.name] = json.loads(_stdout(probe))
            found["notebooks"][path.name] = nb
            if path.name.startswith("03-"):
                found["after 03"] = {s.service: s for s in _engine(work / "local.conf", env).status()}
            if path.name.startswith("05-"):
                found["images"] = _images(env["CLOUDS_YAML"])
            if path.name.startswith("08-"):
                found["left after 08"] = wait_until(lambda: not processes_under(root), 30) or processes_under(root)
                found["tmux after 08"] = subprocess.run(["tmux", "-L", env["TMUX_SOCKET"], "list-sessions"],
                                                        capture_output=True, text=True)
        yield found
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stop(env, work)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _engine(conf: Path, env: dict[str, str]):
    """The engine of the run's stack, as %services in its notebooks has it: the local.conf
    evaluated with the kernel's environment."""
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    return Engine(load_config(conf, environ=env))


def _images(clouds_yaml: str) -> list[str]:
    """What Glance lists, as 05's image list cell prints it."""
    import openstack.config
    from openstack.connection import Connection

    config = openstack.config.OpenStackConfig(config_files=[clouds_yaml])
    conn = Connection(config=config.get_one(cloud="devstack-admin"))
    try:
        return [f"{i.name} {i.disk_format} {i.status}" for i in conn.image.images()]
    finally:
        conn.close()


def _cell(series, name: str, cell_id: str):
    return next(c for c in series["notebooks"][name].cells if c.get("id") == cell_id)


def test_the_whole_series_ran_and_no_cell_failed(series):
    assert sorted(series["notebooks"]) == sorted(p.name for p in TUTORIALS.glob("*.ipynb"))
    failed = {(name, cell.get("id")): f"{o['ename']}: {o['evalue'][:200]}"
              for name, nb in series["notebooks"].items() for cell in nb.cells
              for o in cell.get("outputs", []) if o["output_type"] == "error"}
    assert not failed, failed


def _in_japanese(say):
    """What ``say()`` says in the tutorials' language (each notebook's first cell sets it)."""
    from stackmagic import i18n

    before = i18n.language()
    i18n.set_language("ja")
    try:
        return say()
    finally:
        i18n.set_language(before)


def test_every_first_cell_says_this_machine_cannot_run_the_whole_cloud(series):
    from stackmagic import here

    sentence = _in_japanese(here.Here(False, (here.CHOSEN,)).sentence)
    assert "クラウド" in sentence
    for name, nb in series["notebooks"].items():
        first = _code_cells(nb)[0]
        plain = [_text(o["data"]["text/plain"]) for o in first["outputs"] if "text/plain" in o.get("data", {})]
        assert sentence in plain, (name, plain)


def test_tagged_cells_show_the_notice_then_their_committed_outputs_and_do_not_run(series):
    from stackmagic.here import notice

    shown_notice = _in_japanese(notice)[0]["text/plain"]
    assert "クラウド" in shown_notice
    tagged = 0
    for name, nb in series["notebooks"].items():
        inputs = series["inputs"][name]
        committed = {c["id"]: c for c in _code_cells(_committed(name))}
        for cell in _code_cells(nb):
            where = (name, cell["id"])
            outputs = cell["outputs"]
            assert cell["execution_count"], where
            executed = inputs[cell["execution_count"]]
            if _tagged(cell):
                tagged += 1
                assert outputs and _replayed(outputs[0]), where
                assert _text(outputs[0]["data"]["text/plain"]) == shown_notice, where
                assert not [o for o in outputs[1:] if _replayed(o)], where
                assert _shown(outputs) == _shown(committed[cell["id"]]["outputs"]), where
                assert "replay(" in executed and cell["source"].strip() not in executed, (where, executed)
            else:
                assert not [o for o in outputs if _replayed(o)], where
                assert "replay(" not in executed, (where, executed)
    assert tagged >= 40, tagged


def test_the_quickstart_really_ran(series):
    after_03 = series["after 03"]
    assert QUICKSTART <= set(after_03), sorted(after_03)
    assert all(after_03[name].healthy for name in QUICKSTART), {n: after_03[n].detail for n in QUICKSTART}
    images = _cell(series, "05-use-openstack.ipynb", "05-12")
    assert not _tagged(images)
    listed = _stdout(images).splitlines()
    assert listed and listed == series["images"], (listed, series["images"])
    assert all(line.endswith(" active") for line in listed), listed


def test_after_08_nothing_of_the_sandbox_runs(series):
    assert series["left after 08"] is True, series["left after 08"]
    tmux = series["tmux after 08"]
    assert tmux.returncode != 0, tmux.stdout
