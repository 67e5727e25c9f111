"""INI editing with devstack's semantics, pinned by exact file contents on real files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stackmagic import ini
from stackmagic.errors import StackError
from stackmagic.ini import (
    IniError,
    IniFile,
    ini_has_option,
    iniadd,
    inicomment,
    inidelete,
    iniget,
    iniget_multiline,
    iniget_sections,
    iniset,
    iniset_multiline,
    iniuncomment,
    merge_into,
)


def conf(tmp_path: Path, text: str | None, name: str = "test.conf") -> Path:
    """A config file with ``text`` (or no file at all for None)."""
    path = tmp_path / name
    if text is not None:
        path.write_bytes(text.encode())
    return path


def content(path: Path) -> str:
    return path.read_bytes().decode()


# -- iniset: where lines go ----------------------------------------------------------------------


def test_iniset_creates_missing_file(tmp_path: Path) -> None:
    path = conf(tmp_path, None)
    iniset(path, "DEFAULT", "debug", "True")
    # devstack's iniset appends "\n[DEFAULT]": a new file starts with a blank line
    assert content(path) == "\n[DEFAULT]\ndebug = True\n"


def test_iniset_appends_new_section_after_blank_line(tmp_path: Path) -> None:
    path = conf(tmp_path, "[a]\nx = 1\n")
    iniset(path, "b", "y", "2")
    assert content(path) == "[a]\nx = 1\n\n[b]\ny = 2\n"


def test_new_section_after_existing_blank_line_adds_no_second_one(tmp_path: Path) -> None:
    path = conf(tmp_path, "[a]\nx = 1\n\n")
    iniset(path, "b", "y", "2")
    assert content(path) == "[a]\nx = 1\n\n[b]\ny = 2\n"


def test_new_section_after_unterminated_last_line(tmp_path: Path) -> None:
    path = conf(tmp_path, "[a]\nx = 1")
    iniset(path, "b", "y", "2")
    assert content(path) == "[a]\nx = 1\n\n[b]\ny = 2\n"


def test_section_header_with_spaces_is_read_and_written_verbatim(tmp_path: Path) -> None:
    # devstack reads "[ ccc ]" as section " ccc " (iniget FILE " ccc " OPT)
    path = conf(tmp_path, "[ ccc ]\nspaces  =  yes\n\n[ccc]\nspaces = no\n")
    assert iniget(path, " ccc ", "spaces") == "yes"
    assert iniget(path, "ccc", "spaces") == "no"
    iniset(path, "b b", "opt_ion", "42")
    iniset(path, " ccc ", "spaces", "again")
    assert content(path) == ("[ ccc ]\nspaces  =  again\n\n[ccc]\nspaces = no\n"
                             "\n[b b]\nopt_ion = 42\n")
    assert iniget_sections(path) == [" ccc ", "ccc", "b b"]


def test_iniset_into_empty_existing_file(tmp_path: Path) -> None:
    path = conf(tmp_path, "")
    iniset(path, "s", "k", "v")
    assert content(path) == "\n[s]\nk = v\n"


def test_iniset_replaces_existing_key_in_place(tmp_path: Path) -> None:
    path = conf(tmp_path, "[DEFAULT]\n# comment\nfoo = 1\ndebug = False\nbar = 2\n\n[x]\ndebug = 9\n")
    iniset(path, "DEFAULT", "debug", "True")
    assert content(path) == (
        "[DEFAULT]\n# comment\nfoo = 1\ndebug = True\nbar = 2\n\n[x]\ndebug = 9\n"
    )


def test_new_key_goes_right_after_header(tmp_path: Path) -> None:
    path = conf(tmp_path, "[DEFAULT]\nfoo = 1\n\n[other]\nbar = 2\n")
    iniset(path, "DEFAULT", "a", "1")
    iniset(path, "DEFAULT", "b", "2")
    assert content(path) == "[DEFAULT]\nb = 2\na = 1\nfoo = 1\n\n[other]\nbar = 2\n"


def test_new_key_after_unterminated_header(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]")
    iniset(path, "s", "k", "v")
    assert content(path) == "[s]\nk = v\n"


def test_replacing_key_on_unterminated_last_line(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = old")
    iniset(path, "s", "k", "new")
    assert content(path) == "[s]\nk = new\n"


@pytest.mark.parametrize(
    "commented",
    ["#debug = false", "# debug = false", ";debug = false", "#debug=false", "  # debug = x"],
)
def test_commented_key_left_alone_and_new_key_added_under_header(
    tmp_path: Path, commented: str
) -> None:
    path = conf(tmp_path, f"[DEFAULT]\n# Enable debug (boolean value)\n{commented}\n\nother = 1\n")
    assert iniget(path, "DEFAULT", "debug") is None
    iniset(path, "DEFAULT", "debug", "True")
    assert content(path) == (
        f"[DEFAULT]\ndebug = True\n# Enable debug (boolean value)\n{commented}\n\nother = 1\n"
    )


def test_iniset_collapses_multiline_option_to_one_line_at_first_place(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\na = 1\nk = x\nb = 2\nk = y\n\n[t]\nk = z\n[s]\nk = w\n")
    iniset(path, "s", "k", "one")
    assert content(path) == "[s]\na = 1\nk = one\nb = 2\n\n[t]\nk = z\n[s]\n"


# -- iniset: values, names, headers ----------------------------------------------------------------

TRICKY_VALUES = [
    "a&b",
    "&",
    "C:\\path\\to\\file",
    "\\1\\2",
    "http://127.0.0.1:5000/v3",
    "a|b|c",
    "two  words  with   spaces",
    "key=value=other",
    "100%s %(name)s",
    "$HOME ${USER} $(id)",
    "'single' \"double\" `back`",
    "mysql+pymysql://root:p@ss&w/rd|x@127.0.0.1/nova?charset=utf8",
    "\x01sep",
    "*.[ch] ^$ .* \\(grp\\)",
    "",
]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_values_written_verbatim_when_added(tmp_path: Path, value: str) -> None:
    path = conf(tmp_path, "[s]\n")
    iniset(path, "s", "k", value)
    assert content(path) == f"[s]\nk = {value}\n"
    assert iniget(path, "s", "k") == value.strip()


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_values_written_verbatim_when_replaced(tmp_path: Path, value: str) -> None:
    path = conf(tmp_path, "[s]\nk = old\nafter = 1\n")
    iniset(path, "s", "k", value)
    assert content(path) == f"[s]\nk = {value}\nafter = 1\n"


def test_value_surrounding_spaces_written_but_read_back_stripped(tmp_path: Path) -> None:
    path = conf(tmp_path, None)
    iniset(path, "s", "k", "  padded ")
    assert content(path) == "\n[s]\nk =   padded \n"
    assert iniget(path, "s", "k") == "padded"


def test_sections_with_same_prefix_are_distinct(tmp_path: Path) -> None:
    path = conf(tmp_path, "[DEFAULT_x]\ndebug = 1\n\n[DEFAULT]\ndebug = 2\n\n[DEFAULTS]\ndebug = 3\n")
    iniset(path, "DEFAULT", "debug", "new")
    assert content(path) == "[DEFAULT_x]\ndebug = 1\n\n[DEFAULT]\ndebug = new\n\n[DEFAULTS]\ndebug = 3\n"
    assert iniget(path, "DEFAULT_x", "debug") == "1"
    assert iniget(path, "DEFAULTS", "debug") == "3"


def test_section_only_present_with_longer_name_gets_appended(tmp_path: Path) -> None:
    path = conf(tmp_path, "[DEFAULT_x]\ndebug = 1\n")
    iniset(path, "DEFAULT", "debug", "2")
    assert content(path) == "[DEFAULT_x]\ndebug = 1\n\n[DEFAULT]\ndebug = 2\n"


def test_keys_with_same_prefix_are_distinct(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\ndebug_level = 1\ndebugging = 2\n")
    assert iniget(path, "s", "debug") is None
    assert not ini_has_option(path, "s", "debug")
    iniset(path, "s", "debug", "True")
    assert content(path) == "[s]\ndebug = True\ndebug_level = 1\ndebugging = 2\n"
    iniset(path, "s", "debug", "False")
    assert content(path) == "[s]\ndebug = False\ndebug_level = 1\ndebugging = 2\n"


@pytest.mark.parametrize(
    ("line", "replaced"),
    [
        ("debug=1", "debug=2"),
        ("debug = 1", "debug = 2"),
        ("debug\t=\t1", "debug\t=\t2"),
        ("debug   =1", "debug   =2"),
        ("debug =", "debug =2"),
    ],
)
def test_spacing_around_equals_read_and_kept(tmp_path: Path, line: str, replaced: str) -> None:
    path = conf(tmp_path, f"[s]\n{line}\n")
    assert iniget(path, "s", "debug") == line.split("=", 1)[1].strip()
    iniset(path, "s", "debug", "2")
    assert content(path) == f"[s]\n{replaced}\n"


def test_option_names_with_dashes_and_regex_characters(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nmy-opt = 1\naXb = 2\n")
    assert iniget(path, "s", "my-opt") == "1"
    assert iniget(path, "s", "a.b") is None
    iniset(path, "s", "my-opt", "x")
    iniset(path, "s", "a.b", "y")
    assert content(path) == "[s]\na.b = y\nmy-opt = x\naXb = 2\n"


@pytest.mark.parametrize("header", ["[DEFAULT]   ", "[DEFAULT]\t# the main section", "[DEFAULT];x"])
def test_section_header_with_trailing_spaces_or_comment(tmp_path: Path, header: str) -> None:
    path = conf(tmp_path, f"{header}\nx = 1\n")
    assert iniget(path, "DEFAULT", "x") == "1"
    iniset(path, "DEFAULT", "y", "2")
    assert content(path) == f"{header}\ny = 2\nx = 1\n"


def test_default_is_an_ordinary_section(tmp_path: Path) -> None:
    path = conf(tmp_path, "[DEFAULT]\nshared = 1\n\n[other]\nmine = 2\n")
    assert iniget(path, "other", "shared") is None
    iniset(path, "other", "shared", "3")
    assert iniget(path, "DEFAULT", "shared") == "1"
    assert content(path) == "[DEFAULT]\nshared = 1\n\n[other]\nshared = 3\nmine = 2\n"


def test_lines_before_first_header_and_indented_lines_are_not_options(tmp_path: Path) -> None:
    path = conf(tmp_path, "k = top\n[s]\n  k = continuation\n")
    assert iniget(path, "s", "k") is None
    iniset(path, "s", "k", "v")
    assert content(path) == "k = top\n[s]\nk = v\n  k = continuation\n"


def test_repeated_section_is_searched_in_every_occurrence(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\na = 1\n[t]\nk = t\n[s]\nk = old\n")
    assert iniget(path, "s", "k") == "old"
    iniset(path, "s", "k", "new")
    assert content(path) == "[s]\na = 1\n[t]\nk = t\n[s]\nk = new\n"


def test_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\r\nk = 1\r\n")
    assert iniget(path, "s", "k") == "1"
    iniset(path, "s", "k", "2")
    iniset(path, "s", "n", "3")
    iniset(path, "t", "m", "4")
    assert content(path) == "[s]\r\nn = 3\r\nk = 2\r\n\r\n[t]\r\nm = 4\r\n"


# -- reading --------------------------------------------------------------------------------------


def test_iniget_missing_file_section_option(tmp_path: Path) -> None:
    missing = conf(tmp_path, None)
    present = conf(tmp_path, "[s]\nk = v\n", "present.conf")
    assert iniget(missing, "s", "k") is None
    assert iniget(present, "nosuch", "k") is None
    assert iniget(present, "s", "nosuch") is None
    assert iniget_multiline(missing, "s", "k") == []
    assert not ini_has_option(missing, "s", "k")
    assert iniget_sections(missing) == []
    assert not missing.exists()


def test_iniget_of_multiline_option_is_last_value(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = first\nk = second\n")
    assert iniget(path, "s", "k") == "second"
    assert iniget_multiline(path, "s", "k") == ["first", "second"]


def test_ini_has_option_and_sections(tmp_path: Path) -> None:
    path = conf(tmp_path, "[a] # c\nk =\n#c = 1\n[b]\n[a]\n")
    assert ini_has_option(path, "a", "k")
    assert iniget(path, "a", "k") == ""
    assert not ini_has_option(path, "a", "c")
    assert not ini_has_option(path, "b", "k")
    assert iniget_sections(path) == ["a", "b", "a"]


# -- multi-line options -------------------------------------------------------------------------


def test_iniset_multiline_new_option_keeps_order_under_header(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nother = 1\n")
    iniset_multiline(path, "s", "k", "v1", "v2", "v3")
    assert content(path) == "[s]\nk = v1\nk = v2\nk = v3\nother = 1\n"


def test_iniset_multiline_replaces_at_first_place(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\na = 1\nk=old1\nb = 2\nk = old2\n")
    iniset_multiline(path, "s", "k", "x y", "z")
    assert content(path) == "[s]\na = 1\nk=x y\nk=z\nb = 2\n"
    assert iniget_multiline(path, "s", "k") == ["x y", "z"]


def test_iniset_multiline_creates_file_and_without_values_removes(tmp_path: Path) -> None:
    path = conf(tmp_path, None)
    iniset_multiline(path, "s", "k", "1", "2")
    assert content(path) == "\n[s]\nk = 1\nk = 2\n"
    iniset_multiline(path, "s", "k")
    assert content(path) == "\n[s]\n"


def test_iniadd_keeps_existing_values(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\na = 1\nk = one\n")
    iniadd(path, "s", "k", "two", "three four")
    assert content(path) == "[s]\na = 1\nk = one\nk = two\nk = three four\n"
    missing = conf(tmp_path, None, "new.conf")
    iniadd(missing, "s", "k", "x")
    assert content(missing) == "\n[s]\nk = x\n"


def test_merge_into_str_and_list(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = old\nm = a\nm = b\n")
    merge_into(path, "s", "m", "single")
    merge_into(path, "s", "k", ["l1", "l2"])
    assert content(path) == "[s]\nk = l1\nk = l2\nm = single\n"


# -- comment, uncomment, delete --------------------------------------------------------------


def test_inicomment_only_in_section(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = 1\nk_other = 2\nk = 3\n[t]\nk = 4\n")
    inicomment(path, "s", "k")
    assert content(path) == "[s]\n#k = 1\nk_other = 2\n#k = 3\n[t]\nk = 4\n"
    assert iniget(path, "s", "k") is None


def test_iniuncomment(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\n#k = 1\n# k=2\n#k_other = 3\n# k is documented here\n[t]\n#k = 4\n")
    iniuncomment(path, "s", "k")
    assert content(path) == "[s]\nk = 1\nk=2\n#k_other = 3\n# k is documented here\n[t]\n#k = 4\n"


def test_comment_then_uncomment_round_trip(tmp_path: Path) -> None:
    original = "[s]\n# help\nk = v\n"
    path = conf(tmp_path, original)
    inicomment(path, "s", "k")
    iniuncomment(path, "s", "k")
    assert content(path) == original


def test_inidelete_keeps_comments_and_other_sections(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\n#k = c\nk = 1\nkk = 2\nk=3\n\n[t]\nk = 4\n")
    inidelete(path, "s", "k")
    assert content(path) == "[s]\n#k = c\nkk = 2\n\n[t]\nk = 4\n"


def test_edits_of_missing_file_do_not_create_it(tmp_path: Path) -> None:
    path = conf(tmp_path, None)
    inicomment(path, "s", "k")
    iniuncomment(path, "s", "k")
    inidelete(path, "s", "k")
    assert not path.exists()


# -- writing the file ----------------------------------------------------------------------------


def test_mode_is_preserved(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = 1\n")
    path.chmod(0o640)
    iniset(path, "s", "k", "2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_new_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        iniset(tmp_path / "new.conf", "s", "k", "v")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.conf").stat().st_mode) == 0o640


def test_write_is_atomic_rename_in_same_directory(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = 1\n")
    before = path.stat().st_ino
    with open(path, encoding="utf-8") as reader:
        iniset(path, "s", "k", "2")
        # A reader that opened the file before sees the whole old file, not a mix.
        assert reader.read() == "[s]\nk = 1\n"
    assert path.stat().st_ino != before
    assert content(path) == "[s]\nk = 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.conf"]


def test_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    target = conf(tmp_path, "[s]\nk = 1\n", "real.conf")
    link = tmp_path / "link.conf"
    link.symlink_to(target)
    iniset(link, "s", "k", "2")
    assert link.is_symlink()
    assert content(target) == "[s]\nk = 2\n"


def test_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = 1\n")
    before = path.stat().st_ino
    iniset(path, "s", "k", "1")
    inidelete(path, "s", "absent")
    assert path.stat().st_ino == before


def test_sudo_as_root_writes_directly(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("checks the root path: sudo=True must not need sudo when already root")
    path = conf(tmp_path, "[s]\n")
    path.chmod(0o600)
    iniset(path, "s", "k", "v", sudo=True)
    assert content(path) == "[s]\nk = v\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sudo_write_script_keeps_mode_and_is_atomic(tmp_path: Path) -> None:
    """The shell script sudo runs, run here with plain sh (sudo itself may be absent)."""
    path = conf(tmp_path, "old\n")
    path.chmod(0o604)
    before = path.stat().st_ino
    script = ["sh", "-c", ini._SUDO_WRITE, "sh", str(tmp_path), str(path)]
    subprocess.run(script, input="[s]\nk = v\n", text=True, check=True)
    assert content(path) == "[s]\nk = v\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o604
    assert path.stat().st_ino != before
    new = tmp_path / "new.conf"
    subprocess.run(script[:-1] + [str(new)], input="x\n", text=True, check=True)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.conf", "test.conf"]


# -- IniFile: batch editing ------------------------------------------------------------------------


def test_inifile_batches_edits_into_one_write(tmp_path: Path) -> None:
    original = "[DEFAULT]\n# keep me\n\n[database]\n#connection = <None>\n"
    path = conf(tmp_path, original)
    conf_file = IniFile(path)
    for i in range(50):
        conf_file.set("DEFAULT", f"opt{i}", str(i))
    conf_file.set("database", "connection", "sqlite:////tmp/x.db")
    conf_file.set_multiline("DEFAULT", "multi", ["a", "b"])
    conf_file.delete("DEFAULT", "opt0")
    assert conf_file.get("DEFAULT", "opt49") == "49"
    assert conf_file.changed
    assert content(path) == original
    assert conf_file.save()
    written = content(path)
    assert written.startswith("[DEFAULT]\nmulti = a\nmulti = b\nopt49 = 49\n")
    assert "opt0 =" not in written
    assert written.endswith("[database]\nconnection = sqlite:////tmp/x.db\n#connection = <None>\n")
    assert not conf_file.changed
    assert not conf_file.save()


def test_inifile_context_manager_saves_only_on_success(tmp_path: Path) -> None:
    path = conf(tmp_path, "[s]\nk = 1\n")
    with IniFile(path) as conf_file:
        conf_file.set("s", "k", "2")
    assert content(path) == "[s]\nk = 2\n"
    with pytest.raises(RuntimeError):
        with IniFile(path) as conf_file:
            conf_file.set("s", "k", "3")
            raise RuntimeError("boom")
    assert content(path) == "[s]\nk = 2\n"


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "option", "value"),
    [
        ("", "k", "v"),
        ("s", "", "v"),
        ("a]b", "k", "v"),
        ("  ", "k", "v"),
        ("s", "k=x", "v"),
        ("s", "#k", "v"),
        ("s", " k", "v"),
        ("s", "k", "line1\nline2"),
        ("s", "k", "cr\r"),
    ],
)
def test_bad_names_and_values_raise_stack_error(
    tmp_path: Path, section: str, option: str, value: str
) -> None:
    path = conf(tmp_path, None)
    with pytest.raises(IniError):
        iniset(path, section, option, value)
    assert not path.exists()


def test_non_string_value_rejected(tmp_path: Path) -> None:
    with pytest.raises(IniError, match="must be a string"):
        iniset(tmp_path / "x.conf", "s", "k", 1)  # type: ignore[arg-type]


def test_missing_directory_is_a_stack_error(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="cannot write .*nodir"):
        iniset(tmp_path / "nodir" / "x.conf", "s", "k", "v")


def test_directory_as_file_is_a_stack_error(tmp_path: Path) -> None:
    with pytest.raises(IniError, match="cannot read"):
        iniget(tmp_path, "s", "k")


def test_value_not_in_error_message(tmp_path: Path) -> None:
    with pytest.raises(IniError) as caught:
        iniset(tmp_path / "x.conf", "s", "password", "s3cret\nmore")
    assert "s3cret" not in str(caught.value)


# -- writers at the same time ---------------------------------------------------------------------

_WRITER = """
import sys
from stackmagic.ini import iniset
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.stdin.read()                      # wait for the go: every writer starts together
for index in range(count):
    iniset(path, "DEFAULT" if index % 2 else "shared", f"{name}_{index}", f"{name}={index}")
