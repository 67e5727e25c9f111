"""The magics in a real IPython InteractiveShell, against the echo fixture service in tmux."""

from __future__ import annotations

import os
import signal
import threading
import urllib.request

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from stackmagic.magics import MagicError, StackMagics
from stackmagic.process_info import alive
from tests.conftest import wait_until

SECRET = "nb-Secret-4711"


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """The InteractiveShell singleton with a fresh StackMagics; cwd and state dir in tmp."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    sh = InteractiveShell.instance()
    sh.register_magics(StackMagics(sh))
    sh.run_line_magic("config", "StackMagics.progress = 'auto'")
    yield sh
    sh.run_line_magic("config", "StackMagics.progress = 'auto'")
    sh.run_line_magic("config", "StackMagics.language = ''")


def run(sh: InteractiveShell, cell: str):
    """Run ``cell``; return (result, stdout, every display's text and html)."""
    with capture_output() as cap:
        result = sh.run_cell(cell)
    shown = [o.data.get("text/plain", "") + o.data.get("text/html", "") for o in cap.outputs]
    if result.result is not None:
        shown.append(repr(result.result) + (getattr(result.result, "_repr_html_", lambda: "")() or ""))
    return result, cap.stdout, shown, cap.outputs


def localrc_cell(stack_dir, *extra: str) -> str:
    return "%%localrc\n" + stack_dir.localrc.read_text() + "\n".join([f"ADMIN_PASSWORD={SECRET}", *extra]) + "\n"



def test_localrc_cell_shows_services_changes_and_warnings_with_passwords_masked(shell, tmp_path):
    result, out, shown, _ = run(shell, f"%%localrc\ndisable_all_services\nenable_service key n-net\n"
                                       f"ADMIN_PASSWORD={SECRET}\nMY_COPY=$ADMIN_PASSWORD\n")
    assert result.success
    report = result.result
    text = repr(report)
    assert "keystone" in text and "key" in text
    assert "ENABLED_SERVICES" in text and "key,n-net" in text          # what changed vs. the defaults
    assert "n-net (retired)" in text and "line 2" in text
    assert "********" in text
    assert (tmp_path / "localrc").read_text().startswith("disable_all_services")
    # %localrc alone shows the current file, masked
    again, _, shown_again, _ = run(shell, "%localrc")
    assert "ADMIN_PASSWORD=********" in repr(again.result)
    assert all(SECRET not in s for s in shown + shown_again + [out])


def test_localrc_error_names_the_line_of_the_cell_without_a_traceback(shell):
    result, out, _, _ = run(shell, "%%localrc\ndisable_all_services\n\nenable_service kye\n")
    assert not result.success
    assert isinstance(result.error_in_exec, MagicError)
    assert "line 3 of the cell: unknown service 'kye'; did you mean: key?" in out
    assert "Traceback" not in out


def test_local_conf_cell_masks_passwords_in_merges(shell, tmp_path):
    cell = ("%%local_conf\n[[local|localrc]]\ndisable_all_services\nenable_service key\n"
            f"ADMIN_PASSWORD={SECRET}\n[[post-config|$KEYSTONE_CONF]]\n[database]\npassword = {SECRET}\n"
            "max_retries = 7\n")
    result, out, shown, _ = run(shell, cell)
    assert result.success, out
    text = repr(result.result)
    assert "post-config" in text and "max_retries = 7" in text
    assert "password = ********" in text
    assert (tmp_path / "local.conf").exists()
    assert all(SECRET not in s for s in shown + [out])


def test_stack_services_screen_and_unstack(shell, stack_dir):
    outputs: list[str] = []
    result, out, shown, _ = run(shell, localrc_cell(stack_dir))
    assert result.success, out
    outputs += shown + [out]

    shell.run_line_magic("config", "StackMagics.progress = 'live'")
    result, out, shown, displays = run(shell, "%stack")
    assert result.success, out
    outputs += shown + [out]
    # live progress: one display, then updates of that same display, ending "done"
    first, *updates = [d for d in displays if d.transient]
    ids = {d.transient["display_id"] for d in displays if d.transient}
    assert len(ids) == 1 and updates and all(u.update for u in updates)
    assert updates[-1].data["text/plain"].startswith("[" + "#" * 30 + "] done: 4/4 steps")
    report = result.result
    assert [r.step for r in report.summary.ran] == ["install", "configure echo", "init echo", "start echo-api"]
    assert "time per phase" in repr(report) and "echo-api" in repr(report)

    # %services: usable in code, probed now
    table = shell.run_line_magic("services", "")
    rows = table.to_dicts()
    assert [r["service"] for r in rows] == ["echo-api"]
    assert table["echo-api"]["healthy"] and table.healthy
    assert f"127.0.0.1:{stack_dir.port}" in repr(table) and "healthy" in table._repr_html_()
    everything = shell.run_line_magic("services", "--all")
    assert everything["key"]["enabled"] is False and "disabled" in repr(everything)

    # %screen_tail: the last N lines of the log file; --grep; --follow shows new lines
    log = stack_dir.root / "logs" / "echo-api.log"
    assert wait_until(lambda: "listening on" in log.read_text())
    tail = shell.run_line_magic("screen_tail", "echo-api -n 2")
    assert tail.lines == log.read_text().splitlines()[-2:]
    assert shell.run_line_magic("screen_tail", "echo-api --grep listening").lines[-1].startswith("echo-server listening")
    # a quoted pattern with a space reaches the search without its quotes
    quoted = shell.run_line_magic("screen_tail", 'echo-api --grep "server listening on"')
    assert quoted.lines and quoted.lines[-1].startswith("echo-server listening on")
    # requests keep coming while the magic follows, so one lands after the follower began,
    # however long it takes to begin (no guess at when that is)
    following = threading.Event()

    def keep_asking():
        while not following.is_set():
            urllib.request.urlopen(f"http://127.0.0.1:{stack_dir.port}/x", timeout=5).read()
            following.wait(0.1)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        result, out, _, _ = run(shell, "%screen_tail echo-api --follow 2 --grep request")
    finally:
        following.set()
        asker.join()
    assert "GET /x" in out
    with pytest.raises(MagicError, match="no log for service 'nope'.*\nrunning: echo-api"):
        shell.run_line_magic("screen_tail", "nope")
    windows = shell.run_line_magic("screen", "")
    assert [w for w, _ in windows] == ["echo-api"] and f"tmux -L {stack_dir.socket}" in repr(windows)

    # a killed service shows as down, and its log is still there with a note
    pid = table["echo-api"]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid))
    down = shell.run_line_magic("services", "")
    assert not down["echo-api"]["running"] and "down" in repr(down) and not down.healthy
    assert "echo-api is not running" in shell.run_line_magic("screen_tail", "echo-api").note

    # resumes: only the start step runs again; then unstack
    result, out, shown, _ = run(shell, "%stack")
    assert [r.step for r in result.result.summary.ran] == ["start echo-api"]
    outputs += shown + [out]
    result, out, _, _ = run(shell, "%unstack")
    assert "stopped 1 processes: echo-api" in out
    assert list(shell.run_line_magic("screen", "")) == []
    outputs += [repr(table), table._repr_html_(), repr(report), report._repr_html_()]
    assert all(SECRET not in text for text in outputs)


