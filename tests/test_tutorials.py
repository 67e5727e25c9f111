"""The Japanese tutorials (notebooks/ja/): every topic of issue 6 is mapped to a cell that exists
and says it, and the whole series runs in order under nbval against a real stack on free ports,
with its own tmux socket and directories, leaving nothing running.

Slow (a real cold stack plus a RECLONE run: about 3 minutes), run by CI.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "notebooks" / "ja"
SANITIZE = ROOT / "notebooks" / "sanitize.cfg"

#: Every topic issue 6 lists, with a word the README's row for it must contain.
TOPICS = {
    "machine": "マシンの確認", "size": "大きさが要る", "code": "コードの入手",
    "localrc": "localrc を書く", "enable_disable": "enable_service / disable_service",
    "shell": "シェルスクリプト", "history": "quantum", "old names": "古いサービス名",
    "stack": "`%stack` の実行", "phases": "各段階", "database": "データベースとそのパスワード",
    "tmux": "tmux attach -t stack", "screen": "screen -x stack", "screen_tail": "`%screen_tail`",
    "services": "`%services`", "token": "トークン", "projects": "プロジェクト",
    "images": "イメージ一覧", "everything": "tempest, ceilometer, swift, trove, sahara, zaqar, heat",
    "memory": "要るメモリ", "runs today": "今動かせるもの", "RECLONE": "RECLONE",
    "VOLUME_BACKING_FILE_SIZE": "VOLUME_BACKING_FILE_SIZE",
    "SCREEN_HARDSTATUS": "SCREEN_HARDSTATUS に当たる tmux",
    "mod_wsgi": "ENABLE_HTTPD_MOD_WSGI_SERVICES", "smallfiles": "smallfiles",
    "proxy": "プロキシ", "insteadOf": "insteadOf", "unstack": "unstack", "clean": "clean",
    "dated": "古くなった点",
}


def topic_rows() -> list[tuple[str, str, str, str]]:
    """(topic, notebook, cell id, keyword) from the table in notebooks/ja/README.md."""
    rows = []
    for line in (TUTORIALS / "README.md").read_text().splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 4 and re.fullmatch(r"\d\d-\d\d", cells[2]):
            rows.append(tuple(cells))
    return rows


def cell_source(notebook: str, cell_id: str) -> str:
    nb = json.loads((TUTORIALS / f"{notebook}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("id") == cell_id:
            return "".join(cell["source"])
    raise AssertionError(f"{notebook}.ipynb has no cell {cell_id}")


def test_every_topic_is_covered_by_a_cell_that_says_it():
    rows = topic_rows()
    assert len(rows) >= len(TOPICS)
    missing = [name for name, word in TOPICS.items() if not any(word in row[0] for row in rows)]
    assert not missing, f"topics without a row in notebooks/ja/README.md: {missing}"
    for topic, notebook, cell_id, keyword in rows:
        assert keyword.lower() in cell_source(notebook, cell_id).lower(), (topic, notebook, cell_id, keyword)


def test_notebooks_are_executed_on_the_stackmagic_kernel_without_secrets():
    notebooks = sorted(TUTORIALS.glob("*.ipynb"))
    assert [p.name[:2] for p in notebooks] == [f"{i:02d}" for i in range(9)]
    for path in notebooks:
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "stackmagic", path.name
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c["execution_count"] for c in code), f"{path.name} is not executed"
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, (path.name, errors)
        text = path.read_text()
        assert "password: " not in text.lower() and "X-Auth-Token" not in text, path.name


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tutorial_env(root: Path) -> dict[str, str]:
    return {
        "TUTORIAL_WORK": str(root / "work"), "TUTORIAL_DEST": str(root / "stack"),
        "TUTORIAL_TMUX_SOCKET": f"tutorial-{uuid.uuid4().hex[:8]}",
        "TUTORIAL_KEYSTONE_PORT": str(free_port()), "TUTORIAL_GLANCE_PORT": str(free_port()),
        "TUTORIAL_PLACEMENT_PORT": str(free_port()), "TUTORIAL_MEMCACHED_PORT": str(free_port()),
        "TUTORIAL_CLOUDS_YAML": str(root / "clouds.yaml"),
        "XDG_STATE_HOME": str(root / "xdg"),
    }


def unstack(env: dict[str, str]) -> None:
    """Stop whatever the run left (the work dir's local.conf names the stack) and its tmux server."""
    from stackmagic.config import load_config
    from stackmagic.engine import Engine

    conf = Path(env["TUTORIAL_WORK"]) / "local.conf"
    if conf.exists():
        Engine(load_config(conf)).unstack(all=True)
    subprocess.run(["tmux", "-L", env["TUTORIAL_TMUX_SOCKET"], "kill-server"], capture_output=True)


def test_the_series_runs_in_order_under_nbval(tmp_path):
    root = tmp_path / f"tutorial-{uuid.uuid4().hex[:8]}"
    prefix = root / "prefix"
    subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "kernel", "install",
                    "--prefix", str(prefix)], check=True, capture_output=True)
    env = tutorial_env(root)
    ports = [int(env[k]) for k in env if k.endswith("_PORT")]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval",
             "--nbval-sanitize-with", str(SANITIZE), "--nbval-cell-timeout", "400",
             "--rootdir", str(root), str(TUTORIALS)],
            capture_output=True, text=True, cwd=root, timeout=540,
            env={**os.environ, **env, "JUPYTER_PATH": str(prefix / "share" / "jupyter")})
        assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
        assert " passed" in proc.stdout and "failed" not in proc.stdout
        # 08 unstacked: nothing listens and the tmux server has no session "stack"
        assert not [p for p in ports if listening(p)]
        has = subprocess.run(["tmux", "-L", env["TUTORIAL_TMUX_SOCKET"], "has-session", "-t", "stack"],
                             capture_output=True)
        assert has.returncode != 0
    finally:
        unstack(env)
    assert not [p for p in ports if listening(p)]
