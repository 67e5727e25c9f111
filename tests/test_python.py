"""Tests of stackmagic.python: real venvs, real uv/pip installs of tiny local packages, offline."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import stackmagic.python
from stackmagic.python import CommandError, InstallError, Venv, VenvError, normalize

# A PEP 517/660 build backend that needs nothing but the standard library, so that building the
# test packages works without a network: NAME, VERSION and DEPENDS are filled in per package.
BACKEND = '''
"""Writes wheels of one package with the standard library only."""
import base64, hashlib, os, pathlib, zipfile

HERE = pathlib.Path(__file__).resolve().parent
NAME, VERSION, DEPENDS = {name!r}, {version!r}, {depends!r}
DIST = f"{{NAME}}-{{VERSION}}"


def _wheel(directory, payload):
    files = dict(payload)
    meta = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
    files[f"{{DIST}}.dist-info/METADATA"] = (meta + "".join(f"Requires-Dist: {{d}}\\n" for d in DEPENDS)).encode()
    wheel = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{{DIST}}.dist-info/WHEEL"] = wheel.encode()
    files[f"{{DIST}}.dist-info/entry_points.txt"] = f"[console_scripts]\\n{{NAME}}-hello = {{NAME}}:main\\n".encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{DIST}}.dist-info/RECORD,,")
    files[f"{{DIST}}.dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = f"{{DIST}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {{f"{{NAME}}/__init__.py": (HERE / NAME / "__init__.py").read_bytes()}})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {{f"_{{NAME}}_editable.pth": f"{{HERE}}\\n".encode()}})
'''


def make_project(root: Path, name: str, version: str, depends: tuple[str, ...] = ()) -> Path:
    """A source tree of package ``name`` with a console script ``<name>-hello``."""
    (root / name).mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    (root / "backend.py").write_text(BACKEND.format(name=name, version=version, depends=list(depends)))
    (root / name / "__init__.py").write_text(
        f'VERSION = "{version}"\n\ndef main():\n    print("hello from {name}", VERSION)\n'
    )
    return root


def build_wheel(project: Path, into: Path) -> Path:
    """Build ``project``'s wheel into ``into`` by calling its backend, as a frontend would."""
    spec = importlib.util.spec_from_file_location(f"backend_{id(project)}", project / "backend.py")
    assert spec is not None and spec.loader is not None
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    into.mkdir(exist_ok=True)
    return into / backend.build_wheel(str(into))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find-links directory with smlib 1.0 and 2.0."""
    root = tmp_path_factory.mktemp("wheels")
    for version in ("1.0", "2.0"):
        build_wheel(make_project(root / f"smlib-{version}", "smlib", version), root / "dist")
    return root / "dist"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A source tree of smapp 1.0, which needs smlib."""
    return make_project(tmp_path / "smapp", "smapp", "1.0", ("smlib",))


@pytest.fixture
def venv(tmp_path: Path) -> Venv:
    env = Venv(tmp_path / "venv")
    env.ensure()
    return env


def test_ensure_creates_once_from_this_python(tmp_path: Path) -> None:
    env = Venv(tmp_path / "data" / "venv")
    assert env.ensure() is True
    assert env.ensure() is False

    out = env.run("python", "-c", "import sys; print(sys.prefix); print(sys.version_info[:2])").stdout.split("\n")
    assert Path(out[0]) == env.path
    assert out[1] == str(sys.version_info[:2])
    assert env.bin("python") == env.python and env.python.exists()
    assert env.installed() == {}


