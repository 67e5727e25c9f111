"""What this machine can run of the tutorials' cloud (``here()``, ``%here``), and a real kernel
replaying the committed outputs of cells tagged ``cloud`` where it cannot. No stack."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from stackmagic import i18n
from stackmagic.errors import ConfigError
from stackmagic.here import CHOSEN, NO_QEMU, NOT_ROOT, QEMU, Here, Replayer, here, install
from tests.test_kernel import execute

ROOT = Path(__file__).resolve().parent.parent
QEMU_PATH = shutil.which(QEMU)
NOTICE_JA = "（このマシンではクラウドを動かせないため実行しません。以下は動かせるマシンでの出力です）"
#: a 1x1 PNG
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


@pytest.fixture(autouse=True)
def english():
    i18n.set_language("en")
    yield
    i18n.set_language(None)


def assert_one_sentence_without_paths(text: str, *private: str) -> None:
    assert text.endswith("。") and text.count("。") == 1, text
    assert not re.search(r"(?<![\w.])/\w", text), text            # no absolute path
    for value in private:
        assert value not in text


# -- here() -------------------------------------------------------------------------------------

needs_root_and_qemu = pytest.mark.skipif(os.geteuid() != 0 or QEMU_PATH is None,
                                         reason="needs root and QEMU (./scripts/setup-host installs it)")


@needs_root_and_qemu
def test_root_with_qemu_runs_the_whole_cloud(monkeypatch):
    monkeypatch.setenv("PATH", str(Path(QEMU_PATH).parent))
    monkeypatch.delenv("STACKMAGIC_CLOUD", raising=False)
    found = here()
    assert found == Here(cloud=True, reasons=())
    assert repr(found) == "This machine can run the whole cloud."
    i18n.set_language("ja")
    assert repr(found) == "このマシンでは、クラウド全体を動かせます。"
    assert found._repr_html_() == "<p>このマシンでは、クラウド全体を動かせます。</p>"


@pytest.mark.skipif(os.geteuid() != 0, reason="the reasons of a root user")
@pytest.mark.parametrize("qemu_on_path, choice, reasons", [
    (False, None, (NO_QEMU,)),
    (True, "no", (CHOSEN,)),
    (False, "no", (NO_QEMU, CHOSEN)),
])
def test_without_qemu_or_by_choice_only_the_quickstart(tmp_path, monkeypatch, qemu_on_path, choice, reasons):
    if qemu_on_path and QEMU_PATH is None:
        pytest.skip("no QEMU here (./scripts/setup-host installs it)")
    monkeypatch.setenv("PATH", str(Path(QEMU_PATH).parent) if qemu_on_path else str(tmp_path))
    if choice is None:
        monkeypatch.delenv("STACKMAGIC_CLOUD", raising=False)
    else:
        monkeypatch.setenv("STACKMAGIC_CLOUD", choice)
    found = here()
    assert found == Here(cloud=False, reasons=reasons)
    english = repr(found)
    assert english.startswith("This machine cannot run the whole cloud (") and english.endswith(
        "cells that need the cloud show the outputs they had on a machine that can run it.")
    assert "; ".join(reasons) in english
    i18n.set_language("ja")
    japanese = repr(found)
    assert all(i18n._(reason) != reason and i18n._(reason) in japanese for reason in reasons)
    assert_one_sentence_without_paths(japanese, str(tmp_path))
    assert "クイックスタート" in japanese and "クラウド全体を動かせない" in japanese
    assert ("STACKMAGIC_CLOUD=no" in japanese) == (choice == "no")
    assert ("QEMU" in japanese) == (not qemu_on_path)
    assert "root ではない" not in japanese


def test_another_value_of_stackmagic_cloud_is_refused(monkeypatch):
    monkeypatch.setenv("STACKMAGIC_CLOUD", "maybe")
    with pytest.raises(ConfigError, match=r"STACKMAGIC_CLOUD='maybe' is not understood: write "
                                          r"STACKMAGIC_CLOUD=no .* or STACKMAGIC_CLOUD=yes"):
        here()
    for default in ("yes", ""):                                     # the default: as the machine allows
        monkeypatch.setenv("STACKMAGIC_CLOUD", default)
        assert CHOSEN not in here().reasons


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists(),
                    reason="needs root, setpriv and Debian's python3 to become nobody")
def test_an_ordinary_user_cannot_run_the_cloud():
    """As nobody (Binder's situation), with QEMU on PATH if this machine has it: not root comes first."""
    code = ("from stackmagic import i18n; from stackmagic.here import here; h = here(); "
            "print(h.cloud); print(h.reasons[0]); i18n.set_language('ja'); print(repr(h))")
    # a copy nobody can read (this checkout may live below a directory only root may enter)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        shutil.copytree(ROOT / "stackmagic", Path(tmp) / "src" / "stackmagic",
                        ignore=shutil.ignore_patterns("__pycache__"))
        home = Path(tmp) / "home"
        home.mkdir()
        shutil.chown(home, 65534, 65534)
        path = ":".join(filter(None, [str(Path(QEMU_PATH).parent) if QEMU_PATH else "", "/usr/bin", "/bin"]))
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", code],
            capture_output=True, text=True, cwd=home, timeout=60,
            env={"HOME": str(home), "PATH": path, "PYTHONPATH": f"{tmp}/src", "LANG": "C.UTF-8"})
    assert proc.returncode == 0, proc.stderr
    cloud, first, japanese = proc.stdout.splitlines()
    assert (cloud, first) == ("False", NOT_ROOT)
    assert japanese.startswith("このマシンではクラウド全体を動かせない（root ではない: ")
    assert_one_sentence_without_paths(japanese, tmp)


