"""local.conf: meta-sections, merges, localrc beside local.conf, and every header error."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackmagic.config import Merge, load_config
from stackmagic.config.localconf import has_meta_sections, split
from stackmagic.errors import ConfigError
from tests.test_localrc import Workdir, workdir  # noqa: F401 - the fixture


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def conf(text: str, **kwargs: object):  # noqa: ANN201 - Config
    return load_config(text=text, **kwargs)  # type: ignore[arg-type]


def expect_error(text: str, directory: Path) -> ConfigError:
    before = _listing(directory)
    with pytest.raises(ConfigError) as error:
        conf(text)
    assert _listing(directory) == before
    return error.value


LOCAL_CONF = """\
# text before the first header is ignored
[[local|localrc]]
ADMIN_PASSWORD=pw
disable_all_services
enable_service key g-api n-api

[[post-config|$NOVA_CONF]]
[DEFAULT]
debug = True
my_ip = $HOST_IP
[filter_scheduler]
enabled_filters = A
enabled_filters = B

[[post-config|${GLANCE_API_CONF}]]
[DEFAULT]
workers=1

[[post-config|$NOVA_CONF]]
[DEFAULT]
verbose = yes

[[test-config|$TEMPEST_CONFIG]]
[compute]
fixed_network_name = private
"""


def test_auto_kind_detects_meta_sections() -> None:
    assert has_meta_sections("[[local|localrc]]\nA=1")
    assert has_meta_sections("[[ post-config | $NOVA_CONF ]]")
    assert not has_meta_sections("[[ -f x ]] && source x\n[[ $A == b || $C == d ]]")


def test_localrc_block_keeps_local_conf_line_numbers() -> None:
    parts = split("[[post-config|$X]]\n[a]\nb=c\n[[local|localrc]]\nA=1\n")
    assert parts.localrc.splitlines() == ["", "", "", "", "A=1"]
    assert parts.has_localrc


def test_merges_in_order_with_expansion_and_multi_line() -> None:
    config = conf(LOCAL_CONF)
    nova = config.settings.path("NOVA_CONF")
    assert nova == config.settings.data_dir / "etc" / "nova" / "nova.conf"
    glance = config.settings.path("GLANCE_API_CONF")
    tempest = config.settings.path("TEMPEST_CONFIG")
    assert config.enabled == ["key", "g-api", "n-api"]
    assert config.merges == [
        Merge("post-config", nova, "DEFAULT", "debug", "True", 9, "$NOVA_CONF"),
        Merge("post-config", nova, "DEFAULT", "my_ip", "127.0.0.1", 10, "$NOVA_CONF"),
        Merge("post-config", nova, "filter_scheduler", "enabled_filters", ("A", "B"), 12,
              "$NOVA_CONF"),
        Merge("post-config", glance, "DEFAULT", "workers", "1", 17, "${GLANCE_API_CONF}"),
        Merge("post-config", nova, "DEFAULT", "verbose", "yes", 21, "$NOVA_CONF"),
        Merge("test-config", tempest, "compute", "fixed_network_name", "private", 25,
              "$TEMPEST_CONFIG"),
    ]
    assert config.merges[2].multi and not config.merges[0].multi


def test_repeated_blocks_concatenate_into_one_multi_option() -> None:
    config = conf("[[post-config|/etc/x.conf]]\n[a]\nk = 1\n[[extra|/etc/y]]\n[b]\nz=0\n"
                  "[[post-config|/etc/x.conf]]\n[a]\nk = 2\n")
    assert [(m.file, m.key, m.value) for m in config.merges] == [
        (Path("/etc/x.conf"), "k", ("1", "2")), (Path("/etc/y"), "z", "0")]


def test_user_value_in_file_part_and_q_plugin_form() -> None:
    config = conf("[[local|localrc]]\nMY_CONF=/srv/my.conf\n[[post-config|$MY_CONF]]\n[s]\nk=v\n"
                  "[[post-config|/$Q_PLUGIN_CONF_FILE]]\n[ml2]\nx=y\n")
    assert config.merges[0].file == Path("/srv/my.conf")
    assert config.merges[1].file == config.settings.path("Q_PLUGIN_CONF_FILE")


def test_localrc_beside_local_conf_wins_with_warning(workdir: Workdir) -> None:
    workdir.write("local.conf",
                  "[[local|localrc]]\nFROM=localconf\n[[post-config|$NOVA_CONF]]\n[DEFAULT]\na=b\n")
    workdir.write("localrc", "FROM=localrc\n")
    for config in (load_config(workdir.path), load_config(workdir / "local.conf"), load_config()):
        assert config.settings["FROM"] == "localrc"
        assert [m.key for m in config.merges] == ["a"]
        assert config.source == workdir / "local.conf"
        assert any("using localrc, as devstack does" in w for w in config.warnings)


def test_directory_with_only_localrc(workdir: Workdir) -> None:
    workdir.write("localrc", "A=1\n")
    assert load_config(workdir.path).settings["A"] == "1"


def test_empty_directory_is_an_error(workdir: Workdir) -> None:
    with pytest.raises(ConfigError, match="no local.conf or localrc in"):
        load_config()


def test_syntax_error_line_is_the_local_conf_line(tmp_path: Path) -> None:
    path = tmp_path / "local.conf"
    path.write_text("[[post-config|/etc/a]]\n[s]\nk=v\n[[local|localrc]]\nA=1\nif then\n")
    before = _listing(tmp_path)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert (error.value.file, error.value.line) == (str(path), 6)
    assert _listing(tmp_path) == before


def test_unknown_service_line_in_local_conf(tmp_path: Path) -> None:
    error = expect_error("[[local|localrc]]\nA=1\nenable_service g-apii\n", tmp_path)
    assert error.line == 3 and "unknown service 'g-apii'; did you mean: g-api" in str(error)


def test_header_with_spaces(tmp_path: Path) -> None:
    error = expect_error("[[local|localrc]]\nA=1\n[[ post-config | $NOVA_CONF ]]\n[a]\nb=c\n",
                         tmp_path)
    assert error.line == 3
    assert "write [[post-config|$NOVA_CONF]] instead of [[ post-config | $NOVA_CONF ]]" in str(
        error)


def test_file_part_with_unset_variable_is_skipped_with_a_warning(tmp_path: Path) -> None:
    # devstack's merge_config_group warns "unknown config file specification" and goes on
    config = conf("[[local|localrc]]\nA=1\n[[post-config|$NOVA_CONFF]]\n[a]\nb=c\n"
                  "[[post-config|/etc/x.conf]]\n[a]\nd=e\n")
    assert [(m.file, m.key) for m in config.merges] == [(Path("/etc/x.conf"), "d")]
    (warning,) = [w for w in config.warnings if "NOVA_CONFF" in w]
    assert "line 3" in warning and "$NOVA_CONFF is not set" in warning and "skipped" in warning


def test_file_part_that_expands_to_nothing_is_skipped_with_a_warning() -> None:
    config = conf("[[post-config|$(true)]]\n[a]\nb=c\n")
    assert config.merges == []
    assert any("expands to an empty file name" in w and "skipped" in w for w in config.warnings)


def test_file_part_with_unset_variable_and_a_path_is_an_error(tmp_path: Path) -> None:
    # devstack would write /nova.conf; that is never what was meant
    error = expect_error("[[post-config|$NOVA_DIRR/nova.conf]]\n[a]\nb=c\n", tmp_path)
    assert error.line == 1 and "$NOVA_DIRR, which is not set" in str(error)


def test_unknown_phase(tmp_path: Path) -> None:
    error = expect_error("[[post-confg|/etc/x]]\n[a]\nb=c\n", tmp_path)
    assert error.line == 1 and "unknown phase 'post-confg'" in str(error)
    assert "post-config" in str(error)


def test_option_outside_section_and_garbage_line(tmp_path: Path) -> None:
    config = conf("[[extra|/etc/x]]\nk=v\n[a]\nkk=vv\n")
    assert [(m.section, m.key, m.value) for m in config.merges] == [("a", "kk", "vv")]
    (warning,) = [w for w in config.warnings if "before any [section]" in w]
    assert "line 2" in warning and "'k'" in warning and "skipped" in warning
    error = expect_error("[[extra|/etc/x]]\n[a]\njust words\n", tmp_path)
    assert error.line == 3 and "expected 'key = value'" in str(error)


def test_value_bash_cannot_expand(tmp_path: Path) -> None:
    error = expect_error('[[extra|/etc/x]]\n[a]\nk = a"b\n', tmp_path)
    assert error.line == 3 and "cannot expand the value of k" in str(error)
