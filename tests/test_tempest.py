"""Which Tempest release is installed: the release series' constraints pin it, else
DEFAULT_VERSION; what devstack's TEMPEST_PLUGINS adds to its venv. Tempest itself runs against the session's shared cloud (tests/test_compute.py:
its venv, tempest.conf and the test-config merge; the smoke, identity and image API tests)."""

from __future__ import annotations

import pytest

from stackmagic.catalog.tempest import pinned_version
from stackmagic.config import load_config
from stackmagic.errors import ConfigError
from stackmagic.plan import notes
from stackmagic.samples import sandbox


def test_pinned_version_reads_constraints(tmp_path):
    cons = tmp_path / "upper-constraints.txt"
    cons.write_text("oslo.config===10.0.0\nTempest===46.1.0 ; python_version>='3.10'\n")
    assert pinned_version(cons, "tempest") == "46.1.0"
    assert pinned_version(cons, "oslo_config") == "10.0.0"
    assert pinned_version(cons, "stestr") is None
    assert pinned_version(None, "tempest") is None


def test_tempest_plugins_go_into_its_venv_and_a_list_that_does_not_parse_is_refused(tmp_path):
    from stackmagic.engine import Engine

    def plan_notes(*lines):
        conf = tmp_path / "localrc"
        conf.write_text("\n".join([*sandbox(tmp_path, "tempest"), "disable_all_services",
                                   "enable_service key tempest", *lines, ""]))
        engine = Engine(load_config(conf))
        return [n for n in notes(engine.ctx, engine.projects()[0]) if n.startswith("tempest:")]

    assert plan_notes() == [] and plan_notes("TEMPEST_PLUGINS=0") == []
    assert plan_notes("TEMPEST_PLUGINS='heat-tempest-plugin /opt/stack/x-tempest-plugin'") == [
        "tempest: TEMPEST_PLUGINS installs heat-tempest-plugin /opt/stack/x-tempest-plugin into its venv"]
    with pytest.raises(ConfigError, match="TEMPEST_PLUGINS=.*quote it"):
        plan_notes("TEMPEST_PLUGINS='heat-tempest-plugin \"x'")
