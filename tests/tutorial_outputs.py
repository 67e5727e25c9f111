"""The Japanese tutorials' runs and what their committed outputs show.

A run of the series (under nbval in tests/test_tutorials.py, in JupyterLab in
tests/test_browser.py, or by ``python -m tests.tutorial_outputs`` to refresh the outputs) puts the
stack in a sandbox: the kernel's environment sets DEST, CLOUDS_YAML, TMUX_SOCKET and a free port
for every service (:func:`run_environment`). The notebooks never see those names: the localrc
sees them as devstack's sees ``DEST=/x ./stack.sh``.

The committed outputs show what a reader who runs the series with the defaults sees: ``/opt/stack``,
port 5000, no tmux socket (:func:`readers_view` turns a run's output into that). nbval compares a
run with them through ``notebooks/sanitize.cfg``, which maps both to the same text.

``python -m tests.tutorial_outputs`` executes the series in a sandbox and writes the reader's view
of every output back into notebooks/ja/ (about 20 minutes: 03 stacks the tutorials' cloud cold,
05 boots a guest, 06 switches it to everything; nothing is left running).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "notebooks" / "ja"

#: Where a run's sandbox lives: ``<tmp>/tutorial-run-<8 hex>`` (a run of its own, as
#: :func:`refresh` makes), or the session's shared cloud, ``<tmp>/sm-default-<8>``
#: (tests/default_cloud.py), which the series runs on in the test suite.
RUN_DIR = re.compile(r"(?:/[\w.+-]+)*/(?:tutorial-run-[0-9a-f]{8}|sm-default-[\w]{8})")
#: The tmux socket of a run (stackmagic.samples.sandbox names it so).
SOCKET = re.compile(r"stackmagic-(?:tutorial|default)-[0-9a-f]{8}")


def _default_ports() -> dict[str, str]:
    from stackmagic.catalog import builtin_projects

    return {name: str(port) for project in builtin_projects() for name, port in project.ports.items()}


#: The ports a run moves (every port of the catalog), and the defaults a reader has.
DEFAULT_PORTS = _default_ports()
#: Everything a run sets in the kernel's environment that a reader does not.
RUN_SETTINGS = ("DEST", "DATA_DIR", "LOGDIR", "CLOUDS_YAML", "TMUX_SOCKET", *DEFAULT_PORTS)
#: What a reader's defaults are (root: devstack's /opt/stack).
READER = {"DEST": "/opt/stack", "DATA_DIR": "/opt/stack/data", "LOGDIR": "/opt/stack/logs",
          "CLOUDS_YAML": "~/.config/openstack/clouds.yaml",
          "NOTEBOOKS": "~/stackmagic/notebooks/ja", "PACKAGE": "/usr/local/lib/python3.11/site-packages/stackmagic"}


def environment_of(root: Path, lines: list[str]) -> dict[str, str]:
    """The kernel's environment for a run whose stack is ``root``'s (whose name must match
    :data:`RUN_DIR`), from the sandbox's localrc ``lines``: its DEST, DATA_DIR, LOGDIR,
    CLOUDS_YAML, tmux socket and ports, and a state directory of the run's own."""
    assert RUN_DIR.fullmatch(str(root)), root
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    return {**{name: values[name] for name in RUN_SETTINGS if name in values},
            "XDG_STATE_HOME": str(root / "xdg")}


def run_environment(root: Path) -> dict[str, str]:
    """:func:`environment_of` a new sandbox under ``root`` (:func:`stackmagic.samples.sandbox`)."""
    from stackmagic.samples import sandbox

    return environment_of(root, sandbox(root, "tutorial"))


