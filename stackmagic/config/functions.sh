# stackmagic: the shell functions a localrc may call, with devstack's semantics.
#
# Loaded by stackmagic.config.localrc into the one bash process that evaluates a
# localrc. Names starting with __sm_ are stackmagic's own and never reported
# back as settings. Everything the functions want to tell Python (warnings,
# fatal errors) goes through __sm_warn / __sm_die, which know the caller's
# file and line.
#
# Service lists are comma separated (ENABLED_SERVICES, DISABLED_SERVICES).
# Names are matched literally (devstack uses a regular expression match here;
# for real service names, which hold no regex characters, the result is the
# same).

declare -a __sm_warnings=()
declare -A GITREPO=() GITBRANCH=() GITDIR=()
declare -A __sm_plugin_where=()
DEVSTACK_PLUGINS=${DEVSTACK_PLUGINS:-""}

# __sm_where DEPTH: "file<US>line" of the code that called the public function
# DEPTH frames above the caller of __sm_where.
function __sm_where {
    local depth=$(( $1 + 1 ))
    printf '%s\x1f%s' "${BASH_SOURCE[$depth + 1]:-?}" "${BASH_LINENO[$depth]:-0}"
}

# __sm_warn MESSAGE: record a warning at the line that called the public
# function which called __sm_warn.
function __sm_warn {
    __sm_warnings+=("$(__sm_where 1)"$'\x1f'"$*")
    [[ -n ${__sm_out:-} ]] || echo "WARNING: $*" >&2
}

# warn LINENO MESSAGE: devstack's warn; the line argument is ignored, the
# caller's real file and line are recorded instead.
function warn {
    shift
    __sm_warn "$*"
}

# __sm_die MESSAGE: stop the evaluation with an error at the caller's line
# (outside stackmagic's evaluation, e.g. under devstack's own tests: print
# it on stderr); exit status 1, as devstack's die.
function __sm_die {
    if [[ -n ${__sm_out:-} ]]; then
        printf 'X\0%s\0%s\0' "$(__sm_where 1)" "$*" >&"$__sm_out"
    else
        echo "ERROR: $*" >&2
    fi
    exit 1
}

# trueorfalse DEFAULT VARNAME: print True or False like devstack; without a
# VARNAME (the common mistake "trueorfalse False $FOO" with FOO empty) it dies.
function trueorfalse {
    local default=$1
    if [[ -z ${2:-} ]]; then
        __sm_die "trueorfalse needs the name of a variable: write \$(trueorfalse $default FOO), not \$(trueorfalse $default \$FOO)"
    fi
    local testval=${!2:-}
    case "$testval" in
        1 | [yY]es | YES | [tT]rue | TRUE) echo True ;;
        0 | [nN]o | NO | [fF]alse | FALSE) echo False ;;
        *) echo "$default" ;;
    esac
}

# isset VARNAME: true when the variable is set, even to the empty string.
function isset {
    [[ -v "$1" ]]
}

# _cleanup_service_list LIST: drop empty entries (",,", leading, trailing ",").
function _cleanup_service_list {
    local list=$1
    while [[ $list == *,,* ]]; do
        list=${list//,,/,}
    done
    list=${list#,}
    echo "${list%,}"
}

# __sm_in_list NAME LIST: true if NAME is exactly one entry of the comma LIST.
function __sm_in_list {
    [[ ",$2," == *",$1,"* ]]
}

# __sm_any_prefix PREFIX: true if an entry of ENABLED_SERVICES starts with PREFIX.
function __sm_any_prefix {
    [[ ",$ENABLED_SERVICES" == *",$1"* ]]
}

# is_service_enabled NAME...: true if any NAME is enabled, exactly or through
# a group name (nova=n-*, glance=g-*, cinder=c-*, neutron=q-*|neutron-*,
# swift=s-* and s-* when "swift" is listed, trove=tr-*, heat=h-* (the heat
# plugin's is_heat_enabled), keystone=key, placement=placement-api*, zaqar=zaqar*
# (the zaqar plugin's is_zaqar_enabled), ceilometer=ceilometer-* (the ceilometer
# plugin's is_ceilometer_enabled), n-cpu-* when n-cpu is listed).
function is_service_enabled {
    local service
    for service in $@; do
        __sm_in_list "$service" "$ENABLED_SERVICES" && return 0
        case $service in
            nova) __sm_any_prefix n- && return 0 ;;
            glance) __sm_any_prefix g- && return 0 ;;
            cinder) __sm_any_prefix c- && return 0 ;;
            neutron) { __sm_any_prefix q- || __sm_any_prefix neutron-; } && return 0 ;;
            swift) __sm_any_prefix s- && return 0 ;;
            trove) __sm_any_prefix tr- && return 0 ;;
            heat) __sm_any_prefix h- && return 0 ;;
            keystone) __sm_in_list key "$ENABLED_SERVICES" && return 0 ;;
            placement) __sm_any_prefix placement-api && return 0 ;;
            zaqar) __sm_any_prefix zaqar && return 0 ;;
            ceilometer) __sm_any_prefix ceilometer- && return 0 ;;
            n-cpu-*) __sm_any_prefix n-cpu && return 0 ;;
            s-*) __sm_any_prefix swift && return 0 ;;
        esac
    done
    return 1
}