def test_failed_step_shows_its_log_tail_and_a_dry_run_shows_the_plan(shell, stack_dir):
    run(shell, localrc_cell(stack_dir, "ECHO_FAIL_INIT=True"))
    dry, _, _, _ = run(shell, "%stack --dry-run")
    assert ("would run", "init echo", "init", "echo") in dry.result.rows
    shell.run_line_magic("config", "StackMagics.progress = 'lines'")
    result, out, _, _ = run(shell, "%stack")
    assert isinstance(result.error_in_exec, MagicError)
    assert "✓ configure echo" in out and "✗ init echo" in out
    assert "step 'init echo' failed" in out and "init refused" in out
    assert "run %stack again" in out and "Traceback" not in out
    assert SECRET not in out


def test_no_configuration_says_what_to_do(shell):
    with pytest.raises(MagicError, match="write a %%localrc cell first"):
        shell.run_line_magic("services", "")


def test_the_magics_speak_japanese_or_english_as_chosen(shell, monkeypatch, tmp_path):
    """%config StackMagics.language (or the locale) switches tables, statuses, warnings, the
    notes on old names and errors between the catalog's Japanese and English."""
    for name in ("STACKMAGIC_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    # the cells name no DEST: keep their (empty) stack off a real one in /opt/stack or ~/stack
    monkeypatch.setenv("DEST", str(tmp_path / "stack"))
    cell = "%%localrc\ndisable_all_services\nenable_service key n-net\n"

    def shown(magic_cell: str) -> str:
        result, out, texts, _ = run(shell, magic_cell)
        return out + "\n".join(texts)

    english = shown(cell)
    assert "enabled services" in english and "runs here" in english and "Identity API (Keystone)" in english
    assert "retired upstream" in english and "n-net (retired): nova-network was deprecated" in english
    assert "有効なサービス" not in english
    assert "line 2 of the cell: unknown service 'kye'" in shown("%%localrc\n\nenable_service kye\n")

    shell.run_line_magic("config", "StackMagics.language = 'ja'")
    japanese = shown(cell)
    assert "有効なサービス" in japanese and "ここで動くか" in japanese and "本家で廃止" in japanese
    assert "Keystone（認証サービス）の API" in japanese
    assert "注意: localrc の 2 行目: n-net（廃止）: nova-network は Newton で非推奨になり" in japanese  # cwd-relative
    assert "enabled services" not in japanese and "was deprecated" not in japanese
    error = shown("%%localrc\n\nenable_service kye\n")
    assert "セルの 2 行目: 'kye' というサービスはありません。もしかして: key" in error
    run(shell, "%%localrc\ndisable_all_services\nenable_service key\n")
    assert "サービスがありません" in repr(shell.run_line_magic("services", ""))   # nothing started
    table = repr(shell.run_line_magic("services", "--all"))
    assert table.splitlines()[0].split()[:3] == ["プロジェクト", "サービス", "ウィンドウ"] and "無効" in table
    dry = shell.run_line_magic("stack", "--dry-run")
    assert "実行する" in repr(dry) and "状態" in dry._repr_html_()
    assert dry.rows[0][0] == "would run"             # the data stays the engine's own words

    # back to the environment's language: English here, Japanese under a Japanese locale
    shell.run_line_magic("config", "StackMagics.language = ''")
    assert "enabled services" in shown(cell)
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    assert "有効なサービス" in shown(cell)
    monkeypatch.setenv("STACKMAGIC_LANG", "en")
    assert "enabled services" in shown(cell)

    from traitlets import TraitError

    with pytest.raises(TraitError, match="no messages for language 'xx'; choose one of: en, ja"):
        shell.magics_manager.registry["StackMagics"].language = "xx"
    assert "enabled services" in shown(cell)


def test_the_callers_environment_reaches_the_localrc_masked(shell, tmp_path, monkeypatch):
    """As devstack's ``DEST=/x ./stack.sh``: the kernel's environment is seen by the localrc and
    shown among the settings that differ, passwords masked; the session's own variables are not."""
    dest = tmp_path / "from-env"
    monkeypatch.setenv("DEST", str(dest))
    monkeypatch.setenv("KEYSTONE_SERVICE_PORT", "5999")
    monkeypatch.setenv("ADMIN_PASSWORD", SECRET)
    monkeypatch.setenv("LS_COLORS", "di=01;34")
    result, out, shown, _ = run(shell, "%%localrc\ndisable_all_services\nenable_service key\n"
                                       "MY_NOTE=\"port $KEYSTONE_SERVICE_PORT\"\n")
    assert result.success, out
    settings = result.result.data["settings"]
    assert settings["DEST"] == str(dest) and settings["KEYSTONE_SERVICE_PORT"] == "5999"
    assert settings["MY_NOTE"] == "port 5999" and settings["ADMIN_PASSWORD"] == "********"
    assert "LS_COLORS" not in settings and "PATH" not in settings
    cfg = shell.run_line_magic("stack", "--dry-run")  # the engine sees the same: DATA_DIR follows DEST
    assert cfg.rows
    from stackmagic import api

    assert api.load("localrc").settings.data_dir == dest / "data"
    assert all(SECRET not in text for text in shown + [out])

    # the CLI passes its environment the same way
    import json
    import subprocess
    import sys

    plan = subprocess.run([sys.executable, "-m", "stackmagic.cli.__main__", "plan", "-c", "localrc", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, check=True,
                          env={**os.environ, "DEST": str(dest), "ADMIN_PASSWORD": SECRET})
    assert json.loads(plan.stdout)["settings"]["DEST"] == str(dest) and SECRET not in plan.stdout


def test_the_japanese_catalog_explains_every_service_name_and_old_name():
    """One catalog: every description and every note on a retired name in the service name table
    has its Japanese message (a name added to the table without one fails here)."""
    from stackmagic import i18n
    from stackmagic.catalog import names

    try:
        i18n.set_language("ja")
        missing = [e.name for e in names._TABLE if i18n._(e.description) == e.description]
        missing += [e.name + " (note)" for e in names._TABLE
                    if e.status == names.RETIRED and i18n._(e.note) == e.note]
        assert not missing, missing
        assert names.explain("g-reg").startswith("g-reg: Glance のレジストリは Ussuri")
    finally:
        i18n.set_language(None)
    assert names.explain("g-reg").startswith("g-reg: the Glance registry was removed")


def test_the_catalog_ships_with_the_package_and_compiles_to_a_gnu_mo(tmp_path):
    """Every install reads the .po as shipped (package-data), compiled in memory by i18n.msgfmt
    into what gettext itself loads; python -m stackmagic.i18n writes the same bytes as .mo files."""
    import fnmatch
    import gettext
    import io
    import tomllib
    from pathlib import Path

    from stackmagic import i18n

    root = Path(i18n.__file__).parent
    patterns = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["stackmagic"]
    po = root / "locale" / "ja" / "LC_MESSAGES" / "stackmagic.po"
    assert any(fnmatch.fnmatch(str(po.relative_to(root)), p) for p in patterns)
    catalog = gettext.GNUTranslations(io.BytesIO(i18n.msgfmt(po.read_text(encoding="utf-8"))))
    assert catalog.gettext("healthy") == "健全" and catalog.gettext("no such message") == "no such message"
    assert catalog.info()["language"] == "ja"
    # fuzzy and untranslated entries are left out, multi-line strings joined, as msgfmt does
    sample = ('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
              '#, fuzzy\nmsgid "a"\nmsgstr "A"\n\nmsgid "b"\nmsgstr ""\n\n'
              'msgid "c"\n"d"\nmsgstr "C"\n"D"\n')
    small = gettext.GNUTranslations(io.BytesIO(i18n.msgfmt(sample)))
    assert (small.gettext("a"), small.gettext("b"), small.gettext("cd")) == ("a", "b", "CD")


def test_long_enabled_services_are_wrapped_in_the_settings_table(shell):
    result, out, shown, _ = run(shell, "%%localrc\ndisable_service horizon\n")   # devstack's long default list, changed
    assert result.success, out
    text = repr(result.result)
    table = text[text.index("settings that differ from the defaults"):].splitlines()
    first = next(i for i, line in enumerate(table) if line.startswith("ENABLED_SERVICES"))
    assert table[first].rstrip().endswith(",") and table[first + 1].startswith(" ")
    values = [line.split()[-1] for line in table[first:first + 4] if line.split()]
    assert all(len(v) <= 64 for v in values)
    joined = "".join(line.split()[-1] for line in table[first:] if line.startswith(("ENABLED", " ")))
    assert joined == result.result.data["settings"]["ENABLED_SERVICES"]


def test_showing_a_localrc_that_is_not_text_is_a_clear_error(tmp_path):
    from stackmagic.magics.localrc import show

    path = tmp_path / "localrc"
    path.write_bytes(b"ENABLED_SERVICES=key\n\xff\xfe\x00")
    with pytest.raises(MagicError, match=r"line 2: this is not UTF-8 text"):
        show(path)