def prepare(root: Path, lines: list[str]) -> dict:
    """A run of the series on the stack of ``root`` (its sandbox ``lines``): the notebooks copied
    to ``root/notebooks``, the stackmagic kernel installed under ``root/prefix``, and the
    environment to run them in (:func:`environment_of`, with Jupyter told where the kernel is)."""
    import shutil
    import subprocess
    import sys

    work = root / "notebooks"
    work.mkdir(parents=True, exist_ok=True)
    for path in TUTORIALS.glob("*.ipynb"):
        shutil.copy(path, work / path.name)
    prefix = root / "prefix"
    subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "kernel", "install",
                    "--prefix", str(prefix)], check=True, capture_output=True)
    env = {**environment_of(root, lines), "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    return {"root": root, "work": work, "env": env}


def nbval(run: dict, prefixes: list[str], timeout: float):
    """nbval on the run's copies of the notebooks whose names start with ``prefixes`` (in
    order), with notebooks/sanitize.cfg; the finished process."""
    import os
    import subprocess
    import sys

    paths = [str(p) for prefix in prefixes for p in sorted(run["work"].glob(f"{prefix}*.ipynb"))]
    assert len(paths) == len(prefixes), (prefixes, paths)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval",
         "--nbval-sanitize-with", str(ROOT / "notebooks" / "sanitize.cfg"), "--nbval-cell-timeout", "900",
         "--rootdir", str(run["root"]), *paths],
        capture_output=True, text=True, cwd=run["root"], timeout=timeout, env={**os.environ, **run["env"]})


def new_root(tmp: Path) -> Path:
    return tmp / f"tutorial-run-{uuid.uuid4().hex[:8]}"


# -- the reader's view ---------------------------------------------------------------------------

def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cut(text: str, start: int, end: int | None) -> str:
    """The characters of ``text`` between display columns ``start`` and ``end``."""
    out, col = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if col >= start and (end is None or col + w <= end):
            out.append(ch)
        col += w
    return "".join(out)


_DASHES = re.compile(r"-+(?:  -+)*")


def _spans(dashes: str) -> list[tuple[int, int | None]]:
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]
    return [(start, spans[i + 1][0] if i + 1 < len(spans) else None) for i, (start, _e) in enumerate(spans)]


def _gap(text: str, start: int, end: int) -> str:
    """The characters of ``text`` that touch display columns ``start`` to ``end`` (a wide
    character that straddles the border counts)."""
    out, col = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if col < end and col + w > start:
            out.append(ch)
        col += w
    return "".join(out)


def _is_row(lines: list[str], j: int, spans: list[tuple[int, int | None]]) -> bool:
    """Whether ``lines[j]`` is a row of the table with ``spans``: not blank, not a "word:" line,
    not the title or header of the next table, and blank where the columns are apart."""
    line = lines[j]
    if not line.strip() or line.split(" ", 1)[0].endswith(":"):
        return False
    if any(j + k < len(lines) and _DASHES.fullmatch(lines[j + k]) for k in (1, 2)):
        return False
    for (_s, end), (nxt, _e) in zip(spans, spans[1:]):
        if end is not None and _gap(line, end - 2, nxt).strip():
            return False
    return True


def _render(rows: list[list[str]]) -> list[str]:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _text(text: str, fix, dropped: set[str]) -> str:
    """``text`` with ``fix`` applied to every line and table cell; table rows whose first cell is
    in ``dropped`` removed; tables re-aligned."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and _DASHES.fullmatch(lines[i + 1]):
            spans = _spans(lines[i + 1])
            rows = [[_cut(lines[i], s, e).strip() for s, e in spans]]
            j = i + 2
            while j < len(lines) and _is_row(lines, j, spans):
                cells = [_cut(lines[j], s, e).strip() for s, e in spans]
                if cells[0] not in dropped:
                    rows.append([fix(c) for c in cells])
                j += 1
            out += _render(rows)
            i = j
            continue
        out.append(fix(lines[i]))
        i += 1
    return "\n".join(out)


def readers_view(text: str, env: dict[str, str], html_text: bool = False) -> str:
    """A run's output as a reader with the defaults sees it: the sandbox's paths, ports and tmux
    socket replaced by the defaults, and the settings the run's environment added left out."""
    root = str(Path(env["DEST"]).parent)
    ports = {env[name]: port for name, port in DEFAULT_PORTS.items() if name in env}

    def fix(line: str) -> str:
        line = line.replace(f"tmux -L {env['TMUX_SOCKET']} ", "tmux ")
        for name in ("DATA_DIR", "LOGDIR", "DEST", "CLOUDS_YAML"):
            if name in env:
                line = line.replace(env[name], READER[name])
        line = line.replace(root + "/notebooks", READER["NOTEBOOKS"])
        line = line.replace(str(ROOT / "stackmagic"), READER["PACKAGE"])
        return re.sub(r"(?<=:)(\d{4,5})\b", lambda m: ports.get(m[1], m[1]), line)

    if html_text:
        names = "|".join(RUN_SETTINGS)
        text = re.sub(rf"<tr><td[^>]*>(?:{names})</td><td[^>]*>[^<]*</td></tr>", "", text)
        return fix(text)
    return _text(text, fix, set(RUN_SETTINGS))