# remove_disabled_services LIST REMOVE: print LIST without the entries of
# REMOVE; both lists may be separated by commas, spaces or both.
function remove_disabled_services {
    local service kept="" remove=${2//[[:space:]]/,}
    for service in ${1//,/ }; do
        __sm_in_list "$service" "$remove" || kept+=",$service"
    done
    _cleanup_service_list "$kept"
}

# disable_negated_services: "-x" entries in ENABLED_SERVICES remove x.
function disable_negated_services {
    local service remove="" remaining=""
    for service in ${ENABLED_SERVICES//,/ }; do
        if [[ $service == -* ]]; then
            remove+=",${service#-}"
        else
            remaining+=",$service"
        fi
    done
    ENABLED_SERVICES=$(remove_disabled_services "$remaining" "$remove")
}

# disable_all_services: empty ENABLED_SERVICES (DISABLED_SERVICES is kept).
function disable_all_services {
    ENABLED_SERVICES=""
}

# disable_service NAME...: remove each exact NAME and remember it as disabled.
function disable_service {
    local service disabled=$DISABLED_SERVICES enabled=",$ENABLED_SERVICES,"
    for service in $@; do
        disabled+=",$service"
        enabled=${enabled//",$service,"/,}
    done
    DISABLED_SERVICES=$(_cleanup_service_list "$disabled")
    ENABLED_SERVICES=$(_cleanup_service_list "$enabled")
}

# enable_service NAME...: append each NAME unless it is already enabled (group
# names count) or was disabled by disable_service (then warn); then apply
# "-x" negations.
function enable_service {
    local service list=$ENABLED_SERVICES
    for service in $@; do
        if __sm_in_list "$service" "$DISABLED_SERVICES"; then
            __sm_warn "Attempt to enable_service $service when it has been disabled"
            continue
        fi
        if ! ENABLED_SERVICES=$list is_service_enabled "$service"; then
            list+=",$service"
        fi
    done
    ENABLED_SERVICES=$(_cleanup_service_list "$list")
    disable_negated_services
}

# is_plugin_enabled NAME: true if enable_plugin NAME ran.
function is_plugin_enabled {
    __sm_in_list "$1" "$DEVSTACK_PLUGINS"
}

# enable_plugin NAME URL [REF]: register a devstack plugin (REF defaults to master).
function enable_plugin {
    local name=${1:-} url=${2:-} ref=${3:-master}
    if [[ -z $name ]]; then
        __sm_die "enable_plugin needs a plugin name and a git URL: enable_plugin NAME URL [REF]"
    fi
    if [[ -z $url ]]; then
        __sm_die "enable_plugin $name has no git URL: write enable_plugin $name URL [REF]"
    fi
    if is_plugin_enabled "$name"; then
        __sm_die "Plugin attempted to be enabled twice: $name $url $ref; keep one enable_plugin $name line"
    fi
    DEVSTACK_PLUGINS=$(_cleanup_service_list "$DEVSTACK_PLUGINS,$name")
    GITREPO[$name]=$url
    GITBRANCH[$name]=$ref
    GITDIR[$name]=$DEST/$name
    __sm_plugin_where[$name]=$(__sm_where 0)
}

# define_plugin / plugin_requires: no-ops in devstack too.
function define_plugin { :; }
function plugin_requires { :; }
