#!/usr/bin/env bash
# Real-stack test bed: a network namespace with libvirtd inside, the tiny template repository,
# and an HTTP server publishing it on the namespace's loopback.
#
#   scripts/testbed.sh up                 bring it up (idempotent, reuses what is running)
#   scripts/testbed.sh run CMD [ARGS...]  up, run CMD inside the namespace, stop the HTTP server,
#                                         exit with CMD's status
#   scripts/testbed.sh down               stop VMs, networks, daemons; delete the namespace
#
# CMD sees: LAGO_TEST_TEMPLATE_REPO (path of repo.metadata), LAGO_TEST_TEMPLATE_REPO_HTTP (URL of
# repo-http.metadata), LAGO_TEST_NETNS, LIBGUESTFS_BACKEND=direct,
# LIBGUESTFS_BACKEND_SETTINGS=force_tcg, LAGO_DOMAIN_TYPE=qemu.
set -Eeuo pipefail

NS=lagotest
CONN=qemu:///system
SCRIPT_DIR=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
REPO_ROOT=$(dirname -- "$SCRIPT_DIR")
TEMPLATE_DIR=$REPO_ROOT/build/test-template
STATE=$REPO_ROOT/build/testbed
HTTP_PID_FILE=$STATE/http.pid
HTTP_PORT_FILE=$STATE/http.port
HTTP_LOG=$STATE/http.log
LIBVIRTD_PID_FILE=/run/libvirtd.pid
VIRTLOGD_PID_FILE=/run/virtlogd.pid
DEFAULT_NET_AUTOSTART=/etc/libvirt/qemu/networks/autostart/default.xml
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

die() { printf 'testbed: ERROR: %s\n' "$*" >&2; exit 1; }
# Run a daemon with no descriptor but stdin/stdout/stderr: one inherited from the caller (a
# `flock` lock, a pipe) would otherwise live as long as the daemon does.
no_fds() { local fd; for fd in /proc/"$BASHPID"/fd/*; do fd=${fd##*/}; if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi; done; "$@"; }
trap 'die "command failed (exit $?, line $LINENO): $BASH_COMMAND"' ERR
log() { printf 'testbed: %s\n' "$*" >&2; }

usage() {
  cat >&2 <<EOF
usage: $0 up | down | run CMD [ARGS...]
EOF
  exit 2
}

require_root() {
  [[ $(id -u) -eq 0 ]] || die "root is needed (ip netns, libvirtd, qemu:///system); rerun as root"
}

require_tools() {
  local t
  for t in ip virsh libvirtd virtlogd qemu-img guestfish "$PYTHON"; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool: $t (see scripts/README.md for the Debian packages)"
  done
}

ns_exists() { [[ -e /run/netns/$NS ]]; }
in_ns() { ip netns exec "$NS" "$@"; }
vsh() { in_ns virsh -q -c "$CONN" "$@"; }

ns_id() { printf 'net:[%s]' "$(stat -L -c %i "/run/netns/$NS")"; }
pid_alive() { [[ -n ${1:-} && -d /proc/$1 ]]; }
pid_in_ns() { [[ $(readlink "/proc/$1/ns/net" 2>/dev/null) == "$(ns_id)" ]]; }
pid_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }

# pids of running processes named $1 (exact), from pgrep and the pid file $2
daemon_pids() {
  local name=$1 pidfile=$2 p
  {
    pgrep -x "$name" 2>/dev/null || true
    if [[ -r $pidfile ]]; then
      p=$(<"$pidfile")
      if pid_alive "$p" && [[ $(pid_comm "$p") == "$name" ]]; then printf '%s\n' "$p"; fi
    fi
  } | sort -un
}

wait_pid_gone() { # pid timeout_s
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    pid_alive "$1" || return 0
    sleep 0.1
  done
  return 1
}

stop_pid() { # pid what
  pid_alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null || true
  if ! wait_pid_gone "$1" 15; then
    log "$2 (pid $1) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$1" 2>/dev/null || true
    wait_pid_gone "$1" 5 || die "cannot stop $2 (pid $1)"
  fi
}

