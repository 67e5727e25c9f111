"""devstack's own unit tests, run against stackmagic.

devstack's ``tests/test_functions.sh``, ``test_ini_config.sh``, ``test_meta_config.sh`` and
``test_truefalse.sh`` are the reference for the service functions, the INI editor, local.conf
merging and booleans. Two ways to run them:

* always: their cases, written down as data in ``tests/fixtures/devstack/cases.json`` (inputs,
  expected results and the upstream line of each), are driven through stackmagic: the service
  functions and ``trueorfalse`` in bash from ``stackmagic/config/functions.sh`` (the file every
  localrc is evaluated with), the INI cases through :mod:`stackmagic.ini`, the local.conf cases
  through :func:`stackmagic.config.load_config` and the engine's ``apply_merges``;
* with ``DEVSTACK_SRC`` pointing at a devstack checkout: the upstream scripts themselves, with
  the functions they source (``functions``, ``functions-common``, ``inc/ini-config``,
  ``inc/meta-config``) replaced by the stand-ins in ``tests/fixtures/devstack/shim/``, which call
  stackmagic's code. Their PASS/ERROR/OK output is counted per script; the helpers stackmagic
  has no reason to offer (``not_provided`` in cases.json, and README "Compatibility with
  devstack") are counted as skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stackmagic import ini
from stackmagic.config import load_config
from stackmagic.config import localconf
from stackmagic.config.settings import Settings
from stackmagic.steps import apply_merges

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures" / "devstack"
CASES = json.loads((DATA / "cases.json").read_text())
FUNCTIONS = ROOT / "stackmagic" / "config" / "functions.sh"


def case_id(case: dict) -> str:
    return f"L{case['line']}"


def bash(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in bash after sourcing stackmagic's functions.sh."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", f"source {shlex.quote(str(FUNCTIONS))}\n{script}"],
        capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]},
    )


# -- the service functions (test_functions.sh) -----------------------------------------------


@pytest.mark.parametrize(
    ("function", "case"),
    [(function, case) for function in ("enable_service", "disable_service",
                                       "disable_all_services", "disable_negated_services")
     for case in CASES[function]],
    ids=lambda value: value if isinstance(value, str) else case_id(value),
)
def test_service_list_functions(function: str, case: dict) -> None:
    args = " ".join(shlex.quote(arg) for arg in case["args"])
    result = bash(f"ENABLED_SERVICES={shlex.quote(case['start'])}\n{function} {args}\n"
                  'printf "%s" "$ENABLED_SERVICES"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == case["expect"], f"{function} {case}"


@pytest.mark.parametrize("case", CASES["remove_disabled_services"], ids=case_id)
def test_remove_disabled_services(case: dict) -> None:
    result = bash(f"remove_disabled_services {shlex.quote(case['list'])} "
                  f"{shlex.quote(case['remove'])}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == case["expect"] + "\n"


@pytest.mark.parametrize("case", CASES["isset"], ids=case_id)
def test_isset(case: dict) -> None:
    setup = "you_should_not_have_this_variable=42" if case["set"] else \
        "unset you_should_not_have_this_variable"
    result = bash(f"{setup}\nisset you_should_not_have_this_variable")
    assert (result.returncode == 0) is case["expect"]


# -- booleans (test_truefalse.sh) ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["true_words", "false_words"])
@pytest.mark.parametrize("default", ["True", "False"])
def test_trueorfalse_words(kind: str, default: str) -> None:
    words = CASES["trueorfalse"][kind]["words"]
    expect = "True" if kind == "true_words" else "False"
    lines = [f"v{index}={shlex.quote(word)}; trueorfalse {default} v{index}"
             for index, word in enumerate(words)]
    result = bash("\n".join(lines))
    assert result.stdout.split() == [expect] * len(words)
    # the same rule in Python, where stackmagic reads its settings
    settings = Settings({f"v{index}": word for index, word in enumerate(words)})
    assert [settings.bool(f"v{index}", default == "True") for index in range(len(words))] == \
        [expect == "True"] * len(words)


def test_trueorfalse_missing_variable_gives_the_default() -> None:
    case = CASES["trueorfalse"]["missing_variable"]
    result = bash(f"trueorfalse {case['default']} MISSING_VARIABLE")
    assert result.stdout.strip() == case["expect"]
    assert Settings({}).bool("MISSING_VARIABLE", False) is False


def test_trueorfalse_without_a_variable_name_dies() -> None:
    """The common mistake ``trueorfalse False $FOO`` (FOO empty) must stop, not answer."""
    case = CASES["trueorfalse"]["no_variable_name"]
    result = bash('VAR=$(trueorfalse False $FOO)')
    assert result.returncode == case["exit_status"]
    assert "needs the name of a variable" in result.stderr
    # in a localrc it is a configuration error at its line
    with pytest.raises(Exception, match="needs the name of a variable") as error:
        load_config(text="A=1\nVAR=$(trueorfalse False $FOO)\n")
    assert getattr(error.value, "line", None) == 2


# -- the INI editor (test_ini_config.sh) -----------------------------------------------------


def test_ini_config_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The upstream steps in order, on one file, as the upstream script runs them."""
    path = tmp_path / "etc" / "test.ini"
    path.parent.mkdir()
    path.write_text(CASES["ini"]["start"])
    do = {"set": ini.iniset, "set_multiline": ini.iniset_multiline, "add": ini.iniadd,
          "comment": ini.inicomment, "delete": ini.inidelete}
    checked = 0
    for step in CASES["ini"]["steps"]:
        where = f"test_ini_config.sh line {step['line']}: {step}"
        if "do" in step:
            verb, *args = step["do"]
            do[verb](path, *args)
            continue
        checked += 1
        if "sections" in step:
            # devstack's iniget_sections echoes the names on one line (word-split)
            assert " ".join(ini.iniget_sections(path)).split() == step["sections"].split(), where
        elif "shell" in step:
            before = path.read_text()
            assert ini.main([step["shell"][0], str(path), *step["shell"][1:]]) == 0, where
            assert "nothing done" in capsys.readouterr().err
            assert path.read_text() == before, where
        elif "get" in step:
            assert ini.iniget(path, *step["get"]) == step["expect"], where
        elif "multi" in step:
            assert ini.iniget_multiline(path, *step["multi"]) == step["expect"], where
        elif "has" in step:
            assert ini.ini_has_option(path, *step["has"]) is step["expect"], where
        elif "new_file" in step:
            new = tmp_path / "etc" / "test.new.ini"
            section, option, value = step["new_file"]
            ini.iniset(new, section, option, value)
            assert ini.iniget(new, section, option) == step["expect"], where
            # a new file starts with devstack's blank line
            assert new.read_text() == f"\n[{section}]\n{option} = {value}\n"
        else:
            raise AssertionError(f"unknown step {step}")
    assert checked >= 36  # as many checks as the upstream script makes


