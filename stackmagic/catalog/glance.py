"""Glance, the Image service (devstack's lib/glance).

configure: glance-api.conf (database, keystone_authtoken, a file store under ``$DATA_DIR/glance``,
the staging and tasks stores) and the paste ini from the source tree; init: db_sync and the
metadata definitions; start: ``glance.wsgi.api:application`` under gunicorn; accounts: the glance
service user and the image endpoints; data: the images of ``IMAGE_URLS`` (http(s) and file://,
cached under ``FILES``), or, when none is reachable, a small qcow2 built here with qemu-img (raw
without it). The API-service shape is shared (:mod:`.api_service`); this module says the rest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from stackmagic import images
from stackmagic.catalog.api_service import ApiService
from stackmagic.catalog.ceilometer import emit_notifications
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context


class Glance(ApiService):
    name = "glance"
    group = "glance"
    services = {"g-api": "Image API"}
    repo = "openstack/glance"
    pypi = "glance"
    api, app = "g-api", "glance.wsgi.api:application"
    conf_setting, port_setting, default_port = "GLANCE_API_CONF", "GLANCE_SERVICE_PORT", 9292
    database, manage, db_sync = "glance", "glance-manage", ("db_sync",)
    scope_setting = "GLANCE_ENFORCE_SCOPE"
    service_type, service_description = "image", "Glance Image Service"

    def data_dir(self, ctx: "Context") -> Path:
        return ctx.settings.data_dir / "glance"

    def packages(self, ctx: "Context") -> tuple[str, ...]:
        return ("qemu-utils",) if os.geteuid() == 0 else ()

    def configure(self, ctx: "Context") -> None:
        super().configure(ctx)
        conf, data = self.conf(ctx), self.data_dir(ctx)
        ctx.iniset(conf, "DEFAULT", "enabled_backends", "fast:file")
        ctx.iniset(conf, "DEFAULT", "image_cache_dir", data / "cache")
        ctx.iniset(conf, "paste_deploy", "flavor", "keystone")
        ctx.iniset(conf, "glance_store", "default_backend", "fast")
        ctx.iniset(conf, "fast", "filesystem_store_datadir", data / "images")
        ctx.iniset(conf, "os_glance_staging_store", "filesystem_store_datadir", data / "os_glance_staging_store")
        ctx.iniset(conf, "os_glance_tasks_store", "filesystem_store_datadir", data / "os_glance_tasks_store")
        ctx.iniset(conf, "oslo_concurrency", "lock_path", data / "locks")
        emit_notifications(ctx, conf)
        src = self.source_dir(ctx) / "etc"
        for name in ("glance-api-paste.ini", "schema-image.json"):
            if (src / name).exists():
                shutil.copyfile(src / name, conf.parent / name)

    def init(self, ctx: "Context") -> None:
        super().init(ctx)
        metadefs = self.source_dir(ctx) / "etc" / "metadefs"
        if metadefs.is_dir():       # the metadata definitions devstack loads (tempest tests them)
            self.run_manage(ctx, "db", "load_metadefs", "--path", str(metadefs))

    def data(self, ctx: "Context") -> None:
        images.upload_all(ctx)

    def verify_checks(self, ctx: "Context") -> list[Listing]:
        return [Listing("images", "image.images", ("name", "status", "size", "checksum", "disk_format"),
                        show="{name} ({status}, {size} bytes, {disk_format})")]

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        from stackmagic.catalog.tempest import image_options

        return [*image_options(ctx), *super().tempest_options(ctx)]

    def cleanup(self, ctx: "Context") -> None:
        super().cleanup(ctx)
        shutil.rmtree(self.data_dir(ctx), ignore_errors=True)