# ------------------------------------------------------------------ namespace + daemons
ensure_netns() {
  if ! ns_exists; then
    log "creating network namespace $NS"
    ip netns add "$NS"
  fi
  ip -n "$NS" link set lo up
}

ensure_virtlogd() {
  local pids p
  pids=$(daemon_pids virtlogd "$VIRTLOGD_PID_FILE")
  if [[ -n $pids ]]; then
    for p in $pids; do
      pid_in_ns "$p" || log "note: reusing virtlogd (pid $p) running outside $NS (it does no networking)"
    done
    return 0
  fi
  log "starting virtlogd in $NS"
  (no_fds in_ns virtlogd -d) || die "virtlogd failed to start"
}

check_no_foreign_libvirtd() {
  local p
  for p in $(daemon_pids libvirtd "$LIBVIRTD_PID_FILE"); do
    if ! pid_in_ns "$p"; then
      die "libvirtd (pid $p) is running OUTSIDE the network namespace $NS: its networks and VMs would" \
        "live in the host's network. Stop it (kill $p) and rerun; the test bed starts its own inside $NS."
    fi
  done
}

ensure_libvirtd() {
  local pids i
  check_no_foreign_libvirtd
  pids=$(daemon_pids libvirtd "$LIBVIRTD_PID_FILE")
  if [[ -z $pids ]]; then
    # never let libvirt autostart its 'default' network (virbr0, 192.168.122.0/24)
    if [[ -e $DEFAULT_NET_AUTOSTART || -L $DEFAULT_NET_AUTOSTART ]]; then
      log "disabling autostart of libvirt's default network"
      rm -f -- "$DEFAULT_NET_AUTOSTART"
    fi
    log "starting libvirtd in $NS (log: $STATE/libvirtd.log)"
    (LIBVIRT_LOG_OUTPUTS="3:file:$STATE/libvirtd.log" no_fds in_ns libvirtd -d) || die "libvirtd failed to start"
  fi
  for ((i = 0; i < 60; i++)); do
    if in_ns virsh -c "$CONN" version >/dev/null 2>&1; then break; fi
    sleep 1
  done
  in_ns virsh -c "$CONN" version >/dev/null 2>&1 \
    || die "libvirtd did not answer on $CONN within 60 s (see $STATE/libvirtd.log)"
  # the default network must be neither autostarted nor running
  if vsh net-info default >/dev/null 2>&1; then
    vsh net-autostart default --disable >/dev/null 2>&1 || true
    if vsh net-info default 2>/dev/null | grep -Eq '^Active:[[:space:]]+yes'; then
      log "stopping libvirt's default network"
      vsh net-destroy default >/dev/null
    fi
  fi
}

# ------------------------------------------------------------------ templates + HTTP
ensure_templates() {
  "$SCRIPT_DIR/build-test-template.sh" "$TEMPLATE_DIR" || die "building the template repository failed"
  [[ -r $TEMPLATE_DIR/repo.metadata && -r $TEMPLATE_DIR/repo-http.metadata.in ]] \
    || die "template repository incomplete in $TEMPLATE_DIR"
}

http_pid() { # prints the pid of our running HTTP server, if any
  local p
  [[ -r $HTTP_PID_FILE ]] || return 1
  p=$(<"$HTTP_PID_FILE")
  pid_alive "$p" || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'http.server' || return 1
  printf '%s\n' "$p"
}