# -- the transformer in process -----------------------------------------------------------------

def test_install_is_idempotent_and_where_the_cloud_runs_nothing_is_read(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    transforms = shell.input_transformer_manager.cleanup_transforms
    before = [t for t in transforms if not isinstance(t, Replayer)]
    first = install(shell)
    assert install(shell) is first and transforms[0] is first
    assert [t for t in transforms if not isinstance(t, Replayer)] == before

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tutorial.ipynb").write_text(notebook(outputs()))
    lines = [TAGGED + "\n"]
    assert Replayer(cloud=False)(lines) != lines
    where_it_runs = Replayer(cloud=True)
    assert where_it_runs(lines) is lines and where_it_runs._parsed == {}


def test_a_wrong_stackmagic_cloud_is_said_by_here_and_replays_nothing(monkeypatch, capsys):
    from types import SimpleNamespace

    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.core.interactiveshell import InteractiveShell

    from stackmagic.magics import MagicError, StackMagics

    monkeypatch.setenv("STACKMAGIC_CLOUD", "No")
    shell = SimpleNamespace(input_transformer_manager=TransformerManager())
    assert install(shell) is None
    assert not [t for t in shell.input_transformer_manager.cleanup_transforms if isinstance(t, Replayer)]
    assert "stackmagic: STACKMAGIC_CLOUD='No' is not understood" in capsys.readouterr().err

    ipython = InteractiveShell.instance()
    ipython.register_magics(StackMagics(ipython))
    with pytest.raises(MagicError, match="STACKMAGIC_CLOUD='No' is not understood: write STACKMAGIC_CLOUD=no"):
        ipython.run_line_magic("here", "")
    monkeypatch.setenv("STACKMAGIC_CLOUD", "no")
    assert ipython.run_line_magic("here", "") == here() and not here().cloud


# -- a real kernel ------------------------------------------------------------------------------

TAGGED = 'from pathlib import Path\nPath("ran-cloud-cell").write_text("ran")\nprint("guest booted")\n"ACTIVE"'
UNTAGGED = "print(6 * 7)"


def outputs() -> list:
    import nbformat.v4 as v4

    return [v4.new_output("stream", name="stdout", text="guest booted\n"),
            v4.new_output("stream", name="stderr", text="a warning\n"),
            v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure 1x1>"},
                          metadata={"image/png": {"width": 1}}),
            v4.new_output("error", ename="OSError", evalue="no such guest", traceback=["OSError: no such guest"]),
            v4.new_output("execute_result", data={"text/plain": "'ACTIVE'"}, execution_count=3)]


