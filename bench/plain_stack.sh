#!/usr/bin/env bash
# plain_stack.sh: the baseline a stackmagic run is compared with, and an executable recipe.
#
# Plain, sequential bash: in one directory it makes a venv, installs Keystone, Glance and
# Placement from PyPI (pinned by stackmagic/constraints/<series>.txt and <series>-releases.txt),
# writes minimal configs (SQLite, no memcached, no message queue), runs the db syncs and
# Keystone's key setup and bootstrap, serves the three APIs with gunicorn on 127.0.0.1, creates
# the service users and endpoints, uploads a tiny image and lists it, creates and lists a
# resource provider, prints the seconds each phase took, then stops what it started by PID
# and removes the directory (unless --keep).
#
# The config keys follow devstack's lib/keystone, lib/glance and lib/placement, minus what does
# not apply here (uwsgi, memcached, rabbit, TLS, syslog, quotas, swift/cinder stores).
#
# usage: bench/plain_stack.sh [--installer pip|uv] [--keep] [--series S] [--ports K,G,P] [DIR]
#   DIR defaults to $PLAIN_DIR, else a new temporary directory. Ports default to
#   25000,25292,25778. PYTHON picks the interpreter (default python3.11).
set -euo pipefail

installer=pip keep=false series=2026.2 ports=25000,25292,25778 dir=${PLAIN_DIR:-}
while (($#)); do
    case $1 in
        --installer) installer=$2; shift 2 ;;
        --keep) keep=true; shift ;;
        --series) series=$2; shift 2 ;;
        --ports) ports=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) dir=$1; shift ;;
    esac
done
[[ $installer == pip || $installer == uv ]] || { echo "--installer is pip or uv" >&2; exit 2; }
IFS=, read -r KS_PORT GL_PORT PL_PORT <<<"$ports"
HERE=$(cd "$(dirname "$0")/.." && pwd)
UC=$HERE/stackmagic/constraints/$series.txt
RELEASES=$HERE/stackmagic/constraints/$series-releases.txt
PYTHON=${PYTHON:-python3.11}
made_dir=false
if [[ -z $dir ]]; then dir=$(mktemp -d /tmp/plain-stack.XXXXXX); made_dir=true; fi
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
VENV=$dir/venv ETC=$dir/etc DATA=$dir/data LOGS=$dir/logs RUN=$dir/run
HOST=127.0.0.1
KS_URL=http://$HOST:$KS_PORT GL_URL=http://$HOST:$GL_PORT PL_URL=http://$HOST:$PL_PORT
ADMIN_PASSWORD=plain-admin-$RANDOM$RANDOM SERVICE_PASSWORD=plain-service-$RANDOM$RANDOM
REGION=RegionOne

