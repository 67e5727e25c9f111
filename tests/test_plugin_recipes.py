"""Recipes for projects devstack runs only through a plugin (``devstack_plugin``): the catalog's
recipe answers ``enable_plugin NAME URL [REF]`` without cloning the plugin's bash; URL and REF
become the project's source; the plugin's services are enabled as its settings file would,
except those the localrc disabled; enabling the services without the plugin line works and
warns that devstack would need that line. A fake recipe in a one-test catalog folder."""

from __future__ import annotations

import pytest

from stackmagic.config import load_config
from stackmagic.engine import Engine
from stackmagic.samples import sandbox

RECIPE = '''
from stackmagic.catalog import Project


class FakePlug(Project):
    name = "fakeplug"
    services = {"fp-api": "its API", "fp-eng": "its engine", "fp-extra": "off by default"}
    devstack_plugin = "fakeplug"
    plugin_services = ("fp-api", "fp-eng")
'''


@pytest.fixture
def recipe(catalog_dir):
    (catalog_dir / "fakeplug_recipe.py").write_text(RECIPE)
    from stackmagic import catalog

    catalog._FOUND.clear()
    yield
    catalog._FOUND.clear()


def localrc(tmp_path, *lines: str):
    path = tmp_path / "localrc"
    path.write_text("\n".join([*sandbox(tmp_path, "recipes"), "disable_all_services", *lines, ""]))
    return path


def test_enable_plugin_takes_the_recipe_its_source_and_its_services(recipe, tmp_path):
    cfg = load_config(localrc(tmp_path, "enable_plugin fakeplug file:///nowhere/fakeplug stable/x"))
    assert {"fp-api", "fp-eng"} <= set(cfg.enabled) and "fp-extra" not in cfg.enabled
    assert cfg.settings.repo("fakeplug") == "file:///nowhere/fakeplug"
    assert cfg.settings.branch("fakeplug") == "stable/x"
    engine = Engine(cfg)
    projects, unsupported = engine.projects()       # nothing cloned: the URL does not exist
    assert [p.name for p in projects] == ["fakeplug"] and not unsupported
    from stackmagic.plan import notes

    said = [n for n in notes(engine.ctx, projects) if n.startswith("plugin fakeplug")]
    assert said and "fakeplug_recipe.py" in said[0] and "file:///nowhere/fakeplug" in said[0]


def test_the_localrc_keeps_its_say_over_the_plugins_services_and_source(recipe, tmp_path):
    cfg = load_config(localrc(tmp_path, "enable_plugin fakeplug file:///nowhere/fakeplug",
                              "disable_service fp-eng", "FAKEPLUG_REPO=file:///elsewhere/fakeplug"))
    assert "fp-api" in cfg.enabled and "fp-eng" not in cfg.enabled
    assert cfg.settings.repo("fakeplug") == "file:///elsewhere/fakeplug"


def test_a_plugin_without_a_recipe_is_still_cloned(recipe, tmp_path):
    from stackmagic.git import CloneError

    cfg = load_config(localrc(tmp_path, f"enable_plugin other file://{tmp_path}/missing"))
    with pytest.raises(CloneError, match="other: reading the branches"):
        Engine(cfg).projects()


def test_a_plugins_service_named_without_the_line_runs_and_devstacks_line_is_shown(tmp_path):
    """Real names: the post enables Heat's services directly (it was in devstack's tree then)."""
    from stackmagic.catalog import names, plugin_recipes, runnable_services

    heat = names.lookup("h-api")
    assert heat is not None and heat.status == names.PLUGIN
    cfg = load_config(localrc(tmp_path, "enable_service h-api"))
    said = [w for w in cfg.warnings if "h-api" in w]
    assert said and heat.note in said[0]
    if "h-api" in runnable_services():
        assert "heat" in plugin_recipes() and "stackmagic's own heat recipe" in said[0]
