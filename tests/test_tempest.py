"""Which Tempest release is installed: the release series' constraints pin it, else
DEFAULT_VERSION. Tempest itself runs against the session's shared cloud (tests/test_compute.py:
its venv, tempest.conf and the test-config merge; the smoke, identity and image API tests)."""

from __future__ import annotations

from stackmagic.catalog.tempest import pinned_version


def test_pinned_version_reads_constraints(tmp_path):
    cons = tmp_path / "upper-constraints.txt"
    cons.write_text("oslo.config===10.0.0\nTempest===46.1.0 ; python_version>='3.10'\n")
    assert pinned_version(cons, "tempest") == "46.1.0"
    assert pinned_version(cons, "oslo_config") == "10.0.0"
    assert pinned_version(cons, "stestr") is None
    assert pinned_version(None, "tempest") is None
