#!/usr/bin/env bash
# End-to-end smoke test of the tiny template on the real stack. Run it inside the test bed:
#
#   scripts/testbed.sh run scripts/smoke-boot.sh
#
# overlay on the template -> one virt-customize (ssh key, /etc/hostname, --touch, --run-command)
# -> libvirt NAT network + TCG domain -> SSH checks -> ACPI shutdown -> cleanup.
set -Eeuo pipefail

die() { printf 'smoke-boot: FAIL: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (exit $?, line $LINENO): $BASH_COMMAND"' ERR
log() { printf 'smoke-boot: %s\n' "$*" >&2; }

SCRIPT_DIR=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
REPO_ROOT=$(dirname -- "$SCRIPT_DIR")
REPO_META=${LAGO_TEST_TEMPLATE_REPO:-$REPO_ROOT/build/test-template/repo.metadata}
TEMPLATE=$(dirname -- "$REPO_META")/lago-tiny-v3.qcow2
DOMAIN_TYPE=${LAGO_DOMAIN_TYPE:-qemu}
CONN=qemu:///system
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}

[[ -n ${LAGO_TEST_NETNS:-} ]] || die "run me inside the test bed: scripts/testbed.sh run $0"
[[ -r $TEMPLATE ]] || die "template not found: $TEMPLATE"
for t in ssh ssh-keygen virt-customize qemu-img virsh; do
  command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
done

NET=lagosmoke
BRIDGE=lagosmoke0
DOM=lagosmoke-vm
VMNAME=smokevm
MAC=52:54:00:4c:a9:01
SUBNET=192.168.222
VMIP=$SUBNET.10
OTHERIP=$SUBNET.11

vsh() { virsh -q -c "$CONN" "$@"; }

cleanup_libvirt() {
  if vsh dominfo "$DOM" >/dev/null 2>&1; then
    vsh destroy "$DOM" >/dev/null 2>&1 || true
    vsh undefine "$DOM" >/dev/null 2>&1 || true
  fi
  if vsh net-info "$NET" >/dev/null 2>&1; then
    vsh net-destroy "$NET" >/dev/null 2>&1 || true
    vsh net-undefine "$NET" >/dev/null 2>&1 || true
  fi
}
cleanup_libvirt # leftovers of an interrupted run

