"""The PyPI mirror: real downloads, real git repos, real pip installs of the clones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import git
import pytest

from stackmagic import constraints
from stackmagic.mirror import (
    MirrorError,
    MirrorResult,
    fetch_sdist,
    mirror_project,
    mirror_release,
    release_projects,
    repo_path,
)

# A small pbr-built sdist keeps the download and the installs fast.
NAME, VERSION = "os-service-types", "1.9.0"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist cache holding os-service-types 1.9.0, downloaded once from PyPI."""
    path = tmp_path_factory.mktemp("sdists")
    fetch_sdist(NAME, VERSION, path)
    return path


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> MirrorResult:
    return mirror_project(NAME, VERSION, "os-service-types", tmp_path_factory.mktemp("root"),
                          cache=cache, series="2026.2")


def _clone(result: MirrorResult, dest: Path) -> git.Repo:
    return git.Repo.clone_from(str(result.path), str(dest), branch=result.version)


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def _installed_version(python: Path, *pip_args: str) -> str:
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                    "--disable-pip-version-check", *pip_args], check=True)
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                          f"print(m.version({NAME!r}))"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def test_bare_repo_with_tag_and_branches(mirrored: MirrorResult) -> None:
    assert mirrored.created
    assert mirrored.path.name == "os-service-types.git"
    assert mirrored.path.parent.name == "openstack"
    repo = git.Repo(mirrored.path)
    assert repo.bare
    tag = repo.tags[VERSION]
    assert tag.tag is not None, "the tag must be annotated (pbr reads annotated tags)"
    head = repo.heads["master"].commit
    assert tag.commit == head == repo.heads["stable/2026.2"].commit
    assert head.author.name == "stackmagic mirror"


def test_clone_at_tag_has_no_generated_files(mirrored: MirrorResult, tmp_path: Path) -> None:
    clone = _clone(mirrored, tmp_path / "clone")
    tree = Path(clone.working_tree_dir or "")
    assert (tree / "os_service_types" / "__init__.py").is_file()
    assert (tree / "setup.cfg").is_file()
    for generated in ("PKG-INFO", "AUTHORS", "ChangeLog", "os_service_types.egg-info"):
        assert not (tree / generated).exists(), generated
    assert "*.egg-info/" in (tree / ".gitignore").read_text().splitlines()


def test_install_of_clone_has_release_version(mirrored: MirrorResult, tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    clone = _clone(mirrored, tmp_path / "plain")
    assert _installed_version(python, str(tmp_path / "plain")) == VERSION
    assert not clone.is_dirty(untracked_files=True), "pbr's files must be ignored"


def test_editable_install_of_clone_has_release_version(mirrored: MirrorResult,
                                                      tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    clone = _clone(mirrored, tmp_path / "editable")
    assert _installed_version(python, "-e", str(tmp_path / "editable")) == VERSION
    assert not clone.is_dirty(untracked_files=True)


def test_second_call_is_a_quick_no_op(mirrored: MirrorResult, tmp_path: Path) -> None:
    before = git.Repo(mirrored.path).heads["master"].commit.hexsha
    again = mirror_project(NAME, VERSION, "os-service-types", mirrored.path.parent.parent,
                           cache=tmp_path / "empty-cache-so-no-download-is-possible")
    assert again == MirrorResult(NAME, VERSION, mirrored.path, created=False)
    assert git.Repo(mirrored.path).heads["master"].commit.hexsha == before


def test_same_release_gives_same_sha(mirrored: MirrorResult, cache: Path,
                                     tmp_path: Path) -> None:
    other = mirror_project(NAME, VERSION, "os-service-types", tmp_path, cache=cache,
                           series="2026.2")
    assert git.Repo(other.path).tags[VERSION].commit.hexsha == \
        git.Repo(mirrored.path).tags[VERSION].commit.hexsha


def test_new_release_goes_on_top_of_the_old(cache: Path, tmp_path: Path) -> None:
    first = mirror_project(NAME, VERSION, "ost", tmp_path, cache=cache)
    fetch_sdist(NAME, "1.8.0", cache)
    second = mirror_project(NAME, "1.8.0", "ost", tmp_path, cache=cache)
    assert second.created and second.path == first.path
    repo = git.Repo(second.path)
    assert {t.name for t in repo.tags} == {VERSION, "1.8.0"}
    assert repo.heads["master"].commit.parents[0] == repo.tags[VERSION].commit
    assert [p.name for p in second.path.parent.iterdir()] == ["ost.git"], "no temp dirs left"


def test_missing_version_says_so(tmp_path: Path) -> None:
    with pytest.raises(MirrorError, match=r"PyPI has no sdist of os-service-types==99\.99\.99"):
        mirror_project(NAME, "99.99.99", "os-service-types", tmp_path / "root",
                       cache=tmp_path / "cache")
    assert not repo_path(tmp_path / "root", "os-service-types").exists()


def test_unreachable_index_says_what_to_do(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    with pytest.raises(MirrorError, match="package index could not be reached") as err:
        fetch_sdist(NAME, VERSION, tmp_path / "cache")
    assert str(tmp_path / "cache") in str(err.value)


def test_release_collects_every_failure(cache: Path, tmp_path: Path) -> None:
    projects = {"good": (NAME, VERSION), "bad": (NAME, "99.99.98")}
    with pytest.raises(MirrorError, match="99.99.98"):
        mirror_release(projects, tmp_path, cache, parallel=2)
    assert (repo_path(tmp_path, "good") / "HEAD").is_file()


def test_release_projects_name_the_repos() -> None:
    projects = release_projects("2026.2")
    assert projects["placement"] == ("openstack-placement", "16.0.0")
    assert projects["keystone"] == ("keystone", "30.0.0")
    assert projects["horizon"] == ("horizon", "27.0.0")
    assert projects["heat"] == ("openstack-heat", "27.0.0")          # openstack/heat
    assert projects["swift"] == ("swift", "2.38.2")
    assert projects["trove"] == ("trove", "26.0.0")
    assert set(projects) == {"keystone", "glance", "placement", "nova", "neutron", "horizon", "cinder",
                             "heat", "zaqar", "swift", "trove", "ceilometer"}


def test_constraints_do_not_pin_the_servers() -> None:
    text = constraints.constraints_file("2026.2").read_text()
    pinned = {constraints.normalize(line.split("===")[0])
              for line in text.splitlines() if "===" in line and not line.startswith("#")}
    assert {"oslo-config", "gunicorn", "openstacksdk", "pymysql", "pymemcache"} <= pinned
    assert not pinned & {"keystone", "glance", "openstack-placement", "nova", "neutron", "horizon", "cinder",
                         "zaqar", "trove", "ceilometer"}
    assert all("===" in line for line in text.splitlines() if line and not line.startswith("#"))


def test_without_drops_pins_by_normalized_name() -> None:
    text = "# header\noslo.config===10.7.0\nPyMySQL===1.2.0\n"
    assert constraints.without(text, {"oslo_config"}) == "# header\nPyMySQL===1.2.0\n"


def test_unknown_series_is_a_config_error() -> None:
    from stackmagic.errors import ConfigError

    with pytest.raises(ConfigError, match="known: 2026.2"):
        constraints.constraints_file("1999.1")