port_free_in_ns() {
  in_ns "$PYTHON" -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

http_answers() { # url
  in_ns "$PYTHON" -c 'import sys,urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()' "$1" 2>/dev/null
}

ensure_http() {
  local pid port i
  if pid=$(http_pid) && [[ -r $HTTP_PORT_FILE ]] && pid_in_ns "$pid"; then
    port=$(<"$HTTP_PORT_FILE")
  else
    port=
    for ((i = 18080; i < 18180; i++)); do
      if port_free_in_ns "$i"; then port=$i; break; fi
    done
    [[ -n $port ]] || die "no free TCP port in 18080-18179 inside $NS"
    rm -f -- "$HTTP_PID_FILE"
    # the server records its own pid (the shell execs python), so 'down' and 'run' can stop it
    # shellcheck disable=SC2016 # expanded by the inner sh
    no_fds in_ns sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$HTTP_PID_FILE" \
      "$PYTHON" -m http.server "$port" --bind 127.0.0.1 --directory "$TEMPLATE_DIR" \
      </dev/null >"$HTTP_LOG" 2>&1 &
    for ((i = 0; i < 50; i++)); do
      [[ -s $HTTP_PID_FILE ]] && break
      sleep 0.1
    done
    [[ -s $HTTP_PID_FILE ]] || die "HTTP server did not start (see $HTTP_LOG)"
    pid=$(<"$HTTP_PID_FILE")
    printf '%s\n' "$port" >"$HTTP_PORT_FILE"
    log "HTTP server pid $pid on http://127.0.0.1:$port (in $NS), log $HTTP_LOG"
  fi
  BASEURL=http://127.0.0.1:$port
  sed -e "s|@BASEURL@|$BASEURL|g" "$TEMPLATE_DIR/repo-http.metadata.in" >"$TEMPLATE_DIR/repo-http.metadata.tmp"
  mv -f -- "$TEMPLATE_DIR/repo-http.metadata.tmp" "$TEMPLATE_DIR/repo-http.metadata"
  for ((i = 0; i < 100; i++)); do
    if http_answers "$BASEURL/repo-http.metadata"; then return 0; fi
    pid_alive "$pid" || break
    sleep 0.1
  done
  die "HTTP server did not answer on $BASEURL (see $HTTP_LOG)"
}

stop_http() {
  local pid
  if pid=$(http_pid); then
    stop_pid "$pid" "HTTP server"
  fi
  rm -f -- "$HTTP_PID_FILE" "$HTTP_PORT_FILE"
}

up() {
  require_root
  require_tools
  mkdir -p -- "$STATE"
  ensure_netns
  check_no_foreign_libvirtd
  ensure_virtlogd
  ensure_libvirtd
  ensure_templates
  ensure_http
}

down() {
  require_root
  local p name pids
  stop_http
  if ! ns_exists; then
    log "namespace $NS does not exist; nothing else to stop"
    return 0
  fi
  pids=$(daemon_pids libvirtd "$LIBVIRTD_PID_FILE")
  for p in $pids; do
    pid_in_ns "$p" || continue
    # VMs and dnsmasq outlive libvirtd: stop them while it still answers
    for name in $(vsh list --name 2>/dev/null || true); do
      log "destroying domain $name"
      vsh destroy "$name" >/dev/null 2>&1 || true
    done
    for name in $(vsh net-list --name 2>/dev/null || true); do
      log "destroying network $name"
      vsh net-destroy "$name" >/dev/null 2>&1 || true
    done
    log "stopping libvirtd (pid $p)"
    stop_pid "$p" libvirtd
  done
  for p in $(daemon_pids virtlogd "$VIRTLOGD_PID_FILE"); do
    if pid_in_ns "$p"; then
      log "stopping virtlogd (pid $p)"
      stop_pid "$p" virtlogd
    fi
  done
  # anything else still living in the namespace was started by the test bed or its tests
  for p in $(ip netns pids "$NS" 2>/dev/null || true); do
    log "stopping leftover $(pid_comm "$p") (pid $p) in $NS"
    stop_pid "$p" "$(pid_comm "$p")"
  done
  ip netns del "$NS"
  log "namespace $NS deleted"
}

run() {
  [[ $# -ge 1 ]] || usage
  up
  local status=0
  trap 'stop_http' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  in_ns env \
    LAGO_TEST_TEMPLATE_REPO="$TEMPLATE_DIR/repo.metadata" \
    LAGO_TEST_TEMPLATE_REPO_HTTP="$BASEURL/repo-http.metadata" \
    LAGO_TEST_NETNS="$NS" \
    LIBGUESTFS_BACKEND=direct \
    LIBGUESTFS_BACKEND_SETTINGS=force_tcg \
    LAGO_DOMAIN_TYPE=qemu \
    "$@" || status=$?
  exit "$status"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
  up) [[ $# -eq 0 ]] || usage; up; log "up: namespace $NS, libvirtd, templates in $TEMPLATE_DIR, $BASEURL" ;;
  down) [[ $# -eq 0 ]] || usage; down ;;
  run) run "$@" ;;
  *) usage ;;
esac