# -- local.conf merging (test_meta_config.sh) ------------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines.append(line)


def _local_conf(tmp_path: Path, case: dict) -> str:
    spec = case.get("spec", f"@DIR@/{case.get('file', 'x.conf')}")
    text = "[[local|localrc]]\n" + case.get("localrc", "")
    for block in case.get("blocks", [case.get("block")]):
        text += f"[[post-config|{spec}]]\n{block}\n"
    return text.replace("@DIR@", str(tmp_path))


@pytest.mark.parametrize("case", CASES["merge"], ids=lambda case: case["name"])
def test_local_conf_merge(tmp_path: Path, case: dict) -> None:
    target = tmp_path / case["file"]
    if case["before"] is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(case["before"])
    config = load_config(text=_local_conf(tmp_path, case))
    assert {m.file for m in config.merges} == {target}
    apply_merges(_Log(), config.merges)  # what `stackmagic stack` does in post-config
    assert target.read_text().rstrip("\n") == case["after"], \
        f"test_meta_config.sh line {case['line']}"


@pytest.mark.parametrize("case", CASES["merge_skipped"], ids=lambda case: case["name"])
def test_local_conf_block_devstack_skips_is_a_warning(tmp_path: Path, case: dict) -> None:
    config = load_config(text=_local_conf(tmp_path, case))
    assert config.merges == []
    assert any(case["warning"] in warning and "skipped" in warning for warning in config.warnings)
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", CASES["merge_target"], ids=lambda case: case["name"])
def test_merge_target_is_created_or_refused(tmp_path: Path, case: dict,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    if "make_file" in case:
        (tmp_path / case["make_file"]).write_text("")
    target = tmp_path / case["file"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("DEFAULT\0foo\0bar\0"))
    status = ini.main(["merge", str(target)])
    if case["ok"]:
        assert status == 0 and ini.iniget(target, "DEFAULT", "foo") == "bar"
    else:
        assert status == 1 and "cannot create" in capsys.readouterr().err


@pytest.mark.parametrize("case", CASES["meta"], ids=case_id)
def test_meta_section_readers(tmp_path: Path, case: dict,
                              capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "test.conf"
    if not case.get("missing_file"):
        conf.write_text(CASES["meta_text"])
    if "files" in case:
        assert localconf.main(["files", str(conf), case["files"]]) == 0
        assert capsys.readouterr().out.split() == case["expect"]
    else:
        assert localconf.main(["section", str(conf), *case["section"]]) == 0
        assert capsys.readouterr().out.strip("\n") == case["expect"]


# -- the upstream scripts themselves (DEVSTACK_SRC) ------------------------------------------

SCRIPTS = ["test_functions.sh", "test_ini_config.sh", "test_meta_config.sh", "test_truefalse.sh"]
_DEVSTACK = os.environ.get("DEVSTACK_SRC")
_HEADER = re.compile(r"^Testing (\w+)")


@dataclass
class Counts:
    """What one upstream script reported, per outcome; ``groups`` maps a result to its
    ``Testing X()`` group (test_functions.sh prints one before each function's cases)."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    not_run: int = 0
    failures: list[str] = field(default_factory=list)


def _count_unittest(output: str, unsupported: dict[str, str]) -> Counts:
    """Count tests/unittest.sh's ``PASS:`` and ``ERROR:`` lines by ``Testing X()`` group."""
    counts = Counts()
    group = ""
    for line in output.splitlines():
        header = _HEADER.match(line)
        if header:
            group = header.group(1)
        elif line.startswith(("PASS:", "ERROR:")):
            if group in unsupported:
                counts.skipped += 1
            elif line.startswith("PASS:"):
                counts.passed += 1
            else:
                counts.failed += 1
                counts.failures.append(f"[{group}] {line}")
    return counts


def _count_meta(output: str, script: str) -> Counts:
    """test_meta_config.sh prints ``description: OK`` per case and stops at the first failure."""
    counts = Counts()
    for line in output.splitlines():
        if line.endswith("OK"):
            counts.passed += 1
        elif "failed:" in line:
            counts.failed += 1
            counts.failures.append(line)
    total = len(re.findall(r'^echo (?:-n )?".*: "$', script, flags=re.MULTILINE))
    counts.not_run = total - counts.passed - counts.failed
    return counts


def _as_nobody() -> list[str]:
    """Run as an unprivileged user when root: the scripts expect writing /x.conf to fail."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running devstack's scripts as root needs setpriv to drop to nobody")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def run_upstream(script: str, devstack: Path, top: Path) -> tuple[Counts, str]:
    """Run devstack's ``tests/<script>`` in a devstack-like tree whose functions are ours."""
    shutil.copytree(DATA / "shim", top)
    (top / "tests").mkdir()
    for name in (script, "unittest.sh"):
        shutil.copy(devstack / "tests" / name, top / "tests" / name)
    (top / "run_tests.sh").write_text("")  # the scripts run from devstack's top directory
    prefix = _as_nobody()
    python = sys.executable
    if prefix:
        top.parent.chmod(0o755)
        shutil.chown(top, "nobody", "nogroup")
        for path in top.rglob("*"):
            shutil.chown(path, "nobody", "nogroup")
        python = "/usr/bin/python3"  # ours may live where nobody cannot read
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(top), "LC_ALL": "C.UTF-8",
           "PYTHONPATH": str(ROOT), "STACKMAGIC_PYTHON": python,
           "STACKMAGIC_FUNCTIONS_SH": str(FUNCTIONS)}
    proc = subprocess.run([*prefix, "bash", f"tests/{script}"], cwd=top, env=env,
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    text = (devstack / "tests" / script).read_text()
    if script == "test_meta_config.sh":
        return _count_meta(proc.stdout, text), output
    return _count_unittest(proc.stdout, CASES["not_provided"].get(script, {})), output


@pytest.mark.skipif(not _DEVSTACK, reason="set DEVSTACK_SRC to a devstack checkout to run "
                    "devstack's own test scripts (CI has none; the cases above run always)")
@pytest.mark.parametrize("script", SCRIPTS)
def test_upstream_script(script: str, tmp_path: Path) -> None:
    devstack = Path(_DEVSTACK or "")
    if not (devstack / "tests" / script).is_file():
        pytest.skip(f"{devstack} has no tests/{script}")
    # as nobody (when root) the tree must be where nobody can reach it: not in root's tmp_path
    base = Path(tempfile.mkdtemp(prefix="stackmagic-devstack-")) if os.geteuid() == 0 else tmp_path
    try:
        counts, output = run_upstream(script, devstack, base / "devstack")
    finally:
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{script}: {counts.passed} passed, {counts.failed} failed, "
          f"{counts.skipped} skipped (not provided), {counts.not_run} not run")
    assert counts.failed == 0 and counts.not_run == 0, "\n".join(counts.failures) + "\n" + output
    assert counts.passed > 0, output
