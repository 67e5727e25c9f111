#!/usr/bin/env bash
# Regenerate <series>.txt (upper constraints) and <series>-releases.txt (the server releases)
# for one OpenStack release series, by resolving with `uv pip compile` for Python 3.11 on Linux.
#
# usage: compile.sh SERIES REQUIREMENTS_UC RELEASE_PIN...
#   SERIES            e.g. 2026.2
#   REQUIREMENTS_UC   an upper-constraints.txt of openstack/requirements to start from (the
#                     versions the gate tested); pins that conflict with the releases are dropped
#                     one by one and left to the resolver
#   RELEASE_PIN       the server releases, e.g. keystone==30.0.0 (installed from git checkouts,
#                     so they go to <series>-releases.txt and never into <series>.txt)
# example (the command that made 2026.2.txt):
#   git -C requirements show 3353677727f8351bc58ba98efafe6bc884a0257c:upper-constraints.txt >/tmp/uc.txt
#   stackmagic/constraints/compile.sh 2026.2 /tmp/uc.txt keystone==30.0.0 glance==33.0.0 \
#       openstack-placement==16.0.0 nova==34.0.0 neutron==29.0.0
set -euo pipefail
series=$1 uc=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# The libraries and tools every stack installs next to the servers.
extras=(python-openstackclient openstacksdk gunicorn PyMySQL psycopg2-binary python-memcached pymemcache)
printf '%s\n' "$@" "${extras[@]}" >"$work/req.in"
norm() { tr 'A-Z_.' 'a-z--' <<<"$1"; }
grep -E '^[A-Za-z0-9]' "$uc" | sed 's/;.*//' >"$work/seed.txt"
relaxed=()
compile() {
    uv pip compile "$work/req.in" -c "$work/seed.txt" --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 --no-header --no-annotate \
        -o "$work/out.txt" 2>"$work/err.txt"
}
until compile; do
    # "... depends on oslo-versionedobjects>=3.12.0 and oslo-versionedobjects==3.11.0": drop that pin.
    bad=$(grep -oE 'and [A-Za-z0-9._-]+==[0-9]' "$work/err.txt" | head -1 | sed -E 's/^and //; s/==.*//')
    [[ -n $bad ]] || { cat "$work/err.txt" >&2; exit 1; }
    relaxed+=("$bad")
    awk -F'===' -v b="$(norm "$bad")" '{n=tolower($1); gsub(/[_.]/,"-",n); if (n!=b) print}' \
        "$work/seed.txt" >"$work/seed2.txt"
    mv "$work/seed2.txt" "$work/seed.txt"
done
# Spell names as openstack/requirements does (oslo.config, not oslo-config) and use `===`.
spelled() {
    awk -F'===' 'NR==FNR {n=tolower($1); gsub(/[_.]/,"-",n); name[n]=$1; next}
        {split($0, a, "=="); n=a[1]; print ((n in name) ? name[n] : n) "===" a[2]}' \
        "$uc" "$work/out.txt" | LC_ALL=C sort -f
}
servers=$(for pin in "$@"; do norm "${pin%%==*}"; done)
header() {
    echo "# OpenStack $series $1, resolved for Python 3.11 on Linux by stackmagic/constraints/compile.sh"
    echo "# from $(basename "$uc") ($(grep -cE '^[A-Za-z0-9]' "$uc") pins) and: $*"
    [[ ${#relaxed[@]} -eq 0 ]] || echo "# pins left to the resolver because the releases need newer: ${relaxed[*]}"
}
{
    header "upper constraints (the servers installed from git are not pinned here)" "$@"
    spelled | grep -viE "^($(paste -sd'|' <<<"$servers"|sed 's/-/[-_.]/g')|setuptools|pip|wheel)==="
} >"$here/$series.txt"
{
    header "server releases (mirror these; pass with -c only when installing them from PyPI)" "$@"
    spelled | grep -iE "^($(paste -sd'|' <<<"$servers"|sed 's/-/[-_.]/g'))==="
} >"$here/$series-releases.txt"
echo "wrote $here/$series.txt ($(grep -vc '^#' "$here/$series.txt") pins) and $here/$series-releases.txt" >&2