mkdir -p -- "$REPO_ROOT/build"
WORK=$(mktemp -d "$REPO_ROOT/build/smoke.XXXXXX")
chmod 755 "$WORK" # qemu runs as libvirt-qemu and must reach the disks
KEEP=${SMOKE_KEEP:-}
cleanup() {
  local rc=$?
  cleanup_libvirt
  if [[ $rc -ne 0 && -f $WORK/console.log ]]; then
    log "---- guest console (last 40 lines) ----"
    tail -n 40 "$WORK/console.log" >&2 || true
  fi
  if [[ -n $KEEP ]]; then log "kept $WORK"; else rm -rf -- "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT

T0=$SECONDS
ssh-keygen -q -t ed25519 -N '' -C lago-smoke -f "$WORK/id_ed25519"
qemu-img create -q -f qcow2 -b "$TEMPLATE" -F qcow2 "$WORK/root.qcow2"
qemu-img create -q -f qcow2 "$WORK/data.qcow2" 10M

log "virt-customize (one run: ssh-inject, write, touch, run-command)"
T=$SECONDS
virt-customize -q --format qcow2 -a "$WORK/root.qcow2" \
  --ssh-inject "root:file:$WORK/id_ed25519.pub" \
  --write "/etc/hostname:$VMNAME" \
  --touch /lago-touched \
  --run-command 'echo hi > /lago-run' \
  >"$WORK/virt-customize.log" 2>&1 || { cat "$WORK/virt-customize.log" >&2; die "virt-customize failed"; }
log "virt-customize took $((SECONDS - T)) s"

cat >"$WORK/net.xml" <<EOF
<network>
  <name>$NET</name>
  <forward mode='nat'/>
  <bridge name='$BRIDGE' stp='off' delay='0'/>
  <domain name='lago.local' localOnly='yes'/>
  <dns>
    <host ip='$VMIP'><hostname>$VMNAME</hostname></host>
    <host ip='$OTHERIP'><hostname>othervm</hostname></host>
  </dns>
  <ip address='$SUBNET.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='$SUBNET.100' end='$SUBNET.254'/>
      <host mac='$MAC' name='$VMNAME' ip='$VMIP'/>
    </dhcp>
  </ip>
</network>
EOF

# SMOKE_QEMU_AS_ROOT=1: run qemu as root without relabelling, so libvirt does not chown the
# template (backing file) to libvirt-qemu
SECLABEL=
if [[ -n ${SMOKE_QEMU_AS_ROOT:-} ]]; then
  SECLABEL="  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>"
fi

cat >"$WORK/domain.xml" <<EOF
<domain type='$DOMAIN_TYPE'>
  <name>$DOM</name>
  <memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>256</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$WORK/root.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$WORK/data.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='$NET'/>
      <mac address='$MAC'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <log file='$WORK/console.log' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
$SECLABEL
</domain>
EOF

vsh net-define "$WORK/net.xml" >/dev/null
vsh net-start "$NET" >/dev/null
vsh define "$WORK/domain.xml" >/dev/null

SSH=(ssh -i "$WORK/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o ConnectTimeout=5 -o BatchMode=yes -o LogLevel=ERROR "root@$VMIP")

TSTART=$SECONDS
vsh start "$DOM" >/dev/null
ready=
while ((SECONDS - TSTART < 60)); do
  if "${SSH[@]}" true 2>/dev/null; then ready=1; break; fi
  sleep 1
done
[[ -n $ready ]] || die "no SSH to $VMIP within 60 s"
BOOT_S=$((SECONDS - TSTART))
log "virsh start -> SSH ready: $BOOT_S s"

check() { # description expected-regex command...
  local what=$1 re=$2 out
  shift 2
  out=$("${SSH[@]}" "$@" 2>&1) || die "$what: '$*' failed: $out"
  [[ $out =~ $re ]] || die "$what: '$*' gave: $out"
  log "ok: $what"
}
check hostname "^$VMNAME\$" hostname
check "second disk" '^/dev/vdb$' ls /dev/vdb
check "resolv.conf search" "search lago.local" cat /etc/resolv.conf
check "resolv.conf nameserver" "nameserver $SUBNET.1" cat /etc/resolv.conf
check "ip address" "inet $VMIP/24" ip -4 addr show eth0
check "default route" "default via $SUBNET.1" ip route
check "virt-customize --touch" '^yes$' 'test -e /lago-touched && echo yes'
check "virt-customize --run-command" '^hi$' cat /lago-run
check "os-release" 'ID=lagotiny' cat /etc/os-release
check "applets" 'Mem:' 'cat /proc/uptime >/dev/null && ls / >/dev/null && uptime >/dev/null && mount >/dev/null && free'
check "nslookup othervm" "$OTHERIP" nslookup othervm
check "nslookup fqdn" "$VMIP" nslookup "$VMNAME.lago.local"
# ping -c1 resolves through the static busybox's resolver; the address itself does not answer
out=$("${SSH[@]}" 'ping -c1 -W1 othervm' 2>&1 || true)
if [[ $out == *"($OTHERIP)"* ]]; then
  log "ok: ping resolves othervm ($OTHERIP)"
else
  log "NOTE: ping could not resolve othervm: $out"
fi
check "ping gateway" '1 packets received' ping -c1 -W2 "$SUBNET.1"
check "acpid running" 'acpid' 'ps | grep -v grep | grep acpid'

TS=$SECONDS
vsh shutdown "$DOM" >/dev/null
off=
while ((SECONDS - TS < 30)); do
  if [[ $(vsh domstate "$DOM" 2>/dev/null) == "shut off" ]]; then off=1; break; fi
  sleep 1
done
[[ -n $off ]] || die "domain did not power off within 30 s of virsh shutdown (ACPI)"
log "ok: ACPI shutdown took $((SECONDS - TS)) s"
grep -q 'ACPI power button' "$WORK/console.log" || die "console log does not show the ACPI handler"
grep -q 'Linux version' "$WORK/console.log" || die "console log does not show the kernel boot"

log "PASS: boot-to-SSH ${BOOT_S} s, total $((SECONDS - T0)) s"
