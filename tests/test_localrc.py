"""localrc evaluation with real bash: devstack's service functions, ordering, errors."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackmagic.config import defaults, load_config
from stackmagic.errors import ConfigError
from stackmagic.samples import list_samples, sample_path

DEFAULT = list(defaults.DEFAULT_ENABLED_SERVICES)


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@dataclass
class Workdir:
    """The test's directory; files the test itself writes update the expected listing."""

    path: Path
    before: dict[str, tuple[int, int]]

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def write(self, name: str, text: str) -> Path:
        (self.path / name).write_text(text)
        self.before = _listing(self.path)
        return self.path / name


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workdir]:
    """The current directory for the test; asserts load_config wrote nothing in it."""
    monkeypatch.chdir(tmp_path)
    work = Workdir(tmp_path, _listing(tmp_path))
    yield work
    assert _listing(tmp_path) == work.before


def rc(text: str, **kwargs: object):  # noqa: ANN201 - Config
    return load_config(text=text, kind="localrc", **kwargs)  # type: ignore[arg-type]


# -- service selection ---------------------------------------------------------------------


def test_default_services_when_unset(workdir: Workdir) -> None:
    assert rc("").enabled == DEFAULT


def test_enable_service_appends_to_the_default(workdir: Workdir) -> None:
    assert rc("enable_service s-proxy").enabled == DEFAULT + ["s-proxy"]


def test_setting_enabled_services_replaces_the_default(workdir: Workdir) -> None:
    assert rc("ENABLED_SERVICES=key,g-api\nenable_service placement-api").enabled == [
        "key", "g-api", "placement-api"]


def test_environment_enabled_services_replaces_the_default(workdir: Workdir) -> None:
    config = rc("enable_service g-api", environ={"ENABLED_SERVICES": "key"})
    assert config.enabled == ["key", "g-api"]


def test_enable_twice_and_group_names_dedupe(workdir: Workdir) -> None:
    config = rc("disable_all_services\nenable_service key g-api g-api\nenable_service glance key")
    assert config.enabled == ["key", "g-api"]


def test_disable_service_exact_and_remembered(workdir: Workdir) -> None:
    config = rc("disable_service n-api rabbit")
    assert "n-api" not in config.enabled and "n-api-meta" in config.enabled
    assert "rabbit" not in config.enabled
    assert config.disabled == ["n-api", "rabbit"]


def test_disable_group_name_removes_nothing_but_is_remembered(workdir: Workdir) -> None:
    config = rc("disable_service nova\nenable_service nova")
    assert config.enabled == DEFAULT
    assert config.disabled == ["nova"]
    assert len(config.warnings) == 1


def test_enable_after_disable_is_refused_with_a_warning(workdir: Workdir) -> None:
    config = rc("disable_service tempest\n\nenable_service tempest")
    assert "tempest" not in config.enabled
    assert config.warnings == [
        "localrc, line 3: Attempt to enable_service tempest when it has been disabled"]


def test_negation_removes_exact_names(workdir: Workdir) -> None:
    config = rc("ENABLED_SERVICES+=,-rabbit,-n-api")
    assert "rabbit" not in config.enabled and "n-api" not in config.enabled
    assert "n-api-meta" in config.enabled
    assert not any(name.startswith("-") for name in config.enabled)


def test_disable_all_services(workdir: Workdir) -> None:
    config = rc("disable_all_services\nenable_service key")
    assert config.enabled == ["key"]
    assert config.is_service_enabled("keystone") and not config.is_service_enabled("nova")


def test_direct_edit_over_disable_service_is_an_error(workdir: Workdir) -> None:
    with pytest.raises(ConfigError, match="ENABLED_SERVICES lists 'rabbit', which disable_servi"):
        rc("disable_service rabbit\nENABLED_SERVICES+=,rabbit")


# -- shell semantics -----------------------------------------------------------------------


def test_later_lines_use_earlier_variables_and_defaults(workdir: Workdir) -> None:
    config = rc('ADMIN_PASSWORD=pw\nDATABASE_PASSWORD=$ADMIN_PASSWORD\n'
                'SWIFT_DATA_DIR=$DATA_DIR/swift\nX=${UNSET_THING:-fallback}')
    settings = config.settings
    assert settings.database_password == "pw"
    assert settings["SWIFT_DATA_DIR"] == f"{settings.data_dir}/swift"
    assert settings["X"] == "fallback"


def test_post_defaults_build_on_user_values(workdir: Workdir) -> None:
    settings = rc("DEST=/srv/st\nHOST_IP=10.0.0.5").settings
    assert settings.logdir == Path("/srv/st/logs")
    assert settings.service_host == "10.0.0.5"
    assert settings["NOVA_CONF"] == f"{settings.data_dir}/etc/nova/nova.conf"
    # as in devstack: DATA_DIR was set before the localrc, so DEST alone does not move it
    assert settings.data_dir == defaults.default_dest() / "data"