def test_ensure_refuses_what_is_not_a_venv(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("mine")
    with pytest.raises(VenvError, match="not a virtual environment"):
        Venv(tmp_path / "busy").ensure()
    assert (tmp_path / "busy" / "file").read_text() == "mine"


def test_editable_install_with_console_script(venv: Venv, app: Path, wheels: Path) -> None:
    lines: list[str] = []
    venv.install([], editable=[app], find_links=[wheels], offline=True, log=lines.append)

    assert venv.installed() == {"smapp": "1.0", "smlib": "2.0"}
    assert any("smapp" in line for line in lines)
    assert venv.bin("smapp-hello").exists()
    assert venv.run("smapp-hello").stdout == "hello from smapp 1.0\n"
    # the source tree is what runs: an edit shows without reinstalling
    (app / "smapp" / "__init__.py").write_text('def main():\n    print("edited")\n')
    assert venv.run("smapp-hello").stdout == "edited\n"


def test_plain_install_of_a_source_tree_copies_it(venv: Venv, app: Path, wheels: Path) -> None:
    venv.install([str(app)], find_links=[wheels], offline=True)

    assert venv.installed() == {"smapp": "1.0", "smlib": "2.0"}
    (app / "smapp" / "__init__.py").write_text('def main():\n    print("edited")\n')
    assert venv.run("smapp-hello").stdout == "hello from smapp 1.0\n"
    location = venv.run("python", "-c", "import smapp; print(smapp.__file__)").stdout.strip()
    assert Path(location).is_relative_to(venv.path)


def test_constraints_pin_a_version_and_upgrade_lifts_what_is_installed(
    venv: Venv, app: Path, wheels: Path, tmp_path: Path
) -> None:
    constraints = tmp_path / "upper-constraints.txt"
    constraints.write_text("smlib===1.0\n")

    venv.install([], editable=[app], constraints=constraints, find_links=[wheels], offline=True)
    assert venv.installed()["smlib"] == "1.0"

    venv.install(["smlib"], find_links=[wheels], offline=True)
    assert venv.installed()["smlib"] == "1.0"  # satisfied, left alone
    venv.install(["smlib"], upgrade=True, find_links=[wheels], offline=True)
    assert venv.installed()["smlib"] == "2.0"


def test_failing_install_raises_with_the_installer_tail(venv: Venv, wheels: Path) -> None:
    lines: list[str] = []
    with pytest.raises(InstallError) as caught:
        venv.install(["smlib==9.9"], find_links=[wheels], offline=True, log=lines.append)

    err = caught.value
    assert err.requirements == ["smlib==9.9"]
    assert err.returncode != 0
    assert err.tail == lines[-20:] and any("smlib" in line for line in err.tail)
    assert "installing smlib==9.9 failed" in str(err) and err.tail[-1] in str(err)
    assert venv.installed() == {}


def test_install_of_nothing_does_nothing(venv: Venv) -> None:
    venv.install([])
    assert venv.installed() == {}


def test_run_reports_failures_and_timeouts(venv: Venv, tmp_path: Path) -> None:
    result = venv.run("python", "-c", "import os, sys; print(os.getcwd(), os.environ['X']); sys.exit(3)",
                      env={"X": "y"}, cwd=tmp_path, check=False)
    assert result.returncode == 3 and result.stdout == f"{tmp_path} y\n"
    with pytest.raises(CommandError, match="exit status 4(.|\n)*oops"):
        venv.run("python", "-c", "import sys; print('oops', file=sys.stderr); sys.exit(4)")
    with pytest.raises(CommandError, match="did not finish in 0.5 s"):
        venv.run("python", "-c", "import time; time.sleep(30)", timeout=0.5)
    with pytest.raises(CommandError, match="not found"):
        venv.run("no-such-program-anywhere")


def test_without_uv_falls_back_to_venv_and_pip(
    tmp_path: Path, app: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stackmagic.python, "find_uv", lambda: None)
    env = Venv(tmp_path / "venv")

    assert env.ensure() is True
    env.install([], editable=[app], find_links=[wheels], offline=True)

    installed = env.installed()
    assert installed["smapp"] == "1.0" and installed["smlib"] == "2.0" and "pip" in installed
    assert env.run("smapp-hello").stdout == "hello from smapp 1.0\n"


def test_normalize() -> None:
    assert normalize("Oslo_Config") == "oslo-config"
    assert normalize("zope.interface") == "zope-interface"


# --- interrupted and killed: half-made venvs are made again ------------------------------


def test_venv_whose_creation_was_cut_short_is_made_again(tmp_path: Path) -> None:
    """`uv venv` killed before it writes pyvenv.cfg leaves bin/ and lib/: once, every later
    stack failed with "exists and is not a virtual environment" (seen by killing it at random
    moments: some runs leave exactly this)."""
    env = Venv(tmp_path / "venv")
    env.ensure()
    (env.path / "pyvenv.cfg").unlink()
    assert not env.complete()
    assert env.ensure() is True
    assert env.complete() and env.run("python", "-c", "print(1)").stdout == "1\n"


def test_venv_marked_as_being_made_is_made_again(tmp_path: Path) -> None:
    """Killed after pyvenv.cfg but before it finished: the mark written before it began remains."""
    env = Venv(tmp_path / "venv")
    env.ensure()
    (env.path / "leftover").write_text("from the killed creation")
    env._creating.write_text("1\n")
    assert not env.complete()
    assert env.ensure() is True
    assert not (env.path / "leftover").exists() and env.complete()


def test_venv_whose_python_is_gone_is_made_again(tmp_path: Path) -> None:
    env = Venv(tmp_path / "venv")
    env.ensure()
    env.python.unlink()
    assert not env.complete()
    assert env.ensure() is True
    assert env.complete()


def test_install_cut_short_is_redone_in_full(venv: Venv, app: Path, wheels: Path) -> None:
    """A killed installer can leave a package's metadata without its files; the next install
    reinstalls instead of trusting the metadata."""
    venv.install(["smlib"], find_links=[wheels], offline=True)
    site = Path(venv.run("python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    (site / "smlib" / "__init__.py").unlink()            # files gone, metadata still there
    venv._installing.write_text("killed\n")               # the mark the killed install left
    assert not venv.complete()
    venv.install(["smlib"], find_links=[wheels], offline=True)
    assert (site / "smlib" / "__init__.py").exists()
    assert venv.complete()
