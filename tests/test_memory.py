"""plan's memory estimate: the enabled services' measured figures added up (stackmagic.memory)."""

from __future__ import annotations

from stackmagic import memory


def test_the_estimate_counts_each_services_processes_and_names_the_unmeasured(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "FIGURES", tmp_path / "memory.txt")
    memory.write({"key": 288.4, "memcached": 23, "n-super-cond": 363, "n-cond-cell1": 361,
                  "q-svc": 246, "neutron-rpc-server": 329, "c-api": 309})
    assert memory.measured()["key"] == 288
    need, unknown = memory.estimate(["key", "n-cond", "q-svc", "tempest", "q-agt"])
    # keystone with its memcached, both conductors for n-cond, the server's workers for q-svc
    assert need == 288 + 23 + 363 + 361 + 246 + 329
    assert unknown == ["q-agt"]                     # tempest starts nothing of its own
    line = memory.note(["key"])
    assert line.startswith("memory: about 0.3 GiB for these services") and "available" in line


def test_a_machine_with_too_little_memory_is_told_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "FIGURES", tmp_path / "memory.txt")
    memory.write({"key": 10 ** 9})                  # more than any machine here has
    assert "less than they need: disable services you do not use" in memory.note(["key"])
    assert memory.note(["g-api"]) is None           # nothing measured for it: no estimate


def test_the_shipped_figures_cover_the_default_set():
    from stackmagic.config import load_config

    need, unknown = memory.estimate(load_config(text="", kind="localrc").enabled)
    assert need > 0 and unknown == []


def test_plan_counts_what_will_run_not_group_or_retired_names(tmp_path):
    """The post's everything localrc names groups (ceilometer, trove) and retired services
    (sahara, ceilometer-collector): they run nothing, so the estimate neither counts them nor
    calls them unmeasured; Zaqar's Redis, which no localrc names, is counted."""
    from stackmagic.plan import notes
    from stackmagic.samples import sample_path, sandbox
    from tests.conftest import engine_for

    localrc = tmp_path / "localrc"
    localrc.write_text("\n".join([*sandbox(tmp_path), f"source {sample_path('blog-everything')}", ""]))
    engine = engine_for(localrc)
    projects, _ = engine.projects()
    (line,) = [n for n in notes(engine.ctx, projects) if n.startswith("memory:")]
    for name in ("sahara", "ceilometer-collector", "ceilometer-api", "trove,", "zaqar-server"):
        assert name not in line
    figures = memory.measured()
    # what comes with the enabled projects counts too: Zaqar's Redis, Ceilometer's Gnocchi
    running = {s for p in projects for s in p.services
               if engine.config.is_service_enabled(s) or (p.when_needed and s in figures)}
    need, _ = memory.estimate(sorted(running))
    assert f"about {need / 1024:.1f} GiB" in line and "redis" in running and figures["redis"] > 0
    assert {"gnocchi-api", "gnocchi-metricd"} <= running
