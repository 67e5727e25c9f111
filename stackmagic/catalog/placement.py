"""Placement, the resource inventory API Nova schedules with (devstack's lib/placement).

configure: placement.conf (placement_database, keystone auth); init: ``placement-manage db sync``;
start: ``placement.wsgi.api:application`` under gunicorn; accounts: the placement service user
and its endpoints.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity
from stackmagic.catalog.base import Process, Project
from stackmagic.catalog.database import Database
from stackmagic.catalog.keystone import authtoken
from stackmagic.catalog.wsgi import gunicorn, shim

if TYPE_CHECKING:
    from stackmagic.context import Context

APP = "placement.wsgi.api:application"
PORT = 8778


class Placement(Project):
    name = "placement"
    services = {"placement-api": "Placement API"}
    repo = "openstack/placement"
    pypi = "openstack-placement"
    requirements = ("gunicorn",)
    uses_database = True
    uses_keystone = True

    def conf(self, ctx: "Context") -> Path:
        return ctx.settings.path("PLACEMENT_CONF")

    def config_files(self, ctx: "Context") -> list[Path]:
        return [self.conf(ctx)]

    def port(self, ctx: "Context") -> int:
        return ctx.settings.int("PLACEMENT_SERVICE_PORT", PORT)

    def configure(self, ctx: "Context") -> None:
        conf, s = self.conf(ctx), ctx.settings
        ctx.iniset(conf, "DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True))
        ctx.iniset(conf, "placement_database", "connection", Database.url(ctx, "placement"))
        ctx.iniset(conf, "api", "auth_strategy", "keystone")
        ctx.iniset(conf, "oslo_policy", "enforce_scope", s.bool("PLACEMENT_ENFORCE_SCOPE", True))
        ctx.iniset(conf, "oslo_policy", "enforce_new_defaults", s.bool("PLACEMENT_ENFORCE_SCOPE", True))
        authtoken(ctx, conf, "placement")
        shim(ctx, "placement", APP)

    def init(self, ctx: "Context") -> None:
        Database.create(ctx, "placement")
        ctx.run(ctx.venv.bin("placement-manage"), "--config-file", self.conf(ctx), "db", "sync",
                env=self.env(ctx), cwd=self.conf(ctx).parent)

    def env(self, ctx: "Context") -> dict[str, str]:
        return {"OS_PLACEMENT_CONFIG_DIR": str(self.conf(ctx).parent)}

    def processes(self, ctx: "Context") -> Iterable[Process]:
        if ctx.config.is_service_enabled("placement-api"):
            yield gunicorn(ctx, "placement-api", "placement", APP, self.port(ctx), env=self.env(ctx))

    def accounts(self, ctx: "Context") -> None:
        identity.apply(ctx, identity.service_user(ctx, "placement")
                       + identity.endpoints(ctx, "placement", "placement", "Placement Service",
                                            ctx.url(self.port(ctx))))

    def cleanup(self, ctx: "Context") -> None:
        Database.drop(ctx, "placement")
        shutil.rmtree(self.conf(ctx).parent, ignore_errors=True)
