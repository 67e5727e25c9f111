"""Settings: devstack's trueorfalse, typed readers, defaults, masking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackmagic.config import defaults
from stackmagic.config.settings import MASK, Settings
from stackmagic.errors import ConfigError

TRUE_WORDS = ["1", "yes", "Yes", "YES", "true", "True", "TRUE"]
FALSE_WORDS = ["0", "no", "No", "NO", "false", "False", "FALSE"]
OTHER_WORDS = ["", "y", "n", "on", "off", "2", "yES", "tRUE", " yes"]


@pytest.mark.parametrize("word", TRUE_WORDS)
def test_true_words(word: str) -> None:
    assert Settings({"RECLONE": word}).bool("RECLONE", default=False) is True


@pytest.mark.parametrize("word", FALSE_WORDS)
def test_false_words(word: str) -> None:
    assert Settings({"RECLONE": word}).bool("RECLONE", default=True) is False


@pytest.mark.parametrize("word", OTHER_WORDS)
def test_other_words_take_the_default(word: str) -> None:
    settings = Settings({"RECLONE": word})
    assert settings.bool("RECLONE", default=True) is True
    assert settings.bool("RECLONE", default=False) is False


def test_unset_takes_the_default() -> None:
    assert Settings({}).bool("OFFLINE", default=True) is True
    assert Settings({}).reclone is False


def test_read_only_mapping() -> None:
    settings = Settings({"A": "1"})
    assert settings["A"] == "1" and settings.get("B", "x") == "x" and len(settings) == 1
    with pytest.raises(KeyError):
        settings["B"]
    with pytest.raises(TypeError):
        settings["A"] = "2"  # type: ignore[index]


def test_int_and_path() -> None:
    settings = Settings({"API_WORKERS": "3", "GIT_DEPTH": "", "BAD": "x1", "DEST": "~/s"})
    assert settings.api_workers == 3
    assert settings.git_depth == 0
    assert settings.dest == Path(os.path.expanduser("~/s"))
    with pytest.raises(ConfigError, match="BAD must be a whole number, not 'x1'"):
        settings.int("BAD")
    with pytest.raises(ConfigError, match="NOPE is not set"):
        settings.path("NOPE")


def test_property_defaults_for_a_bare_dict() -> None:
    settings = Settings({})
    assert settings.database_type == "sqlite"
    assert settings.service_host == settings.host_ip == "127.0.0.1"
    assert settings.service_listen == "127.0.0.1"
    assert settings.region_name == "RegionOne"
    assert settings.git_base == "https://opendev.org"
    assert settings.admin_password is None
    assert settings.dest == defaults.default_dest()
    assert settings.logdir == settings.dest / "logs"
    assert settings.files == settings.data_dir / "files"


def test_default_dest_depends_on_root() -> None:
    assert defaults.default_dest(0, "/home/u") == Path("/opt/stack")
    assert defaults.default_dest(1000, "/home/u") == Path("/home/u/stack")


def test_repo_and_branch() -> None:
    settings = Settings({"GIT_BASE": "http://mirror", "NOVA_BRANCH": "stable/x",
                         "OPENSTACK_PLACEMENT_REPO": "file:///p", "TARGET_BRANCH": "2026.1"})
    assert settings.repo("keystone") == "http://mirror/openstack/keystone.git"
    assert settings.repo("openstack-placement") == "file:///p"
    assert settings.branch("nova") == "stable/x"
    assert settings.branch("glance") == "2026.1"
    assert Settings({}).branch("glance") == "master"


def test_user_settings_and_masked() -> None:
    values = {"ADMIN_PASSWORD": "s3cret", "OS_TOKEN": "t", "KEY_SECRET": "k", "RECLONE": "yes",
              "DEST": "/opt/stack"}
    settings = Settings(values, user={"ADMIN_PASSWORD", "OS_TOKEN", "KEY_SECRET", "RECLONE"})
    assert settings.user_settings() == {k: v for k, v in values.items() if k != "DEST"}
    assert settings.masked() == {"ADMIN_PASSWORD": MASK, "OS_TOKEN": MASK, "KEY_SECRET": MASK,
                                 "RECLONE": "yes"}
    assert "s3cret" not in repr(settings)


def test_moving_only_dest_warns_that_data_dir_stays(tmp_path):
    from stackmagic.config import load_config

    moved = load_config(text=f"DEST={tmp_path}/s\n")
    assert any("DATA_DIR stays" in w and "DATA_DIR=$DEST/data" in w for w in moved.warnings)
    both = load_config(text=f"DEST={tmp_path}/s\nDATA_DIR=$DEST/data\n")
    assert not any("DATA_DIR stays" in w for w in both.warnings)
    assert str(both.settings.data_dir) == f"{tmp_path}/s/data"


# -- validation: what is accepted (the refusals are in tests/test_faults.py) --------------------
@pytest.mark.parametrize("name, value", [
    ("KEYSTONE_SERVICE_PORT", "1"), ("KEYSTONE_SERVICE_PORT", "65535"), ("ECHO_PORT", " 8080 "),
    ("DATABASE_PORT", ""), ("HOST_IP", "10.0.0.5"), ("HOST_IP", "::1"), ("HOST_IP", "0.0.0.0"),
    ("SERVICE_HOST", "localhost"), ("SERVICE_HOST", "ctl-1.example.org"), ("SERVICE_HOST", "fd00::1"),
    ("SERVICE_LISTEN_ADDRESS", "0.0.0.0"), ("GIT_DEPTH", "0"), ("GIT_DEPTH", "1"),
    ("STACK_PARALLEL", "1"), ("RELEASE_SERIES", "2026.2"), ("ADMIN_PASSWORD", "a$b%(c)s 'd' \"e\""),
])
def test_good_values_are_accepted(name, value):
    from stackmagic.config.validate import problems

    assert problems({"HOST_IP": "127.0.0.1", name: value}) == []


def test_every_problem_is_reported_at_once_and_a_default_copy_of_host_ip_only_once():
    from stackmagic.config.validate import problems

    found = problems({"HOST_IP": "nope", "SERVICE_HOST": "nope", "SERVICE_LISTEN_ADDRESS": "nope",
                      "GIT_DEPTH": "-2"})
    assert len(found) == 2
    assert found[0].startswith("HOST_IP='nope' is not an IP address")
    assert found[1].startswith("GIT_DEPTH='-2' is too small")
