"""Placement, the resource inventory API Nova schedules with (devstack's lib/placement).

configure: placement.conf (placement_database, keystone auth); init: ``placement-manage db sync``;
start: ``placement.wsgi.api:application`` under gunicorn; accounts: the placement service user
and its endpoints. Everything is the shared API-service shape (:mod:`.api_service`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackmagic.catalog.api_service import ApiService
from stackmagic.verify import Listing

if TYPE_CHECKING:
    from stackmagic.context import Context


class Placement(ApiService):
    name = "placement"
    group = "placement"
    services = {"placement-api": "Placement API"}
    repo = "openstack/placement"
    pypi = "openstack-placement"
    api, app = "placement-api", "placement.wsgi.api:application"
    conf_setting, port_setting, default_port = "PLACEMENT_CONF", "PLACEMENT_SERVICE_PORT", 8778
    database, database_section = "placement", "placement_database"
    manage, db_sync = "placement-manage", ("db", "sync")
    scope_setting = "PLACEMENT_ENFORCE_SCOPE"
    service_type, service_description = "placement", "Placement Service"

    def configure(self, ctx: "Context") -> None:
        super().configure(ctx)
        ctx.iniset(self.conf(ctx), "api", "auth_strategy", "keystone")

    def verify_checks(self, ctx: "Context") -> list[Listing]:
        return [Listing("resource_providers", "placement.resource_providers")]

    def tempest_options(self, ctx: "Context") -> list[tuple[str, str, str]]:
        microversion = ctx.settings.get("TEMPEST_PLACEMENT_MAX_MICROVERSION") or "latest"
        return [("placement", "max_microversion", microversion), *super().tempest_options(ctx)]