"""


def test_concurrent_writers_in_threads_and_processes_lose_nothing(tmp_path: Path) -> None:
    """devstack's Neutron writes nova.conf while Nova configures it: every option must land."""
    path = conf(tmp_path, "[DEFAULT]\n# a comment that stays\ndebug = True\n")
    path.chmod(0o640)
    count, processes, threads = 40, 4, 6
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"proc{n}", str(count)],
                         stdin=subprocess.PIPE, env=env)
        for n in range(processes)
    ]
    go = threading.Event()

    def write(name: str) -> None:
        go.wait()
        for index in range(count):
            iniset(path, "DEFAULT" if index % 2 else "shared", f"{name}_{index}", f"{name}={index}")

    workers = [threading.Thread(target=write, args=(f"thread{n}",)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for proc in procs:
        proc.stdin.close()  # type: ignore[union-attr]
    go.set()
    for worker in workers:
        worker.join()
    assert [proc.wait(timeout=120) for proc in procs] == [0] * processes

    names = [f"proc{n}" for n in range(processes)] + [f"thread{n}" for n in range(threads)]
    missing = [
        f"{name}_{index}"
        for name in names
        for index in range(count)
        if iniget(path, "DEFAULT" if index % 2 else "shared", f"{name}_{index}")
        != f"{name}={index}"
    ]
    assert missing == [], f"{len(missing)} of {len(names) * count} writes lost"
    assert iniget(path, "DEFAULT", "debug") == "True"
    assert "# a comment that stays\n" in content(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.conf"]  # no temp or lock file left


def test_save_redoes_edits_on_a_file_changed_since_it_was_read(tmp_path: Path) -> None:
    path = conf(tmp_path, "[DEFAULT]\na = 1\n")
    mine = ini.IniFile(path)
    mine.set("DEFAULT", "mine", "yes")
    mine.add("multi", "m", "x", "y")
    iniset(path, "DEFAULT", "theirs", "yes")  # another writer, between our read and our save
    assert mine.save()
    assert content(path) == "[DEFAULT]\nmine = yes\ntheirs = yes\na = 1\n\n[multi]\nm = x\nm = y\n"


# -- local.conf merges and the shell interface ----------------------------------------------------


def test_merge_file_keeps_local_conf_order_and_replaces_in_place(tmp_path: Path) -> None:
    path = conf(tmp_path, "[eee]\n# original comment\ntype=original\n")
    ini.merge_file(path, [("eee", "type", "new"), ("eee", "multi", "foo2"), ("eee", "z", "1"),
                          ("new", "b", "2"), ("new", "a", ("x", "y"))])
    assert content(path) == ("[eee]\nmulti = foo2\nz = 1\n# original comment\ntype=new\n"
                             "\n[new]\nb = 2\na = x\na = y\n")


def test_shell_interface(tmp_path: Path) -> None:
    path = tmp_path / "x.conf"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stackmagic.ini", *args], input=stdin,
                              capture_output=True, text=True, env=env, timeout=60)

    assert run("set", str(path), "DEFAULT", "debug", "a & b \\ c").returncode == 0
    assert run("get", str(path), "DEFAULT", "debug").stdout == "a & b \\ c\n"
    assert run("has-option", str(path), "DEFAULT", "debug").returncode == 0
    assert run("has-option", str(path), "DEFAULT", "nope").returncode == 1
    assert run("merge", str(path), stdin="s\0k\0one\0s\0k\0two\0s\0j\0v\0").returncode == 0
    assert run("get-multiline", str(path), "s", "k").stdout == "one\ntwo\n"
    assert run("sections", str(path)).stdout == "DEFAULT\ns\n"
    missing = run("set", str(path), "DEFAULT")           # devstack's iniset does nothing here
    assert missing.returncode == 0 and "nothing done" in missing.stderr
    bad = run("set", str(tmp_path / "no" / "dir" / "x.conf"), "s", "k", "v")
    assert bad.returncode == 1 and "cannot write" in bad.stderr and "Traceback" not in bad.stderr
    assert run("frobnicate", str(path)).returncode == 2