def test_if_and_quoting(workdir: Workdir) -> None:
    text = ('A="two words"\nB=\'$not expanded\'\nC="it\'s \\"q\\""\n'
            'if [[ $A == two* ]]; then D=yes; else D=no; fi\n')
    settings = rc(text).settings
    assert settings["A"] == "two words" and settings["B"] == "$not expanded"
    assert settings["C"] == 'it\'s "q"' and settings.bool("D")


def test_source_relative_file(workdir: Workdir) -> None:
    workdir.write("extra.sh", "EXTRA=from-extra\nenable_service s-proxy\n")
    workdir.write("localrc", "source ./extra.sh\nAFTER=$EXTRA\n")
    config = load_config(workdir / "localrc")
    assert config.settings["AFTER"] == "from-extra"
    assert "s-proxy" in config.enabled
    assert config.source == workdir / "localrc"


def test_environment_is_visible_and_counts_as_user(workdir: Workdir) -> None:
    settings = rc("B=$A", environ={"A": "x"}).settings
    assert settings.user_settings() == {"A": "x", "B": "x"}
    assert "HOME" not in settings and "PATH" not in settings


def test_user_settings_only_what_the_user_changed(workdir: Workdir) -> None:
    settings = rc(f"DEST={defaults.default_dest()}\nRECLONE=yes\nADMIN_PASSWORD=pw").settings
    assert settings.user_settings() == {"RECLONE": "yes", "ADMIN_PASSWORD": "pw"}
    assert settings.masked() == {"RECLONE": "yes", "ADMIN_PASSWORD": "********"}


def test_localrc_output_does_not_disturb(workdir: Workdir) -> None:
    assert rc("echo hello\necho err >&2\nprintf 'V\\0X\\0y\\0'\nA=1").settings["A"] == "1"


# -- plugins -------------------------------------------------------------------------------


def test_enable_plugin_default_ref_and_unknown_service_is_a_warning(workdir: Workdir) -> None:
    config = rc("enable_plugin foo https://example.org/foo\n"
                "enable_plugin bar https://example.org/bar stable/x\nenable_service foo-api")
    assert [(p.name, p.url, p.ref) for p in config.plugins] == [
        ("foo", "https://example.org/foo", "master"), ("bar", "https://example.org/bar", "stable/x")]
    [warning] = config.warnings
    assert warning.startswith("localrc, line 3: unknown service 'foo-api'")
    assert warning.endswith("(left in, a plugin may define it)")


def test_enable_plugin_twice(workdir: Workdir) -> None:
    with pytest.raises(ConfigError) as error:
        rc("A=1\nenable_plugin foo https://x/foo\nenable_plugin foo https://x/foo")
    assert error.value.line == 3 and error.value.file == "localrc"
    assert "Plugin attempted to be enabled twice: foo" in str(error.value)


def test_enable_plugin_without_url(workdir: Workdir) -> None:
    with pytest.raises(ConfigError, match=r"localrc, line 2: enable_plugin foo has no git URL"):
        rc("\nenable_plugin foo")


# -- errors --------------------------------------------------------------------------------


def test_unknown_service_with_suggestion(workdir: Workdir) -> None:
    with pytest.raises(ConfigError) as error:
        rc("# a comment with n-apii\nA=1\nenable_service n-apii")
    assert error.value.line == 3
    assert "unknown service 'n-apii'; did you mean: n-api" in str(error.value)


def test_retired_names_warn(workdir: Workdir) -> None:
    config = rc("enable_service n-net g-reg")
    assert [w.split(":")[1].strip() for w in config.warnings] == ["n-net (retired)",
                                                                  "g-reg (retired)"]


def test_syntax_error_names_file_and_line(workdir: Workdir) -> None:
    workdir.write("localrc", "A=1\nif true; then\n  B=2\nfi fi\n")
    with pytest.raises(ConfigError) as error:
        load_config(workdir / "localrc")
    assert error.value.file == str(workdir / "localrc") and error.value.line == 4
    assert "syntax error near unexpected token" in str(error.value)


def test_syntax_error_in_sourced_file(workdir: Workdir) -> None:
    workdir.write("bad.sh", "X=(\n")
    with pytest.raises(ConfigError) as error:
        rc("source bad.sh")
    assert error.value.file == str(workdir / "bad.sh")


def test_exit_is_an_error(workdir: Workdir) -> None:
    with pytest.raises(ConfigError, match="must not call exit"):
        rc("A=1\nexit 0")