def notebook(tagged_outputs: list) -> str:
    import nbformat
    import nbformat.v4 as v4

    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("クラウドを使います", metadata={"tags": ["cloud"]}),
        v4.new_code_cell(TAGGED, metadata={"tags": ["cloud"]}, outputs=tagged_outputs, execution_count=3),
        v4.new_code_cell(UNTAGGED, outputs=[v4.new_output("stream", name="stdout", text="0\n")])])
    nbformat.validate(nb)
    return nbformat.writes(nb)


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """Start a "Python 3 (stackmagic)" kernel (the kernelspec in a tmp prefix) in ``tmp_path``
    with extra environment; all are shut down at the end."""
    from jupyter_client.manager import start_new_kernel

    from stackmagic import kernel

    prefix = tmp_path / "prefix"
    kernel.install(prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    (tmp_path / "tutorial.ipynb").write_text(notebook(outputs()))
    started = []

    def start(**extra: str):
        env = {k: v for k, v in os.environ.items() if k not in ("STACKMAGIC_CLOUD", "STACKMAGIC_LANG")}
        env.update(XDG_STATE_HOME=str(tmp_path / "xdg"), **extra)
        km, kc = start_new_kernel(kernel_name="stackmagic", cwd=str(tmp_path), env=env)
        started.append((km, kc))
        return kc

    yield start
    for km, kc in started:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def shown(messages: list[dict]) -> list[tuple]:
    """What a cell showed, in order: ("stream", name, text) and ("display", data, metadata)."""
    out = []
    for msg in messages:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(("stream", content["name"], content["text"]))
        elif kind in ("display_data", "execute_result"):
            out.append(("display", content["data"], content["metadata"]))
        elif kind == "error":
            out.append(("error", content["ename"], content["evalue"]))
    return out


REPLAYED = [("display", {"text/plain": NOTICE_JA,
                         "text/html": f'<p style="color:#6c757d"><i>{NOTICE_JA}</i></p>'},
             {"stackmagic": {"replayed": True}}),
            ("stream", "stdout", "guest booted\n"),
            ("stream", "stderr", "a warning\n"),
            ("display", {"image/png": PNG, "text/plain": "<Figure 1x1>"}, {"image/png": {"width": 1}}),
            ("display", {"text/plain": "'ACTIVE'"}, {})]


def test_a_kernel_that_cannot_run_the_cloud_replays_tagged_cells(kernels, tmp_path):
    kc = kernels(STACKMAGIC_CLOUD="no", STACKMAGIC_LANG="ja")
    ran = tmp_path / "ran-cloud-cell"

    assert shown(execute(kc, TAGGED, timeout=60)) == REPLAYED
    assert not ran.exists()                                         # its code did not run
    assert shown(execute(kc, TAGGED + "  \n\n", timeout=60)) == REPLAYED   # trailing whitespace

    assert shown(execute(kc, UNTAGGED, timeout=60)) == [("stream", "stdout", "42\n")]

    here_shown = shown(execute(kc, "%here", timeout=60))
    assert len(here_shown) == 1 and "STACKMAGIC_CLOUD=no" in here_shown[0][1]["text/plain"]
    assert_one_sentence_without_paths(here_shown[0][1]["text/plain"], str(tmp_path))

    # the notebook saved after a replay holds what it showed, notice first: shown once, again
    import nbformat.v4 as v4

    saved = [v4.new_output("stream", name=name, text=text) if kind == "stream" else
             v4.new_output("display_data", data=name, metadata=text) for kind, name, text in REPLAYED]
    (tmp_path / "tutorial.ipynb").write_text(notebook(saved))
    assert shown(execute(kc, TAGGED, timeout=60)) == REPLAYED
    # a notebook changed on disk is read again
    (tmp_path / "tutorial.ipynb").write_text(notebook(saved[:1] + [
        v4.new_output("stream", name="stdout", text="guest booted on another day\n")]))
    assert shown(execute(kc, TAGGED, timeout=60)) == [REPLAYED[0], ("stream", "stdout", "guest booted on another day\n")]

    # an edited cell is the reader's own: it runs
    edited = shown(execute(kc, TAGGED.replace("guest booted", "guest booted again"), timeout=60))
    assert edited == [("stream", "stdout", "guest booted again\n"), ("display", {"text/plain": "'ACTIVE'"}, {})]
    assert ran.read_text() == "ran"


@needs_root_and_qemu
def test_a_kernel_that_can_run_the_cloud_runs_tagged_cells(kernels, tmp_path):
    kc = kernels()
    assert shown(execute(kc, TAGGED, timeout=60)) == [("stream", "stdout", "guest booted\n"),
                                                      ("display", {"text/plain": "'ACTIVE'"}, {})]
    assert (tmp_path / "ran-cloud-cell").read_text() == "ran"