def rewrite(nb: dict, env: dict[str, str]) -> dict:
    """``nb`` (as executed in a run) with every output in the reader's view."""
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if "text" in output:
                text = "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
                output["text"] = readers_view(text, env)
            for kind, value in output.get("data", {}).items():
                text = "".join(value) if isinstance(value, list) else value
                if kind == "text/plain":
                    output["data"][kind] = readers_view(text, env)
                elif kind == "text/html":
                    output["data"][kind] = readers_view(text, env, html_text=True)
    return nb


def leaks(text: str) -> list[str]:
    """What in ``text`` belongs to a test run rather than to a reader."""
    found = [m[0] for m in RUN_DIR.finditer(text)] + [m[0] for m in SOCKET.finditer(text)]
    found += [word for word in ("/tmp/", "TUTORIAL_", "tutorial-run-", str(ROOT), "DEBUG") if word in text]
    return found


def outputs_of(nb: dict) -> str:
    """Every output of ``nb`` as one text."""
    parts = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            parts.append(json.dumps(output, ensure_ascii=False))
    return "\n".join(parts)


# -- refreshing the committed outputs ------------------------------------------------------------

def refresh(names: list[str] | None = None) -> None:
    """Execute the series in a sandbox on the stackmagic kernel, then write the reader's view of
    every output into notebooks/ja/. Whatever the run started is stopped."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)          # MariaDB, RabbitMQ and QEMU run as their own users
        root = new_root(Path(tmp))
        env = run_environment(root)
        work = root / "notebooks"
        work.mkdir(parents=True)
        prefix = root / "prefix"
        subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "kernel", "install",
                        "--prefix", str(prefix)], check=True, capture_output=True)
        saved = dict(os.environ)
        os.environ.update(env, JUPYTER_PATH=str(prefix / "share" / "jupyter"))
        paths = sorted(TUTORIALS.glob("*.ipynb"))
        try:
            for path in paths:
                if names and path.stem[:2] not in names and path.stem not in names:
                    continue
                shutil.copy(path, work / path.name)
                nb = nbformat.read(work / path.name, as_version=4)
                print("executing", path.name, flush=True)
                NotebookClient(nb, kernel_name="stackmagic", timeout=900, allow_errors=True,
                               resources={"metadata": {"path": str(work)}}).execute()
                data = json.loads(nbformat.writes(nb))
                for cell in data["cells"]:
                    for output in cell.get("outputs", []):
                        if output["output_type"] == "error":
                            print(f"  {path.name} {cell.get('id')}: {output['ename']}: {output['evalue'][:300]}",
                                  flush=True)
                rewrite(data, env)
                found = leaks(outputs_of(data))
                if found:
                    print(f"  {path.name}: still shows {sorted(set(found))[:5]}", flush=True)
                path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
        finally:
            os.environ.clear()
            os.environ.update(saved)
            stop(env, work)


def stop(env: dict[str, str], work: Path) -> None:
    """unstack --all whatever the run's local.conf started, then end the run's tmux server."""
    import os
    import subprocess
    import sys

    conf = work / "local.conf"
    if conf.exists():
        subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "unstack", "--all", "-c", str(conf)],
                       cwd=work, capture_output=True, env={**os.environ, **env})
    subprocess.run(["tmux", "-L", env["TMUX_SOCKET"], "kill-server"], capture_output=True)
    Path(f"/tmp/tmux-{os.getuid()}/{env['TMUX_SOCKET']}").unlink(missing_ok=True)


if __name__ == "__main__":
    import sys

    refresh(sys.argv[1:] or None)