# ---- timing, processes, cleanup -------------------------------------------------------------
declare -a PHASES=() PIDS=()
phase_started=0 phase_name=""
now() { date +%s.%N; }
phase() {  # phase NAME: close the running phase, open the next
    local t; t=$(now)
    [[ -z $phase_name ]] || PHASES+=("$(printf '%-22s %6.1f' "$phase_name" "$(echo "$t - $phase_started" | bc)")")
    phase_name=$1 phase_started=$t
    [[ -z $1 ]] || echo "== $1" >&2
}
stop_all() {  # TERM each started gunicorn master, KILL what is left after 15 s
    local pid deadline
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 15))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
finish() {
    local rc=$?
    stop_all
    if ((rc != 0)); then
        echo "FAILED (exit $rc); last log lines:" >&2
        tail -n 15 "$LOGS"/*.log 2>/dev/null >&2 || true
    fi
    if ! $keep; then rm -rf "$VENV" "$ETC" "$DATA" "$LOGS" "$RUN"; $made_dir && rmdir "$dir"; fi
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# iniset FILE SECTION KEY VALUE (enough for fresh files: appends; sections written once each)
ini() {  # ini FILE SECTION "key = value"...
    local file=$1 section=$2; shift 2
    { echo "[$section]"; printf '%s\n' "$@"; echo; } >>"$file"
}
authtoken() {  # authtoken FILE USER: devstack's configure_keystone_authtoken_middleware
    ini "$1" keystone_authtoken "auth_type = password" "interface = public" \
        "auth_url = $KS_URL" "username = $2" "password = $SERVICE_PASSWORD" \
        "user_domain_name = Default" "project_name = service" "project_domain_name = Default" \
        "www_authenticate_uri = $KS_URL"
}
wait_http() {  # wait_http URL PID: until URL answers (any HTTP status), the process dies, or 60 s
    local deadline=$((SECONDS + 60))
    until curl -s -o /dev/null "$1"; do
        kill -0 "$2" 2>/dev/null || { echo "process $2 for $1 died" >&2; return 1; }
        ((SECONDS < deadline)) || { echo "$1 did not answer in 60 s" >&2; return 1; }
        sleep 0.1
    done
    echo "$1 answers HTTP $(curl -s -o /dev/null -w '%{http_code}' "$1")" >&2
}
serve() {  # serve NAME PORT MODULE CONFIG_ENV: gunicorn, 1 worker, 1 thread, in its own dir
    local name=$1 port=$2 module=$3 confenv=$4 extra=()
    mkdir -p "$RUN/$name"
    if "$VENV/bin/gunicorn" --help | grep -q -- --no-control-socket; then extra+=(--no-control-socket); fi
    env -C "$RUN/$name" "$confenv" "$VENV/bin/gunicorn" --bind "$HOST:$port" --workers 1 \
        --threads 1 --timeout 120 --pythonpath "$ETC/wsgi" "${extra[@]}" "$module" \
        >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://$HOST:$port/" $!
}
rss() {  # rss PID: "master+workers MiB"
    local kids total=0 out
    out=$(ps -o rss= -p "$1"); total=$((out / 1024))
    for kids in $(pgrep -P "$1"); do out=$(ps -o rss= -p "$kids"); total="$total+$((out / 1024))"; done
    echo "$total MiB"
}

# ---- venv and install ------------------------------------------------------------------------
phase venv
if [[ $installer == uv ]]; then uv venv -q --python "$PYTHON" "$VENV"; else "$PYTHON" -m venv "$VENV"; fi
phase install
pkgs=(keystone glance openstack-placement gunicorn openstacksdk)
if [[ $installer == uv ]]; then
    # uv skips .pyc compilation unless asked; every later first import would compile instead.
    uv pip install -q --compile-bytecode --python "$VENV/bin/python" -c "$UC" -c "$RELEASES" "${pkgs[@]}"
else
    "$VENV/bin/pip" install -q --disable-pip-version-check -c "$UC" -c "$RELEASES" "${pkgs[@]}"
fi

# ---- configure -------------------------------------------------------------------------------
phase configure
mkdir -p "$ETC"/{keystone,glance,placement,wsgi} "$DATA"/glance/{images,cache,staging,tasks} "$LOGS" "$RUN"
# Keystone parses sys.argv when the app loads; under gunicorn it would see gunicorn's arguments.
cat >"$ETC/wsgi/keystone_app.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
EOF
K=$ETC/keystone/keystone.conf
ini "$K" DEFAULT "public_endpoint = $KS_URL" "max_token_size = 16384"
ini "$K" database "connection = sqlite:///$DATA/keystone.sqlite"
ini "$K" identity "password_hash_rounds = 4"
ini "$K" token "provider = fernet"
ini "$K" fernet_tokens "key_repository = $ETC/keystone/fernet-keys/"
ini "$K" credential "key_repository = $ETC/keystone/credential-keys/"
G=$ETC/glance/glance-api.conf
ini "$G" DEFAULT "public_endpoint = $GL_URL" "worker_self_reference_url = $GL_URL" \
    "image_cache_dir = $DATA/glance/cache/"
ini "$G" database "connection = sqlite:///$DATA/glance.sqlite"
ini "$G" glance_store "filesystem_store_datadir = $DATA/glance/images/"
ini "$G" os_glance_staging_store "filesystem_store_datadir = $DATA/glance/staging/"
ini "$G" os_glance_tasks_store "filesystem_store_datadir = $DATA/glance/tasks/"
ini "$G" oslo_concurrency "lock_path = $DATA/glance/locks"
ini "$G" paste_deploy "flavor = keystone"
authtoken "$G" glance
cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
P=$ETC/placement/placement.conf
ini "$P" placement_database "connection = sqlite:///$DATA/placement.sqlite"
ini "$P" api "auth_strategy = keystone"
authtoken "$P" placement

# ---- keystone: db, keys, bootstrap, start ----------------------------------------------------
phase keystone-init
km() { env -C "$RUN" "$VENV/bin/keystone-manage" --config-file "$K" "$@" >>"$LOGS/keystone-manage.log" 2>&1; }
mkdir -p "$RUN"
km db_sync
km fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
km credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
km bootstrap --bootstrap-username admin --bootstrap-password "$ADMIN_PASSWORD" \
    --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id "$REGION" \
    --bootstrap-public-url "$KS_URL" --bootstrap-internal-url "$KS_URL" \
    --bootstrap-admin-url "$KS_URL"
phase keystone-start
serve keystone "$KS_PORT" keystone_app:application OS_KEYSTONE_CONFIG_DIR="$ETC/keystone"

# ---- glance and placement db (independent of keystone) ---------------------------------------
phase glance-db
env -C "$RUN" "$VENV/bin/glance-manage" --config-file "$G" db_sync >"$LOGS/glance-manage.log" 2>&1
phase placement-db
# placement-manage ignores OS_PLACEMENT_CONFIG_DIR (only the WSGI app reads it).
env -C "$RUN" "$VENV/bin/placement-manage" --config-file "$P" db sync >"$LOGS/placement-manage.log" 2>&1

# ---- accounts (devstack: create_service_user, get_or_create_service / _endpoint) -------------
export OS_AUTH_URL=$KS_URL OS_USERNAME=admin OS_PASSWORD=$ADMIN_PASSWORD OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=$REGION
export OS_IDENTITY_API_VERSION=3 SERVICE_PASSWORD GL_URL PL_URL
phase accounts
"$VENV/bin/python" - <<'EOF'
import os
import openstack

c = openstack.connect()
project = c.identity.create_project(name="service", domain_id="default")
admin = c.identity.find_role("admin")
service_role = c.identity.find_role("service")  # keystone-manage bootstrap made it
for user_name, kind, url in (("glance", "image", os.environ["GL_URL"]),
                             ("placement", "placement", os.environ["PL_URL"])):
    user = c.identity.create_user(name=user_name, password=os.environ["SERVICE_PASSWORD"],
                                  default_project_id=project.id, domain_id="default")
    for role in (admin, service_role):
        c.identity.assign_project_role_to_user(project, user, role)
    svc = c.identity.create_service(name=user_name, type=kind)
    for interface in ("public", "internal"):
        c.identity.create_endpoint(service_id=svc.id, interface=interface, url=url,
                                   region_id=os.environ["OS_REGION_NAME"])
print("accounts: glance, placement in project service; endpoints image, placement")
EOF

# ---- start glance and placement --------------------------------------------------------------
phase glance-start
serve glance "$GL_PORT" glance.wsgi.api:application OS_GLANCE_CONFIG_DIR="$ETC/glance"
phase placement-start
serve placement "$PL_PORT" placement.wsgi.api:application OS_PLACEMENT_CONFIG_DIR="$ETC/placement"

# ---- use them --------------------------------------------------------------------------------
phase image
head -c 1048576 /dev/zero >"$DATA/tiny.raw"
"$VENV/bin/python" - "$DATA/tiny.raw" <<'EOF'
import sys
import openstack

c = openstack.connect()
c.image.create_image(name="plain-tiny", filename=sys.argv[1], disk_format="raw",
                     container_format="bare", wait=True, allow_duplicates=True)
images = [(i.name, i.status, i.size) for i in c.image.images()]
print("images:", images)
assert ("plain-tiny", "active", 1048576) in images, images
EOF
phase placement-use
"$VENV/bin/python" - <<'EOF'
import openstack

c = openstack.connect()
c.placement.create_resource_provider(name="plain-rp")
providers = [p.name for p in c.placement.resource_providers()]
print("resource providers:", providers)
assert providers == ["plain-rp"], providers
EOF

# ---- report and stop -------------------------------------------------------------------------
phase ""
names=(keystone glance placement)
for i in "${!PIDS[@]}"; do echo "RSS ${names[$i]}: $(rss "${PIDS[$i]}")"; done
phase stop
stop_all
phase ""
echo "phase                   seconds"
printf '%s\n' "${PHASES[@]}"
