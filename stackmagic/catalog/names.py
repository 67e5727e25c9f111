"""Every service short name devstack knows today or knew in the past, and what it is.

``ENABLED_SERVICES`` is a list of short names (``n-api``, ``q-svc``, ``g-reg`` ...). Some run a
process, some are group names (``nova`` stands for every ``n-*``), some now come from a devstack
plugin, and many were retired over the years. This table lets the front ends explain a name in
one line, say what replaced a retired one, and suggest the right spelling for a typo.

Sources: devstack's ``stackrc``, ``functions-common``, ``lib/*`` and their git history, and the
``devstack/`` directories of the plugin repositories. Dates of removals from devstack come from
its history; release names of upstream removals are marked "verify" where not checked in the
project's own release notes.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from stackmagic.i18n import N_, _

CURRENT = "current"
PLUGIN = "plugin"
RETIRED = "retired"
GROUP = "group"


@dataclass(frozen=True)
class ServiceName:
    """One service short name and what it is.

    ``status`` is ``current`` (devstack runs or configures it itself), ``plugin`` (needs the
    ``enable_plugin`` line in ``note``), ``retired`` (``note`` says what replaced it and when) or
    ``group`` (a name that stands for several services of one project).
    """

    name: str
    project: str
    description: str
    status: str
    note: str = ""
    japanese: str = ""


_OPENDEV = "https://opendev.org/openstack"

#: The ``enable_plugin`` line for each plugin a name in this table needs.
PLUGIN_LINES: dict[str, str] = {
    plugin: f"enable_plugin {plugin} {_OPENDEV}/{plugin}"
    for plugin in ("heat", "ceilometer", "aodh", "trove", "zaqar", "ironic", "octavia",
                   "neutron-fwaas", "neutron-vpnaas")
}

_NEUTRON_OVN = ("enable_service q-svc q-ovn-agent ovn-controller ovn-northd ovs-vswitchd "
                "ovsdb-server")


def _cur(name: str, project: str, description: str, japanese: str) -> ServiceName:
    return ServiceName(name, project, N_(description), CURRENT, "", japanese)


def _grp(name: str, project: str, description: str, japanese: str,
         plugin: str = "") -> ServiceName:
    return ServiceName(name, project, N_(description), GROUP, PLUGIN_LINES.get(plugin, ""), japanese)


def _plg(name: str, project: str, description: str, japanese: str,
         plugin: str = "") -> ServiceName:
    return ServiceName(name, project, N_(description), PLUGIN, PLUGIN_LINES[plugin or project],
                       japanese)


def _old(name: str, project: str, description: str, note: str, japanese: str) -> ServiceName:
    return ServiceName(name, project, N_(description), RETIRED, N_(note), japanese)


#: old names that run here as their successors, as devstack's neutron-* names run as q- names
#: (config/layout.py): the seed post's ``enable_service zaqar-server`` runs Zaqar
RUNS_AS: dict[str, tuple[str, ...]] = {"zaqar-server": ("zaqar-wsgi", "zaqar-websocket")}

_TABLE: tuple[ServiceName, ...] = (
    # --- keystone -------------------------------------------------------------------------
    _cur("key", "keystone", "Identity API (Keystone)", "Keystone（認証サービス）の API"),
    _grp("keystone", "keystone", "group name for Keystone, the same as key",
         "Keystone のグループ名（key と同じ意味）"),
    _cur("ldap", "keystone", "OpenLDAP server used as Keystone's identity backend",
         "Keystone の認証バックエンドとして使う OpenLDAP サーバー"),
    _old("key-access", "keystone", "screen window showing Keystone's access log",
         "key-access was a screen window for Keystone's access log; devstack dropped screen "
         "windows in 2017: read the key service's log instead",
         "Keystone のアクセスログを表示していた画面（廃止）"),
    # --- glance ---------------------------------------------------------------------------
    _cur("g-api", "glance", "Image API", "Glance（イメージサービス）の API"),
    _cur("g-api-r", "glance", "second Image API acting as a remote glance (multi-store tests)",
         "リモート側を模した 2 台目の Glance API（テスト用）"),
    _grp("glance", "glance", "group name for every g-* service", "Glance のグループ名（g-* すべて）"),
    _old("g-reg", "glance", "Image registry (glance-registry)",
         "the Glance registry was removed from Glance in Ussuri (2020) and from devstack in "
         "2020; g-api alone serves images: remove g-reg",
         "Glance のレジストリ（Ussuri で廃止）"),
    # verify: Glare's later history; devstack's own removal date is from its git log.
    _old("g-glare", "glance", "Glance artifact API (Glare)",
         "Glare left Glance to become a project of its own; devstack dropped g-glare in 2017: "
         "remove it",
         "Glance のアーティファクト API（Glare、廃止）"),
    # verify: that g-search became Searchlight; devstack's removal date is from its git log.
    _old("g-search", "glance", "Glance catalog index service",
         "the catalog index service moved out of Glance (it became Searchlight); devstack "
         "dropped g-search in 2016: remove it",
         "Glance のカタログ検索サービス（廃止）"),
    # --- placement ------------------------------------------------------------------------
    _cur("placement-api", "placement", "Placement API", "Placement（リソース管理）の API"),
    _cur("placement-client", "placement",
         "marks a node whose nova-compute must be told where Placement is",
         "nova-compute に Placement の場所を設定するための目印"),
    _grp("placement", "placement", "group name for Placement, the same as placement-api",
         "Placement のグループ名（placement-api と同じ意味）"),
    # --- nova -----------------------------------------------------------------------------
    _cur("n-api", "nova", "Compute API", "Nova（コンピュート）の API"),
    _cur("n-cpu", "nova", "Compute agent (nova-compute)", "仮想マシンを動かす nova-compute"),
    _cur("n-cond", "nova", "Compute conductor", "Nova のコンダクター"),
    _cur("n-super-cond", "nova", "top-level conductor with cells v2 (enabled by n-cond)",
         "セル v2 の最上位コンダクター（n-cond があると自動で有効）"),
    _cur("n-sch", "nova", "Compute scheduler", "Nova のスケジューラー"),
    _cur("n-novnc", "nova", "noVNC console proxy", "noVNC コンソールプロキシ"),
    _cur("n-spice", "nova", "SPICE HTML5 console proxy", "SPICE HTML5 コンソールプロキシ"),
    _cur("n-sproxy", "nova", "serial console proxy", "シリアルコンソールプロキシ"),
    _cur("n-api-meta", "nova", "Metadata API for instances", "インスタンス向けメタデータ API"),
    _grp("nova", "nova", "group name for every n-* service", "Nova のグループ名（n-* すべて）"),
    # verify: the Nova release. devstack removed n-net in 2019; the Train docs still ship the
    # nova-network command, so Nova's removal came after Rocky.
    _old("n-net", "nova", "nova-network, Nova's built-in networking",
         "nova-network was deprecated in Newton, left devstack in 2019 and was removed from "
         f"Nova in Ussuri (2020); use Neutron: {_NEUTRON_OVN}",
         "Nova 内蔵のネットワーク機能 nova-network（廃止、Neutron を使う）"),
    _old("n-cell", "nova", "cells v1 service (nova-cells)",
         "cells v1 was removed from Nova in Train (2019) and from devstack in 2019; cells v2 "
         "needs no service of its own: remove n-cell",
         "セル v1 のサービス nova-cells（廃止）"),
    _old("n-cell-region", "nova", "cells v1 region (top) cell service",
         "cells v1 was removed from Nova in Train (2019) and from devstack in 2019: remove it",
         "セル v1 の最上位セル（廃止）"),
    _old("n-cell-child", "nova", "cells v1 child cell service",
         "cells v1 was removed from Nova in Train (2019) and from devstack in 2019: remove it",
         "セル v1 の子セル（廃止）"),
    _old("n-crt", "nova", "certificate service (nova-cert)",
         "nova-cert was removed from Nova in Pike (2017) and from devstack in 2017: remove it",
         "証明書サービス nova-cert（廃止）"),
    _old("n-obj", "nova", "S3-like object store (nova-objectstore)",
         "nova-objectstore was removed from Nova in Mitaka (2016); for object storage use "
         "Swift: enable_service s-proxy s-object s-container s-account",
         "簡易オブジェクトストア nova-objectstore（廃止、Swift を使う）"),
    _old("n-cauth", "nova", "console authentication service (nova-consoleauth)",
         "nova-consoleauth was removed from Nova in Train (2019) and from devstack in 2019; "
         "console proxies check tokens themselves: remove n-cauth",
         "コンソール認証サービス nova-consoleauth（廃止）"),
    _old("n-xvnc", "nova", "XenServer VNC proxy (nova-xvpvncproxy)",
         "nova-xvpvncproxy was removed from Nova in Ussuri (2020) and from devstack in 2021; "
         "use n-novnc",
         "XenServer 用 VNC プロキシ（廃止、n-novnc を使う）"),
    _old("n-vnc", "nova", "early VNC proxy",
         "the first VNC proxy was replaced in devstack by n-novnc in 2012; use n-novnc",
         "初期の VNC プロキシ（廃止、n-novnc を使う）"),
    _old("n-vol", "nova", "nova-volume, Nova's built-in block storage",
         "nova-volume was replaced by Cinder in Folsom (2012) and left devstack in 2012; use "
         "Cinder: enable_service c-api c-sch c-vol",
         "Nova 内蔵のブロックストレージ nova-volume（廃止、Cinder を使う）"),
    _old("gantt", "nova", "Gantt, a planned split-out of the Nova scheduler",
         "Gantt was abandoned and left devstack in 2015; the scheduler is n-sch",
         "Nova スケジューラー分離計画 Gantt（中止）"),
    # --- cinder ---------------------------------------------------------------------------
    _cur("c-api", "cinder", "Block Storage API", "Cinder（ブロックストレージ）の API"),
    _cur("c-sch", "cinder", "Block Storage scheduler", "Cinder のスケジューラー"),
    _cur("c-vol", "cinder", "volume service (cinder-volume)", "ボリュームを管理する cinder-volume"),
    _cur("c-bak", "cinder", "volume backup service (cinder-backup)",
         "ボリュームをバックアップする cinder-backup"),
    _grp("cinder", "cinder", "group name for every c-* service",
         "Cinder のグループ名（c-* すべて）"),
    # --- swift ----------------------------------------------------------------------------
    _cur("s-proxy", "swift", "Object Storage proxy server", "Swift（オブジェクトストレージ）のプロキシ"),
    _cur("s-object", "swift", "Object Storage object server", "Swift のオブジェクトサーバー"),
    _cur("s-container", "swift", "Object Storage container server", "Swift のコンテナサーバー"),
    _cur("s-account", "swift", "Object Storage account server", "Swift のアカウントサーバー"),
    _cur("s-container-sync", "swift", "Object Storage container sync daemon",
         "Swift のコンテナ同期デーモン"),
    _cur("s3api", "swift", "S3-compatible API in the Swift proxy", "Swift プロキシの S3 互換 API"),
    _grp("swift", "swift", "group name for every s-* service", "Swift のグループ名（s-* すべて）"),
    _old("swift3", "swift", "swift3 S3 middleware",
         "the swift3 middleware was replaced by Swift's own s3api; devstack switched in 2018: "
         "enable_service s3api",
         "S3 互換ミドルウェア swift3（廃止、s3api を使う）"),
    # --- neutron --------------------------------------------------------------------------
    _cur("q-svc", "neutron", "Networking API server (neutron-server)",
         "Neutron（ネットワーク）の API サーバー"),
    _cur("q-agt", "neutron", "Networking L2 agent (Open vSwitch)", "Neutron の L2 エージェント"),
    _cur("q-dhcp", "neutron", "Networking DHCP agent", "Neutron の DHCP エージェント"),
    _cur("q-l3", "neutron", "Networking L3 agent (routers, floating IPs)",
         "Neutron の L3 エージェント（ルーター、Floating IP）"),
    _cur("q-meta", "neutron", "Networking metadata agent", "Neutron のメタデータエージェント"),
    _cur("q-metering", "neutron", "Networking metering agent", "Neutron の計測エージェント"),
    _cur("q-qos", "neutron", "Networking QoS extension", "Neutron の QoS 拡張"),
    _cur("q-trunk", "neutron", "Networking trunk ports extension", "Neutron のトランクポート拡張"),
    _cur("q-placement", "neutron", "Networking placement reporting extension",
         "Neutron から Placement へ報告する拡張"),
    _cur("q-log", "neutron", "Networking packet logging extension", "Neutron のパケットログ拡張"),
    _cur("q-dns", "neutron", "Networking DNS integration extension", "Neutron の DNS 連携拡張"),
    _cur("q-ovn-agent", "neutron", "Neutron OVN agent", "Neutron の OVN エージェント"),
    _cur("q-ovn-metadata-agent", "neutron", "Neutron OVN metadata agent",
         "Neutron の OVN メタデータエージェント"),
    _cur("q-ovn-bgp", "neutron", "Networking OVN BGP service plugin", "Neutron の OVN BGP 連携"),
    _cur("q-ovn-evpn", "neutron", "Networking OVN EVPN service plugin",
         "Neutron の OVN EVPN 連携"),
    _cur("neutron-api", "neutron", "Networking API (WSGI)", "Neutron の API（WSGI）"),
    _cur("neutron-rpc-server", "neutron", "Networking RPC server", "Neutron の RPC サーバー"),
    _cur("neutron-periodic-workers", "neutron", "Networking periodic task workers",
         "Neutron の定期処理ワーカー"),
    _cur("neutron-agent", "neutron", "Networking L2 agent, the same as q-agt",
         "Neutron の L2 エージェント（q-agt と同じ）"),
    _cur("neutron-dhcp", "neutron", "Networking DHCP agent, the same as q-dhcp",
         "Neutron の DHCP エージェント（q-dhcp と同じ）"),
    _cur("neutron-l3", "neutron", "Networking L3 agent, the same as q-l3",
         "Neutron の L3 エージェント（q-l3 と同じ）"),
    _cur("neutron-metadata-agent", "neutron", "Networking metadata agent, the same as q-meta",
         "Neutron のメタデータエージェント（q-meta と同じ）"),
    _cur("neutron-metering", "neutron", "Networking metering agent, the same as q-metering",
         "Neutron の計測エージェント（q-metering と同じ）"),
    _cur("neutron-qos", "neutron", "Networking QoS extension, the same as q-qos",
         "Neutron の QoS 拡張（q-qos と同じ）"),
    _cur("neutron-trunk", "neutron", "Networking trunk extension, the same as q-trunk",
         "Neutron のトランク拡張（q-trunk と同じ）"),
    _cur("neutron-placement", "neutron", "Networking placement extension, the same as "
         "q-placement", "Neutron の Placement 連携（q-placement と同じ）"),
    _cur("neutron-log", "neutron", "Networking logging extension, the same as q-log",
         "Neutron のログ拡張（q-log と同じ）"),
    _cur("neutron-dns", "neutron", "Networking DNS extension, the same as q-dns",
         "Neutron の DNS 連携（q-dns と同じ）"),
    _cur("neutron-segments", "neutron", "Networking routed segments extension",
         "Neutron のセグメント拡張"),
    _cur("neutron-ovn-agent", "neutron", "Neutron OVN agent, the same as q-ovn-agent",
         "Neutron の OVN エージェント（q-ovn-agent と同じ）"),
    _cur("neutron-ovn-metadata-agent", "neutron",
         "Neutron OVN metadata agent, the same as q-ovn-metadata-agent",
         "Neutron の OVN メタデータエージェント（q-ovn-metadata-agent と同じ）"),
    _cur("neutron-ovn-maintenance-worker", "neutron", "Neutron OVN maintenance worker",
         "Neutron の OVN 保守ワーカー"),
    _grp("neutron", "neutron", "group name for every q-* and neutron-* service",
         "Neutron のグループ名（q-* と neutron-* すべて）"),
    _plg("q-fwaas", "neutron", "Firewall-as-a-Service (old name, still accepted)",
         "ファイアウォールサービス FWaaS（旧名）", "neutron-fwaas"),
    _plg("q-fwaas-v2", "neutron", "Firewall-as-a-Service v2", "ファイアウォールサービス FWaaS v2",
         "neutron-fwaas"),
    _plg("neutron-fwaas-v2", "neutron", "Firewall-as-a-Service v2, the same as q-fwaas-v2",
         "FWaaS v2（q-fwaas-v2 と同じ）", "neutron-fwaas"),
    _plg("q-ovn-vpn-agent", "neutron", "VPN-as-a-Service agent for OVN",
         "OVN 用の VPN サービスエージェント", "neutron-vpnaas"),
    _old("quantum", "neutron", "group name from the Quantum days",
         "Quantum was renamed Neutron in Havana (2013); the q-* names stayed: use neutron, "
         "or " + _NEUTRON_OVN,
         "Neutron の旧名 Quantum（Havana で改名）"),
    # verify: the year neutron-lbaas itself was retired (Octavia replaced it).
    _old("q-lbaas", "neutron", "Load-Balancer-as-a-Service (neutron-lbaas)",
         "LBaaS left devstack in 2016 and neutron-lbaas was later retired; use Octavia: "
         + PLUGIN_LINES["octavia"],
         "ロードバランサーサービス LBaaS（廃止、Octavia を使う）"),
    _old("q-vpn", "neutron", "VPN-as-a-Service (in-tree)",
         "VPNaaS left devstack in 2016 for its own plugin: " + PLUGIN_LINES["neutron-vpnaas"],
         "VPN サービス（旧名、neutron-vpnaas プラグインを使う）"),
    _old("q-domua", "neutron", "Open vSwitch agent in a XenServer domU",
         "the XenServer domU agent left devstack in 2017: remove q-domua",
         "XenServer domU 用 OVS エージェント（廃止）"),
    _old("m-svc", "neutron", "Melange IP address management service",
         "Melange left devstack in 2012 with Quantum v1; Neutron manages addresses itself",
         "IP アドレス管理サービス Melange（廃止）"),
    # --- ovn / ovs ------------------------------------------------------------------------
    _cur("ovn-controller", "ovn", "OVN local controller", "OVN のローカルコントローラー"),
    _cur("ovn-northd", "ovn", "OVN central daemon (northbound to southbound)",
         "OVN の中央デーモン northd"),
    _cur("ovn-controller-vtep", "ovn", "OVN controller for VTEP gateways",
         "VTEP ゲートウェイ用の OVN コントローラー"),
    _cur("ovs-vswitchd", "ovs", "Open vSwitch switch daemon", "Open vSwitch のスイッチデーモン"),
    _cur("ovsdb-server", "ovs", "Open vSwitch database server",
         "Open vSwitch のデータベースサーバー"),
    _cur("ovs-vtep", "ovs", "Open vSwitch VTEP emulator", "Open vSwitch の VTEP エミュレーター"),
    # --- horizon, tempest -----------------------------------------------------------------
    _cur("horizon", "horizon", "Dashboard (web UI)", "Horizon（Web ダッシュボード）"),
    _cur("tempest", "tempest", "integration test suite (installed and configured, no process)",
         "結合テストスイート Tempest（プロセスは動かない）"),
    # --- heat (plugin; stackmagic's catalog has a recipe for it) --------------------------
    _plg("h-api", "heat", "Orchestration API", "Heat（オーケストレーション）の API"),
    _plg("h-api-cfn", "heat", "Orchestration CloudFormation-compatible API",
         "Heat の CloudFormation 互換 API"),
    _plg("h-eng", "heat", "Orchestration engine", "Heat のエンジン"),
    _grp("heat", "heat", "group name for every h-* service", "Heat のグループ名（h-* すべて）",
         "heat"),
    # Heat's "Remove CloudWatch API" (2017-10-27) first shipped in 10.0.0 (Queens); its devstack
    # plugin dropped h-api-cw on 2017-10-24 (both from the heat repository's history).
    _old("h-api-cw", "heat", "Orchestration CloudWatch-compatible API",
         "the CloudWatch API was removed from Heat in Queens (10.0.0, 2018) and from its devstack "
         "plugin in 2017; for alarms use Aodh: " + PLUGIN_LINES["aodh"],
         "Heat の CloudWatch 互換 API（Queens で廃止、Aodh を使う）"),
    # --- ceilometer (plugin) --------------------------------------------------------------
    _plg("ceilometer-acompute", "ceilometer", "Telemetry compute polling agent",
         "Ceilometer のコンピュート計測エージェント"),
    _plg("ceilometer-acentral", "ceilometer", "Telemetry central polling agent",
         "Ceilometer の中央計測エージェント"),
    _plg("ceilometer-anotification", "ceilometer", "Telemetry notification agent",
         "Ceilometer の通知エージェント"),
    _plg("ceilometer-aipmi", "ceilometer", "Telemetry IPMI polling agent (off by default)",
         "Ceilometer の IPMI 計測エージェント（既定では無効）"),
    _plg("gnocchi-api", "ceilometer", "Gnocchi metric storage API (Telemetry backend)",
         "計測値を保存する Gnocchi の API"),
    _plg("gnocchi-metricd", "ceilometer", "Gnocchi metric processing daemon",
         "Gnocchi の計測値処理デーモン"),
    _plg("sg-core", "ceilometer", "sg-core, a Prometheus-facing Telemetry backend",
         "Prometheus 向けの計測バックエンド sg-core"),
    _grp("ceilometer", "ceilometer", "group name for every ceilometer-* service",
         "Ceilometer のグループ名（ceilometer-* すべて）", "ceilometer"),
    _old("ceilometer-collector", "ceilometer", "Telemetry collector",
         "the collector was removed from Ceilometer in Queens (2017); agents publish to "
         "Gnocchi directly: remove it",
         "Ceilometer のコレクター（廃止）"),
    _old("ceilometer-api", "ceilometer", "Telemetry API",
         "the Ceilometer API was removed in Queens (2017); query measures through Gnocchi "
         "(gnocchi-api), which the ceilometer plugin enables",
         "Ceilometer の API（廃止、Gnocchi を使う）"),
    _old("ceilometer-alarm-evaluator", "ceilometer", "Telemetry alarm evaluator",
         "alarming moved from Ceilometer to Aodh in Liberty (2015): " + PLUGIN_LINES["aodh"],
         "Ceilometer のアラーム評価（廃止、Aodh を使う）"),
    _old("ceilometer-alarm-notifier", "ceilometer", "Telemetry alarm notifier",
         "alarming moved from Ceilometer to Aodh in Liberty (2015): " + PLUGIN_LINES["aodh"],
         "Ceilometer のアラーム通知（廃止、Aodh を使う）"),
    # --- trove (plugin; stackmagic's catalog has a recipe for it) -------------------------
    _grp("trove", "trove", "group name for every tr-* service", "Trove のグループ名（tr-* すべて）",
         "trove"),
    _plg("tr-api", "trove", "Database service API", "Trove（データベースサービス）の API"),
    _plg("tr-tmgr", "trove", "Database service task manager", "Trove のタスクマネージャー"),
    _plg("tr-cond", "trove", "Database service conductor", "Trove のコンダクター"),
    # --- sahara (retired) -----------------------------------------------------------------
    _old("sahara", "sahara", "Data Processing (Hadoop/Spark clusters)",
         "Sahara was retired in 2024 (its repository was emptied in May 2024) and has no "
         "successor: remove it",
         "データ処理サービス Sahara（2024 年に廃止）"),
    _old("sahara-api", "sahara", "Data Processing API",
         "Sahara was retired in 2024 and has no successor: remove it",
         "Sahara の API（廃止）"),
    _old("sahara-eng", "sahara", "Data Processing engine",
         "Sahara was retired in 2024 and has no successor: remove it",
         "Sahara のエンジン（廃止）"),
    _old("savanna", "sahara", "Savanna, the first name of Sahara",
         "Savanna was renamed Sahara in 2014, and Sahara was retired in 2024: remove it",
         "Sahara の旧名 Savanna（廃止）"),
    # --- zaqar (plugin) -------------------------------------------------------------------
    _grp("zaqar", "zaqar", "group name for every zaqar* service",
         "Zaqar のグループ名（zaqar で始まるものすべて）", "zaqar"),
    _plg("zaqar-wsgi", "zaqar", "Messaging API (WSGI)", "Zaqar（メッセージング）の API"),
    _plg("zaqar-websocket", "zaqar", "Messaging websocket server", "Zaqar の WebSocket サーバー"),
    _old("zaqar-server", "zaqar", "Messaging server",
         "zaqar-server was split into zaqar-wsgi and zaqar-websocket in Zaqar's plugin (2015); "
         "stackmagic runs those two from its zaqar recipe, devstack needs "
         + PLUGIN_LINES["zaqar"] + " and enable_service zaqar-wsgi zaqar-websocket; its MongoDB "
         "store is replaced here by Redis (Debian's redis-server) with the stack's database",
         "Zaqar のサーバー（旧名、zaqar-wsgi と zaqar-websocket を使う）"),
    _cur("redis", "zaqar",
         "Redis server, Zaqar's message store here (the plugin installs it without a service name)",
         "Zaqar のメッセージを保存する Redis サーバー"),
    _old("marconi-server", "zaqar", "Marconi, the first name of Zaqar",
         "Marconi was renamed Zaqar in 2014: " + PLUGIN_LINES["zaqar"],
         "Zaqar の旧名 Marconi（廃止）"),
    # --- ironic, octavia (plugins) --------------------------------------------------------
    _grp("ironic", "ironic", "group name for Bare Metal", "Ironic（ベアメタル）のグループ名",
         "ironic"),
    _plg("ir-api", "ironic", "Bare Metal API", "Ironic（ベアメタル）の API"),
    _plg("ir-cond", "ironic", "Bare Metal conductor", "Ironic のコンダクター"),
    _grp("octavia", "octavia", "group name for Load Balancer", "Octavia（ロードバランサー）のグループ名",
         "octavia"),
    _plg("o-api", "octavia", "Load Balancer API", "Octavia（ロードバランサー）の API"),
    _plg("o-cw", "octavia", "Load Balancer controller worker", "Octavia のコントローラーワーカー"),
    _plg("o-hm", "octavia", "Load Balancer health manager", "Octavia のヘルスマネージャー"),
    _plg("o-hk", "octavia", "Load Balancer housekeeping", "Octavia のハウスキーピング"),
    _plg("o-da", "octavia", "Load Balancer provider driver agent", "Octavia のドライバーエージェント"),
    # --- infrastructure -------------------------------------------------------------------
    _cur("mysql", "database", "MySQL / MariaDB database server",
         "MySQL / MariaDB データベースサーバー"),
    _cur("postgresql", "database", "PostgreSQL database server", "PostgreSQL データベースサーバー"),
    _cur("rabbit", "messaging", "RabbitMQ message broker", "RabbitMQ メッセージブローカー"),
    _old("qpid", "messaging", "Qpid message broker",
         "devstack dropped every broker but RabbitMQ in 2015: enable_service rabbit",
         "Qpid メッセージブローカー（廃止、rabbit を使う）"),
    _old("zeromq", "messaging", "ZeroMQ messaging",
         "devstack dropped every broker but RabbitMQ in 2015: enable_service rabbit",
         "ZeroMQ メッセージング（廃止、rabbit を使う）"),
    _cur("etcd3", "coordination", "etcd key-value store (locks, coordination)",
         "分散ロックや調整に使う etcd"),
    _old("zookeeper", "coordination", "ZooKeeper coordination service",
         "ZooKeeper left devstack in 2017; etcd3 does coordination: enable_service etcd3",
         "ZooKeeper（廃止、etcd3 を使う）"),
    _cur("memcached", "cache",
         "memcached cache server, started with Keystone (devstack has no service name for it)",
         "キャッシュサーバー memcached（Keystone と一緒に起動）"),
    _cur("tls-proxy", "tls", "TLS-terminating proxy in front of the APIs, with a local CA",
         "API の前に置く TLS 終端プロキシ（独自 CA 付き）"),
    _cur("dstat", "monitoring", "resource usage log (dstat)", "リソース使用状況の記録（dstat）"),
    _cur("memory_tracker", "monitoring", "per-process memory usage log",
         "プロセスごとのメモリ使用量の記録"),
    _cur("file_tracker", "monitoring", "open file count log", "開いているファイル数の記録"),
    _cur("atop", "monitoring", "system activity log (atop)", "システム活動の記録（atop）"),
    _cur("tcpdump", "monitoring", "packet capture to a file", "パケットをファイルに記録（tcpdump）"),
    _old("peakmem_tracker", "monitoring", "peak memory tracker",
         "peakmem_tracker was replaced by memory_tracker: enable_service memory_tracker",
         "ピークメモリの記録（廃止、memory_tracker を使う）"),
    _old("sysstat", "monitoring", "sysstat resource logging",
         "sysstat was replaced by dstat in 2014: enable_service dstat",
         "sysstat による記録（廃止、dstat を使う）"),
    _old("pidstat", "monitoring", "per-process statistics (pidstat)",
         "pidstat was replaced by dstat in 2014: enable_service dstat",
         "pidstat による記録（廃止、dstat を使う）"),
    _cur("openstack-cli-server", "devstack",
         "long-running openstack CLI server that speeds up devstack's own commands",
         "devstack 内の openstack コマンドを速くする常駐サーバー"),
)

_BY_NAME: dict[str, ServiceName] = {entry.name: entry for entry in _TABLE}

# Names devstack accepts by their prefix (lib/nova, lib/neutron, lib/neutron_plugins/ovn_agent):
# recognised as their project even when not in the table.
_PATTERNS: tuple[tuple[re.Pattern[str], str, str, str], ...] = (
    (re.compile(r"n-cpu-\d+"), "nova", "extra nova-compute for the fake virt driver",
     "fake ドライバー用の追加 nova-compute"),
    (re.compile(r"n-cond-cell\d+"), "nova", "conductor of one cell (cells v2)",
     "セルごとのコンダクター"),
    (re.compile(r"n-(novnc|spice|sproxy)-cell\d+"), "nova", "console proxy of one cell",
     "セルごとのコンソールプロキシ"),
    (re.compile(r"neutron-.+"), "neutron", "a neutron-* name stackmagic does not list",
     "Neutron の一部として扱われる名前（一覧にはない）"),
    (re.compile(r"ovn-.+"), "ovn", "an ovn-* name stackmagic does not list",
     "OVN の一部として扱われる名前（一覧にはない）"),
    (re.compile(r"ovs-.+"), "ovs", "an ovs-* name stackmagic does not list",
     "Open vSwitch の一部として扱われる名前（一覧にはない）"),
)


def lookup(name: str) -> ServiceName | None:
    """What ``name`` is, or ``None`` if devstack never knew it.

    Names recognised only by their prefix (``neutron-foo``, ``n-cpu-2``) get a generic entry.

    >>> lookup("n-api").project
    'nova'
    """
    entry = _BY_NAME.get(name)
    if entry is not None:
        return entry
    for pattern, project, description, japanese in _PATTERNS:
        if pattern.fullmatch(name):
            return ServiceName(name, project, N_(description), CURRENT, "", japanese)
    return None


def closest(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` known names that look like ``name``, best first (for typos)."""
    return difflib.get_close_matches(name, all_names(), n=n, cutoff=0.6)


def explain(name: str) -> str:
    """One line saying what ``name`` is, what replaced it, or what was probably meant.

    >>> explain("n-api")
    'n-api: Compute API (nova)'
    """
    entry = lookup(name)
    if entry is None:
        guesses = closest(name)
        if guesses:
            return _("unknown service '{service}'").format(service=name) + _(
                "; did you mean: {names}?").format(names=", ".join(guesses))
        return _("unknown service '{service}'; devstack has no service of that name").format(service=name)
    if entry.status == RETIRED:
        return f"{name}: {_(entry.note)}"
    line = f"{name}: {_(entry.description)} ({entry.project})"
    if entry.note:
        line += _("; needs {what}").format(what=entry.note)
    if name not in _BY_NAME:
        guesses = closest(name)
        if guesses:
            line += _("; did you mean: {names}?").format(names=", ".join(guesses))
    return line


def projects() -> dict[str, list[str]]:
    """Each project and its names, in table order."""
    grouped: dict[str, list[str]] = {}
    for entry in _TABLE:
        grouped.setdefault(entry.project, []).append(entry.name)
    return grouped


def all_names() -> list[str]:
    """Every name in the table, in table order."""
    return [entry.name for entry in _TABLE]
