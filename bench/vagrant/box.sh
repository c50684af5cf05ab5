#!/usr/bin/env bash
# Build the Vagrant box the side-by-side benchmark boots (bench/vagrant.ts): the lago test
# template (scripts/build-test-template.sh) with what Vagrant needs from a busybox + dropbear
# guest, added to a Vagrant home of its own. Offline: a local box file, no network.
#
#   bench/vagrant/box.sh TEMPLATE_QCOW2 OUTDIR
#
# Changes to the image (guestfish, offline, once; cached until the template, Vagrant's key or
# this script change):
#   - Vagrant's insecure public key in /root/.ssh/authorized_keys (the box logs in as root);
#   - /sbin/shutdown, which busybox lacks: Vagrant's Linux guest halts with `shutdown -h now`
#     (vagrant halt / reload); it powers off (or reboots with -r).
# The guest has no scp: bench/vagrant/Vagrantfile provisions with commands over SSH instead of
# uploads, and sets ssh.shell "sh", ssh.sudo_command "%c", insert_key false.
#
# Outputs in OUTDIR: lago-tiny.box (tar: metadata.json + box.img, vagrant-libvirt's box format
# with a `disks` list), home/ (VAGRANT_HOME with the box added as `lago-tiny-bench`), .stamp.
# Needs: qemu-img, guestfish (libguestfs-tools), tar, vagrant with the vagrant-libvirt plugin
# (Debian packages vagrant, vagrant-libvirt). Runs a libguestfs appliance: take the VM lock
# (flock /tmp/lago-vm.lock …) as for anything that boots a VM.
set -Eeuo pipefail

die() { printf 'vagrant-box: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (exit $?, line $LINENO): $BASH_COMMAND"' ERR
log() { printf 'vagrant-box: %s\n' "$*" >&2; }

[[ $# -eq 2 ]] || die "usage: $0 TEMPLATE_QCOW2 OUTDIR"
TEMPLATE=$(readlink -f -- "$1")
OUTDIR=$(readlink -m -- "$2")
BOX_NAME=${LAGO_BENCH_BOX_NAME:-lago-tiny-bench}
[[ -r $TEMPLATE ]] || die "no template image at $1 (build it: bash scripts/build-test-template.sh \"\$PWD/build/test-template\")"

for tool in qemu-img guestfish tar vagrant sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (Debian packages: qemu-utils libguestfs-tools tar vagrant vagrant-libvirt)"
done

# Vagrant's insecure public key, from the installed Vagrant (Debian's or upstream's layout).
PUBKEY=${VAGRANT_INSECURE_PUBKEY:-}
if [[ -z $PUBKEY ]]; then
  for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
    [[ -r $k ]] && PUBKEY=$k
  done
fi
[[ -n $PUBKEY && -r $PUBKEY ]] || die "Vagrant's insecure public key (keys/vagrant.pub) not found; set VAGRANT_INSECURE_PUBKEY"

export VAGRANT_HOME=$OUTDIR/home
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1 VAGRANT_NO_PLUGINS_CHECK=1
SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
KEY=$(cat -- "$SELF" "$PUBKEY" | sha256sum | cut -d' ' -f1)-$(stat -c '%s-%Y' -- "$TEMPLATE")
if [[ -f $OUTDIR/.stamp && $(<"$OUTDIR/.stamp") == "$KEY" ]] \
  && vagrant box list 2>/dev/null | grep -q "^$BOX_NAME "; then
  log "up to date: $OUTDIR/lago-tiny.box (box $BOX_NAME in $VAGRANT_HOME)"
  exit 0
fi
# LAGO_BENCH_CHECK_ONLY=1: only say whether a build is needed (exit 3), without the VM lock.
[[ ${LAGO_BENCH_CHECK_ONLY:-} != 1 ]] || exit 3

vagrant plugin list 2>/dev/null | grep -q '^vagrant-libvirt ' \
  || die "the vagrant-libvirt plugin is missing (apt-get install vagrant-libvirt)"

export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
mkdir -p -- "$OUTDIR"
rm -f -- "$OUTDIR/.stamp"
WORK=$(mktemp -d "$OUTDIR/.work.XXXXXX")
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT
START=$SECONDS

cp --sparse=always -- "$TEMPLATE" "$WORK/box.img"
cat >"$WORK/shutdown" <<'SHIM'
#!/bin/sh
# Vagrant's Linux guest runs `shutdown -h now`; busybox has poweroff and reboot.
case " $* " in
  *" -r "*) exec /bin/busybox reboot ;;
  *) exec /bin/busybox poweroff ;;
esac
SHIM
guestfish --rw -a "$WORK/box.img" -m /dev/sda1 <<GF
mkdir-p /root/.ssh
chmod 0700 /root/.ssh
upload $PUBKEY /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
rm-f /sbin/shutdown
upload $WORK/shutdown /sbin/shutdown
chmod 0755 /sbin/shutdown
GF
# vagrant-libvirt's box format with a disks list: the virtual size comes from the image itself.
printf '{"provider": "libvirt", "format": "qcow2", "disks": [{"path": "box.img", "format": "qcow2"}]}\n' >"$WORK/metadata.json"
tar -C "$WORK" -cf "$WORK/lago-tiny.box" metadata.json box.img
mv -f -- "$WORK/lago-tiny.box" "$OUTDIR/lago-tiny.box"
vagrant box add --force --name "$BOX_NAME" "$OUTDIR/lago-tiny.box" >&2
printf '%s\n' "$KEY" >"$OUTDIR/.stamp"
log "done in $((SECONDS - START)) s: $OUTDIR/lago-tiny.box, box $BOX_NAME in $VAGRANT_HOME"
