"""Glance, the Image service (devstack's lib/glance).

configure: glance-api.conf (database, keystone_authtoken, a file store under ``$DATA_DIR/glance``,
the staging and tasks stores) and the paste ini from the source tree; init: db_sync; start:
``glance.wsgi.api:application`` under gunicorn; accounts: the glance service user and the image
endpoints; data: the images of ``IMAGE_URLS`` (http(s) and file://, cached under ``FILES``), or,
when none is reachable, a small qcow2 built here with qemu-img (raw without it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from stackmagic import identity, images
from stackmagic.catalog.base import Process, Project
from stackmagic.catalog.database import Database
from stackmagic.catalog.keystone import authtoken
from stackmagic.catalog.wsgi import gunicorn, shim

if TYPE_CHECKING:
    from stackmagic.context import Context

APP = "glance.wsgi.api:application"
PORT = 9292


class Glance(Project):
    name = "glance"
    services = {"g-api": "Image API"}
    repo = "openstack/glance"
    pypi = "glance"
    requirements = ("gunicorn",)
    uses_database = True
    uses_keystone = True

    def conf(self, ctx: "Context") -> Path:
        return ctx.settings.path("GLANCE_API_CONF")

    def config_files(self, ctx: "Context") -> list[Path]:
        return [self.conf(ctx)]

    def data_dir(self, ctx: "Context") -> Path:
        return ctx.settings.data_dir / "glance"

    def port(self, ctx: "Context") -> int:
        return ctx.settings.int("GLANCE_SERVICE_PORT", PORT)

    def packages(self, ctx: "Context") -> tuple[str, ...]:
        import os

        return ("qemu-utils",) if os.geteuid() == 0 else ()

    def configure(self, ctx: "Context") -> None:
        conf, s, data = self.conf(ctx), ctx.settings, self.data_dir(ctx)
        ctx.iniset(conf, "DEFAULT", "debug", s.bool("ENABLE_DEBUG_LOG_LEVEL", True))
        ctx.iniset(conf, "DEFAULT", "enabled_backends", "fast:file")
        ctx.iniset(conf, "DEFAULT", "image_cache_dir", data / "cache")
        ctx.iniset(conf, "database", "connection", Database.url(ctx, "glance"))
        ctx.iniset(conf, "paste_deploy", "flavor", "keystone")
        ctx.iniset(conf, "glance_store", "default_backend", "fast")
        ctx.iniset(conf, "fast", "filesystem_store_datadir", data / "images")
        ctx.iniset(conf, "os_glance_staging_store", "filesystem_store_datadir", data / "os_glance_staging_store")
        ctx.iniset(conf, "os_glance_tasks_store", "filesystem_store_datadir", data / "os_glance_tasks_store")
        ctx.iniset(conf, "oslo_concurrency", "lock_path", data / "locks")
        ctx.iniset(conf, "oslo_policy", "enforce_scope", s.bool("GLANCE_ENFORCE_SCOPE", True))
        ctx.iniset(conf, "oslo_policy", "enforce_new_defaults", s.bool("GLANCE_ENFORCE_SCOPE", True))
        authtoken(ctx, conf, "glance")
        src = self.source_dir(ctx) / "etc"
        for name in ("glance-api-paste.ini", "schema-image.json"):
            if (src / name).exists():
                shutil.copyfile(src / name, conf.parent / name)
        shim(ctx, "glance", APP)

    def init(self, ctx: "Context") -> None:
        Database.create(ctx, "glance")
        ctx.run(ctx.venv.bin("glance-manage"), "--config-file", self.conf(ctx), "db_sync",
                cwd=self.conf(ctx).parent)
        metadefs = self.source_dir(ctx) / "etc" / "metadefs"
        if metadefs.is_dir():       # the metadata definitions devstack loads (tempest tests them)
            ctx.run(ctx.venv.bin("glance-manage"), "--config-file", self.conf(ctx), "db",
                    "load_metadefs", "--path", metadefs, cwd=self.conf(ctx).parent)

    def env(self, ctx: "Context") -> dict[str, str]:
        return {"OS_GLANCE_CONFIG_DIR": str(self.conf(ctx).parent)}

    def processes(self, ctx: "Context") -> Iterable[Process]:
        if ctx.config.is_service_enabled("g-api"):
            yield gunicorn(ctx, "g-api", "glance", APP, self.port(ctx), env=self.env(ctx))

    def accounts(self, ctx: "Context") -> None:
        identity.apply(ctx, identity.service_user(ctx, "glance")
                       + identity.endpoints(ctx, "glance", "image", "Glance Image Service",
                                            ctx.url(self.port(ctx))))

    def data(self, ctx: "Context") -> None:
        images.upload_all(ctx)

    def cleanup(self, ctx: "Context") -> None:
        Database.drop(ctx, "glance")
        shutil.rmtree(self.data_dir(ctx), ignore_errors=True)
        shutil.rmtree(self.conf(ctx).parent, ignore_errors=True)