def _processes_with(argument: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and argument in (entry / "cmdline").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_endless_localrc_is_stopped_with_its_children(workdir: Workdir) -> None:
    token = f"{300 + os.getpid() % 1000}.{time.monotonic_ns() % 10**6}"
    with pytest.raises(ConfigError, match=r"still running after 0.5 s"):
        rc(f"sleep {token} &\nwhile :; do :; done", timeout=0.5)
    deadline = time.monotonic() + 5
    while _processes_with(token.encode()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(token.encode()) == []


# -- samples -------------------------------------------------------------------------------


def test_samples_are_listed() -> None:
    samples = list_samples()
    assert set(samples) >= {"quickstart", "minimal", "blog-neutron", "blog-everything"}
    assert all(path.is_file() and description for path, description in samples.values())
    with pytest.raises(Exception, match="no sample named 'nope'"):
        sample_path("nope")


def test_quickstart_and_minimal(workdir: Workdir) -> None:
    quick = load_config(sample_path("quickstart"))
    assert quick.enabled == ["key", "g-api", "placement-api"] and quick.warnings == []
    assert quick.settings.bool("MIRROR_FROM_PYPI") and quick.settings.database_type == "sqlite"
    assert load_config(sample_path("minimal")).enabled == ["key"]


def test_blog_neutron(workdir: Workdir) -> None:
    config = load_config(sample_path("blog-neutron"))
    ovn = ["ovn-controller", "ovn-northd", "q-ovn-agent"]
    # the agents ask for the Open vSwitch layout: the OVN services of the defaults are set aside
    assert config.layout == "openvswitch"
    assert config.enabled == [s for s in DEFAULT if s not in ovn] + ["q-agt", "q-dhcp", "q-l3", "q-meta"]
    assert sorted(config.set_aside) == ovn and all("q-agt" in why for why in config.set_aside.values())
    assert config.disabled == ["n-net"] and config.warnings == []


def test_the_default_layout_is_ovn(workdir: Workdir) -> None:
    config = load_config(text="", kind="localrc")
    assert config.layout == "ovn" and config.set_aside == {}
    assert config.is_service_enabled("ovn-northd", "ovn-controller", "q-ovn-agent")
    assert load_config(text="Q_AGENT=openvswitch\nenable_service q-agt\n", kind="localrc").layout == "openvswitch"


def test_lib_neutron_names_run_as_the_q_names(workdir: Workdir) -> None:
    config = load_config(text="enable_service neutron-agent neutron-dhcp neutron-l3 "
                         "neutron-metadata-agent q-agt\n", kind="localrc")
    # devstack's `is_service_enabled q-agt neutron-agent`: one service, the agent layout
    assert config.layout == "openvswitch"
    assert [s for s in config.enabled if s.startswith(("q-", "neutron-"))] == [
        "q-svc", "q-agt", "q-dhcp", "q-l3", "q-meta"]
    assert config.renamed == {"neutron-agent": ("q-agt",), "neutron-dhcp": ("q-dhcp",),
                              "neutron-l3": ("q-l3",), "neutron-metadata-agent": ("q-meta",)}
    assert "q-ovn-agent" in config.set_aside


@pytest.mark.parametrize(("text", "says"), [
    ("Q_AGENT=ovn\nenable_service q-agt q-dhcp\n", "Remove Q_AGENT=ovn"),
    ("Q_AGENT=openvswitch\n", "add enable_service q-agt"),
    ("enable_service q-dhcp\n", "add enable_service q-agt"),
    ("Q_AGENT=linuxbridge\n", "Q_AGENT=ovn (devstack's default) or Q_AGENT=openvswitch"),
    ("Q_ML2_PLUGIN_MECHANISM_DRIVERS=ovn\nenable_service q-agt\n", "set it to openvswitch"),
])
def test_layouts_that_contradict_themselves_say_what_to_change(workdir: Workdir, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_config(text=text, kind="localrc")


def test_blog_everything(workdir: Workdir) -> None:
    config = load_config(sample_path("blog-everything"))
    for name in ("s-proxy", "tr-api", "ceilometer-acompute", "sahara", "zaqar-wsgi", "zaqar-websocket"):
        assert name in config.enabled
    assert "zaqar-server" not in config.enabled         # it runs as the two that replaced it
    assert not config.is_service_enabled("heat", "h-eng")
    assert config.settings.reclone
    assert config.settings["SCREEN_HARDSTATUS"].startswith("%{= .b}")
    # each warning names its service first ("sahara (retired): ...", "tr-api runs from ...")
    flagged = {w.split(": ")[1].split()[0] for w in config.warnings}
    assert {"sahara", "zaqar-server", "tr-api", "ceilometer-api"} <= flagged
    assert "s-proxy" not in flagged
