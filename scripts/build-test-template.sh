#!/usr/bin/env bash
# Build a tiny, self-booting Lago template repository for the real-stack tests.
#
#   scripts/build-test-template.sh OUTDIR
#
# Everything comes from Debian packages already on the machine (linux-source, busybox-static,
# dropbear-bin, openssh-sftp-server, extlinux); no network, no loop devices (libguestfs does the disk work).
# The kernel is built from Debian's linux-source with the configuration below (everything the guest
# needs built in, LZ4-compressed, no initramfs): Debian's own kernel spends about 3 s of every boot under
# TCG decompressing its 8 MB XZ image and 1-2 s loading modules. It is built once per configuration and
# source, and kept in LAGO_TINY_KERNEL_CACHE (default /var/cache/lago-test-kernel).
# Outputs in OUTDIR (see scripts/README.md):
#   lago-tiny-v3.qcow2{,.hash,.metadata,.xz}      the good template; its metadata declares
#                                                 bootstrap by cloud-init seed (then SSH password)
#   lago-tiny-ssh-v3.qcow2{,.hash,.metadata,.xz}  same image; metadata publishes only the root
#                                                 password (lago bootstraps over a first SSH login)
#   lago-tiny-vc-v3.qcow2{,.hash,.metadata,.xz}   same image; metadata declares neither (lago falls
#                                                 back to virt-customize)
#   lago-tiny-badhash-v3.qcow2{,.hash,.metadata}  same image, WRONG sha1 in .hash
#   lago-tiny-backed-v3.qcow2{,.hash,.metadata}   a qcow2 whose header names a backing file
#   repo.metadata        Lago repository, file source rooted at OUTDIR, every image under version
#                        TEMPLATE_VERSION (v3). A store keeps what it fetched under a version, so a change a
#                        user must get is published under a new one: v2 added the cidata datasource's bootcmd
#                        (lago's first-boot builds), v3 the kernel built here.
#   repo-http.metadata.in  same, http source with baseurl @BASEURL@
#   .stamp               sha256 of this script; when it matches, a rerun exits at once
set -Eeuo pipefail

die() { printf 'build-test-template: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (exit $?, line $LINENO): $BASH_COMMAND"' ERR
log() { printf 'build-test-template: %s\n' "$*" >&2; }

[[ $# -eq 1 ]] || die "usage: $0 OUTDIR (absolute path)"
OUTDIR=$1
[[ $OUTDIR == /* ]] || die "OUTDIR must be an absolute path: $OUTDIR"
OUTDIR=${OUTDIR%/}

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
SELF_SHA=$(sha256sum -- "$SELF" | cut -d' ' -f1)

if [[ -f $OUTDIR/.stamp && $(<"$OUTDIR/.stamp") == "$SELF_SHA" ]]; then
  log "up to date: $OUTDIR (stamp matches this script)"
  exit 0
fi

for tool in guestfish qemu-img xz sha1sum busybox dropbear dropbearkey ldd tar python3 make gcc flex bison bc lz4 sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (see scripts/README.md for the Debian packages)"
done

KSRC=${LAGO_TINY_KERNEL_SOURCE:-}
if [[ -z $KSRC ]]; then
  # newest Debian kernel source (package linux-source)
  for t in /usr/src/linux-source-*.tar.xz; do
    [[ -e $t ]] && KSRC=$t
  done
fi
[[ -n $KSRC && -r $KSRC ]] || die "no kernel source in /usr/src (install linux-source)"
KCACHE=${LAGO_TINY_KERNEL_CACHE:-/var/cache/lago-test-kernel}
BUSYBOX=$(command -v busybox)
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static "$BUSYBOX" || BUSYBOX=/bin/busybox
file_is_static "$BUSYBOX" || die "busybox is not static (install busybox-static)"
MBR=/usr/lib/EXTLINUX/mbr.bin
[[ -r $MBR ]] || MBR=/usr/lib/syslinux/mbr/mbr.bin
[[ -r $MBR ]] || die "extlinux mbr.bin not found (install extlinux syslinux-common)"
# The root password the repository publishes in the templates' metadata (Lago's `root-password`).
ROOT_PASSWORD=${LAGO_TINY_ROOT_PASSWORD:-lago-tiny}
# The repository version of every image: bump it when a change must reach stores that hold the old one.
TEMPLATE_VERSION=v3

export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
if [[ -z ${LIBGUESTFS_BACKEND_SETTINGS:-} ]]; then
  export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
fi

mkdir -p -- "$OUTDIR"
rm -f -- "$OUTDIR/.stamp"
WORK=$(mktemp -d "$OUTDIR/.work.XXXXXX")
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT

START=$SECONDS
ROOT=$WORK/root
MTIME=@${SOURCE_DATE_EPOCH:-1700000000}

# ---------------------------------------------------------------- kernel
# tinyconfig plus this fragment; no modules, no initramfs. The root is found by the MBR partition's
# PARTUUID (the disk signature written below), so the kernel mounts it itself, on any disk bus.
KCONFIG_FRAGMENT='
CONFIG_64BIT=y
CONFIG_SMP=y
CONFIG_NR_CPUS=64
CONFIG_LOCALVERSION="-lago-tiny"
CONFIG_DEFAULT_HOSTNAME="lago-tiny"
CONFIG_KERNEL_LZ4=y
CONFIG_PRINTK=y
CONFIG_PRINTK_TIME=y
CONFIG_EARLY_PRINTK=y
CONFIG_BUG=y
CONFIG_MULTIUSER=y
CONFIG_SYSVIPC=y
CONFIG_POSIX_TIMERS=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_EVENTFD=y
CONFIG_SHMEM=y
CONFIG_AIO=y
CONFIG_FILE_LOCKING=y
CONFIG_ADVISE_SYSCALLS=y
CONFIG_MEMBARRIER=y
CONFIG_KALLSYMS=y
CONFIG_FHANDLE=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_NO_HZ_IDLE=y
CONFIG_HZ_250=y
CONFIG_HYPERVISOR_GUEST=y
CONFIG_PARAVIRT=y
CONFIG_KVM_GUEST=y
CONFIG_RANDOMIZE_BASE=n
CONFIG_CPU_MITIGATIONS=n
CONFIG_SPECULATION_MITIGATIONS=n
CONFIG_MODULES=n
CONFIG_BLOCK=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_ACPI=y
CONFIG_ACPI_BUTTON=y
CONFIG_PCI=y
CONFIG_PCI_MSI=y
CONFIG_HOTPLUG_PCI=y
CONFIG_HOTPLUG_PCI_ACPI=y
CONFIG_NET=y
CONFIG_PACKET=y
CONFIG_UNIX=y
CONFIG_INET=y
CONFIG_IPV6=y
CONFIG_NETDEVICES=y
CONFIG_NET_CORE=y
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_PCI_LEGACY=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_BLK=y
CONFIG_SCSI=y
CONFIG_BLK_DEV_SD=y
CONFIG_BLK_DEV_SR=y
CONFIG_SCSI_LOWLEVEL=y
CONFIG_SCSI_VIRTIO=y
CONFIG_ATA=y
CONFIG_ATA_SFF=y
CONFIG_ATA_BMDMA=y
CONFIG_ATA_PIIX=y
CONFIG_HW_RANDOM=y
CONFIG_HW_RANDOM_VIRTIO=y
CONFIG_TTY=y
CONFIG_UNIX98_PTYS=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_SERIAL_8250_NR_UARTS=4
CONFIG_SERIAL_8250_RUNTIME_UARTS=4
CONFIG_INPUT=y
CONFIG_INPUT_EVDEV=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_PROC_FS=y
CONFIG_PROC_SYSCTL=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_EXT4_FS=y
CONFIG_ISO9660_FS=y
CONFIG_JOLIET=y
CONFIG_MSDOS_FS=y
CONFIG_VFAT_FS=y
CONFIG_NLS=y
CONFIG_NLS_CODEPAGE_437=y
CONFIG_NLS_ISO8859_1=y
CONFIG_NLS_UTF8=y
CONFIG_MSDOS_PARTITION=y
CONFIG_PARTITION_ADVANCED=y
CONFIG_RTC_CLASS=y
CONFIG_RTC_DRV_CMOS=y
CONFIG_BLK_DEV_INITRD=n
CONFIG_UNWINDER_FRAME_POINTER=y
CONFIG_FTRACE=n
CONFIG_SECURITY=n
CONFIG_AUDIT=n
CONFIG_SWAP=n
CONFIG_DRM=n
CONFIG_VT=n
CONFIG_WLAN=n
CONFIG_WIRELESS=n
CONFIG_ETHERNET=n
CONFIG_USB_SUPPORT=n
CONFIG_SOUND=n
'
# the cache key: the source tarball, the fragment and the compiler
KEY=$( { sha256sum < "$KSRC"; printf '%s' "$KCONFIG_FRAGMENT"; gcc --version | head -1; } | sha256sum | cut -c1-16)
KIMAGE=$KCACHE/$KEY/bzImage
if [[ -r $KIMAGE ]]; then
  log "kernel: cached $KIMAGE"
else
  log "kernel: building from $KSRC (once per source and configuration: about 10 min on 2 cores)"
  KBUILD=$WORK/kernel
  mkdir -p "$KBUILD"
  tar -xJf "$KSRC" -C "$KBUILD" --strip-components=1 || die "cannot unpack $KSRC"
  printf '%s' "$KCONFIG_FRAGMENT" > "$WORK/lago-tiny.config"
  (cd "$KBUILD" && make -s tinyconfig >/dev/null \
    && ./scripts/kconfig/merge_config.sh -m .config "$WORK/lago-tiny.config" >/dev/null 2>&1 \
    && make -s olddefconfig >/dev/null 2>&1) || die "kernel configuration failed"
  # olddefconfig silently drops an option whose dependencies are missing: every line of the fragment must hold.
  while IFS= read -r line; do
    [[ $line == CONFIG_* ]] || continue
    if [[ $line == *=n ]]; then
      ! grep -q "^${line%=n}=" "$KBUILD/.config" || die "kernel configuration: $line did not hold"
    else
      grep -qxF -- "$line" "$KBUILD/.config" || die "kernel configuration: $line did not hold"
    fi
  done <<<"$KCONFIG_FRAGMENT"
  make -C "$KBUILD" -s -j"$(nproc)" KBUILD_BUILD_TIMESTAMP="$(date -u -d "$MTIME")" \
    KBUILD_BUILD_USER=lago KBUILD_BUILD_HOST=lago bzImage >"$WORK/kernel.log" 2>&1 \
    || { tail -n 30 "$WORK/kernel.log" >&2; die "kernel build failed (log above)"; }
  mkdir -p "$KCACHE/$KEY"
  install -m 0644 "$KBUILD/arch/x86/boot/bzImage" "$KIMAGE.tmp" && mv -f "$KIMAGE.tmp" "$KIMAGE"
  cp "$KBUILD/.config" "$KCACHE/$KEY/config"
  rm -rf -- "$KBUILD"
fi
# the MBR disk signature; the root partition is PARTUUID=$DISK_ID-01
DISK_ID=4c61676f

# ---------------------------------------------------------------- root filesystem
mkdir -p "$ROOT"
cd "$ROOT"
mkdir -p bin sbin usr/bin usr/sbin lib lib64 etc/init.d etc/dropbear etc/acpi/PWRF \
  usr/share/udhcpc root/.ssh proc sys dev tmp run var/log var/lib mnt boot/extlinux home
chmod 700 root root/.ssh
chmod 1777 tmp
ln -s ../run var/run

install -m 0755 "$BUSYBOX" bin/busybox
while read -r applet; do
  [[ -n $applet && $applet != bin/busybox ]] || continue
  [[ -e $applet || -L $applet ]] && continue
  mkdir -p "$(dirname "$applet")"
  ln -s /bin/busybox "$applet"
done < <("$BUSYBOX" --list-full)
[[ -L bin/sh ]] || ln -sf /bin/busybox bin/sh

copy_with_libs() { # copy an executable and the shared libraries ldd names for it
  local exe=$1 dest=$2 lib
  install -D -m 0755 "$exe" ".$dest"
  while read -r lib; do
    [[ -n $lib ]] || continue
    [[ -e .$lib ]] && continue
    install -D -m 0755 "$(readlink -f "$lib")" ".$lib"
  done < <(ldd "$exe" | grep -oE '/[^ ]+\.so[^ ]*')
}
copy_with_libs /usr/sbin/dropbear /usr/sbin/dropbear
copy_with_libs /usr/bin/dropbearkey /usr/bin/dropbearkey
[[ -e lib64/ld-linux-x86-64.so.2 ]] || die "dynamic loader was not copied"

# SFTP for lago copy-to-vm/copy-from-vm/collect: dropbear runs /usr/lib/sftp-server for the
# sftp subsystem; OpenSSH's (Debian openssh-sftp-server) needs only libc.
SFTP_SERVER=/usr/lib/openssh/sftp-server
[[ -x $SFTP_SERVER ]] || die "missing $SFTP_SERVER (install openssh-sftp-server)"
copy_with_libs "$SFTP_SERVER" /usr/lib/sftp-server

cat > etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
ROOT_HASH=$(printf '%s\n' "$ROOT_PASSWORD" | "$BUSYBOX" mkpasswd -m sha512) || die "mkpasswd failed"
cat > etc/shadow <<EOF
root:$ROOT_HASH:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chmod 600 etc/shadow
cat > etc/group <<'EOF'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
EOF
printf '/bin/sh\n/bin/ash\n' > etc/shells
printf 'lago-tiny\n' > etc/hostname
cat > etc/hosts <<'EOF'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
EOF
cat > etc/fstab <<'EOF'
LABEL=lagoroot	/	ext4	rw,relatime	0	1
proc	/proc	proc	defaults	0	0
EOF
cat > etc/nsswitch.conf <<'EOF'
passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
EOF
cat > etc/os-release <<'EOF'
NAME="Lago tiny"
ID=lagotiny
VERSION_ID=1
VERSION="1"
PRETTY_NAME="Lago tiny 1 (busybox + dropbear)"
HOME_URL="https://github.com/lago-project/lago"
EOF
printf 'Lago tiny 1\n' > etc/issue
: > etc/resolv.conf
: > root/.ssh/authorized_keys
chmod 600 root/.ssh/authorized_keys
printf 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' > etc/profile

cat > etc/inittab <<'EOF'
# busybox init
::sysinit:/etc/init.d/rcS
::respawn:/usr/sbin/dropbear -F -E -R -p 22
::respawn:/sbin/acpid -f -c /etc/acpi
::respawn:/bin/busybox uevent /sbin/lago-hotplug
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/poweroff
::shutdown:/etc/init.d/rcK
EOF

cat > etc/init.d/rcS <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
# busybox-static has no mountpoint applet
mounted() { grep -q "^[^ ]* $1 " /proc/mounts 2>/dev/null; }
[ -e /proc/mounts ] || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mounted /dev/shm || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -o remount,rw /
mounted /tmp || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mounted /run || mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
/etc/init.d/cidata
if [ -s /etc/hostname ]; then hostname -F /etc/hostname; fi
ip link set lo up
for d in /sys/class/net/eth*; do
  [ -e "$d" ] || continue
  i=${d##*/}
  ip link set "$i" up
  udhcpc -f -S -i "$i" -p "/run/udhcpc.$i.pid" -s /usr/share/udhcpc/default.script </dev/null >/dev/console 2>&1 &
done
# host key for the preferred algorithm, so the first SSH connection does not wait for it
if [ ! -s /etc/dropbear/dropbear_ed25519_host_key ]; then
  dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
fi
echo "lago-tiny: sysinit done ($(hostname))"
EOF

cat > etc/init.d/cidata <<'EOF'
#!/bin/sh
# A tiny cloud-init NoCloud datasource: reads the filesystem labelled cidata (ISO 9660 or vfat)
# and, once per instance-id, runs user-data `bootcmd` (as cloud-init does, first: lago's first-boot
# build steps) and applies: the host name (meta-data `local-hostname`, user-data `hostname`), root's SSH
# keys (user-data `ssh_authorized_keys`) and root's password (user-data `chpasswd.users`, type text).
# It reads the YAML that lago writes (one key or list item a line, plain or double-quoted scalars with
# the escapes \\ \" \n \t \r), not YAML in general.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
dev=$(findfs LABEL=cidata 2>/dev/null) || dev=$(findfs LABEL=CIDATA 2>/dev/null) || exit 0
mnt=/run/cidata
mkdir -p "$mnt"
mount -o ro "$dev" "$mnt" 2>/dev/null || { echo "cidata: cannot mount $dev"; exit 0; }
trap 'umount "$mnt" 2>/dev/null' EXIT
iid=$(sed -n 's/^instance-id:[[:space:]]*//p' "$mnt/meta-data" 2>/dev/null | tr -d "\"'\r")
done_file=/var/lib/cidata/instance-id
if [ -z "$iid" ] || [ "$(cat "$done_file" 2>/dev/null)" = "$iid" ]; then exit 0; fi
awk '
function unq(s) {
  sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s)
  if (s ~ /^".*"$/) {
    s = substr(s, 2, length(s) - 2)
    gsub(/\\\\/, "\001", s); gsub(/\\"/, "\"", s); gsub(/\\t/, "\t", s); gsub(/\\n/, "\n", s); gsub(/\\r/, "\r", s); gsub(/\001/, "\\", s)
  } else if (s ~ /^\047.*\047$/) {
    s = substr(s, 2, length(s) - 2); gsub(/\047\047/, "\047", s)
  }
  return s
}
/^[^ #-]/ { sec = "" }
/^local-hostname:/ { v = $0; sub(/^local-hostname:/, "", v); print "M\t" unq(v); next }
/^hostname:/ { v = $0; sub(/^hostname:/, "", v); print "H\t" unq(v); next }
/^ssh_authorized_keys:/ { sec = "keys"; next }
/^chpasswd:/ { sec = "chpasswd"; next }
/^bootcmd:/ { sec = "bootcmd"; next }
sec == "bootcmd" && /^ +- / { v = $0; sub(/^ +- /, "", v); print unq(v) > "/run/cidata.bootcmd"; next }
sec == "keys" && /^ +- / { v = $0; sub(/^ +- /, "", v); print "K\t" unq(v); next }
sec == "chpasswd" && /^ +(- )?name:/ { v = $0; sub(/^ +(- )?name:/, "", v); who = unq(v); next }
sec == "chpasswd" && /^ +password:/ && who == "root" { v = $0; sub(/^ +password:/, "", v); print "P\t" unq(v); next }
' "$mnt/meta-data" "$mnt/user-data" > /run/cidata.parsed 2>/dev/null
chmod 600 /run/cidata.parsed
if [ -s /run/cidata.bootcmd ]; then
  sh /run/cidata.bootcmd </dev/null || echo "cidata: bootcmd exited with $?"
fi
rm -f /run/cidata.bootcmd
host= keys_added=0
while IFS="$(printf '\t')" read -r tag value; do
  case $tag in
    M) [ -n "$host" ] || host=$value ;;
    H) host=$value ;;
    K)
      mkdir -p /root/.ssh && chmod 700 /root/.ssh
      grep -qxF "$value" /root/.ssh/authorized_keys 2>/dev/null || printf '%s\n' "$value" >> /root/.ssh/authorized_keys
      chmod 600 /root/.ssh/authorized_keys
      keys_added=$((keys_added + 1))
      ;;
    P)
      hash=$(printf '%s\n' "$value" | mkpasswd -m sha512) || continue
      awk -F: -v OFS=: -v h="$hash" '$1 == "root" { $2 = h } { print }' /etc/shadow > /etc/shadow.cidata \
        && chmod 600 /etc/shadow.cidata && mv /etc/shadow.cidata /etc/shadow
      ;;
  esac
done < /run/cidata.parsed
rm -f /run/cidata.parsed
[ -z "$host" ] || printf '%s\n' "$host" > /etc/hostname
mkdir -p /var/lib/cidata
printf '%s\n' "$iid" > "$done_file"
sync
echo "cidata: instance $iid: hostname ${host:-unchanged}, $keys_added key(s)"
EOF

cat > etc/init.d/rcK <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
echo "lago-tiny: shutting down"
for f in /run/udhcpc.*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
sync
umount -a -r 2>/dev/null
mount -o remount,ro / 2>/dev/null
sync
EOF

cat > usr/share/udhcpc/default.script <<'EOF'
#!/bin/sh
# udhcpc hook: configure $interface from the DHCP answer.
RESOLV_CONF=/etc/resolv.conf
n=${interface#eth}
case $n in ''|*[!0-9]*) n=0 ;; esac
metric=$((100 + n))

case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/"; then
      ip -4 addr flush dev "$interface"
    fi
    ip addr replace "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    if [ -n "$router" ]; then
      while ip route del default dev "$interface" 2>/dev/null; do :; done
      for r in $router; do
        ip route add default via "$r" dev "$interface" metric "$metric" && break
      done
    fi
    if [ -n "$dns" ]; then
      tmp="$RESOLV_CONF.$$"
      {
        s=${search:-$domain}
        [ -n "$s" ] && echo "search $s"
        for d in $dns; do echo "nameserver $d"; done
      } > "$tmp"
      mv "$tmp" "$RESOLV_CONF"
    fi
    echo "udhcpc: $interface $ip/${mask:-24} router=${router:-none} dns=${dns:-none} domain=${domain:-none}"
    ;;
esac
exit 0
EOF

cat > etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
echo "lago-tiny: ACPI power button -> poweroff" >/dev/console
exec /sbin/poweroff
EOF

# NICs plugged in while the VM runs (lago re-attaches them when their network restarts) get DHCP as
# booted ones do, as udev/NetworkManager would on a real distribution.
cat > sbin/lago-hotplug <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
[ "$SUBSYSTEM" = net ] || exit 0
case "$INTERFACE" in eth*) ;; *) exit 0 ;; esac
pid=/run/udhcpc.$INTERFACE.pid
case "$ACTION" in
  add)
    [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
    ip link set "$INTERFACE" up
    udhcpc -f -S -i "$INTERFACE" -p "$pid" -s /usr/share/udhcpc/default.script </dev/null >/dev/console 2>&1 &
    echo "lago-tiny: $INTERFACE plugged in" >/dev/console
    ;;
  remove)
    [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
    rm -f "$pid"
    ;;
esac
EOF

chmod 755 etc/init.d/rcS etc/init.d/cidata etc/init.d/rcK usr/share/udhcpc/default.script etc/acpi/PWRF/00000080 sbin/lago-hotplug

install -m 0644 "$KIMAGE" boot/vmlinuz
# acpi=noirq: PCI interrupts routed by the BIOS's table, not by ACPI's AML (about 0.2 s per link under TCG);
# ACPI still handles the power button and PCI hotplug. i8042.*: no PS/2 keyboard or mouse probe (0.3-0.4 s).
cat > boot/extlinux/extlinux.conf <<EOF
DEFAULT lago
PROMPT 0
TIMEOUT 1
LABEL lago
  LINUX /boot/vmlinuz
  APPEND root=PARTUUID=$DISK_ID-01 rootfstype=ext4 rootwait rw console=ttyS0,115200n8 panic=-1 acpi=noirq i8042.noaux i8042.nokbd
EOF

# ---------------------------------------------------------------- disk image
ROOT_TAR=$WORK/root.tar
tar --create --file "$ROOT_TAR" --directory "$ROOT" --numeric-owner --owner=0 --group=0 \
  --mtime="$MTIME" --sort=name .
RAW=$WORK/disk.raw
log "kernel $KEY, root tree $(du -sh "$ROOT" | cut -f1); running guestfish (TCG)"
(cd "$WORK" && guestfish -N "$RAW=disk:128M" -- \
  part-disk /dev/sda mbr : \
  part-set-bootable /dev/sda 1 true : \
  mkfs ext4 /dev/sda1 features:^64bit,^metadata_csum label:lagoroot : \
  mount /dev/sda1 / : \
  tar-in "$ROOT_TAR" / : \
  extlinux /boot/extlinux : \
  sync : \
  umount-all) || die "guestfish failed"
# extlinux's 440-byte boot code goes into the MBR of the raw file (no loop device needed)
dd if="$MBR" of="$RAW" bs=440 count=1 conv=notrunc status=none || die "writing the MBR failed"
printf "\\x${DISK_ID:6:2}\\x${DISK_ID:4:2}\\x${DISK_ID:2:2}\\x${DISK_ID:0:2}" \
  | dd of="$RAW" bs=1 seek=440 count=4 conv=notrunc status=none || die "writing the disk signature failed"

IMG=lago-tiny-$TEMPLATE_VERSION.qcow2
qemu-img convert -f raw -O qcow2 "$RAW" "$WORK/$IMG" || die "qemu-img convert failed"
rm -f -- "$RAW" "$ROOT_TAR"

# ---------------------------------------------------------------- repository files
# json_metadata [BOOTSTRAP [ROOT_PASSWORD]]: a template's .metadata (Lago's `distro`, `root-password`;
# lago's `bootstrap`: the methods the image supports, in order of preference; see the README).
json_metadata() {
  python3 -c 'import json, sys
meta = {"distro": "lagotiny", "root-password": sys.argv[2]}
if sys.argv[1]:
    meta["bootstrap"] = sys.argv[1].split(",")
print(json.dumps(meta))' "${1:-}" "${2:-}"
}
SHA=$(sha1sum "$WORK/$IMG" | cut -d' ' -f1)
printf '%s' "$SHA" > "$WORK/$IMG.hash"
json_metadata cloud-init,ssh "$ROOT_PASSWORD" > "$WORK/$IMG.metadata"
xz -T0 -1 -c "$WORK/$IMG" > "$WORK/$IMG.xz" || die "xz failed"

# Same image, other metadata: the bootstrap paths lago chooses from a template's metadata.
SSH_IMG=lago-tiny-ssh-$TEMPLATE_VERSION.qcow2
VC_IMG=lago-tiny-vc-$TEMPLATE_VERSION.qcow2
for v in "$SSH_IMG" "$VC_IMG"; do
  ln "$WORK/$IMG" "$WORK/$v"
  ln "$WORK/$IMG.xz" "$WORK/$v.xz"
  printf '%s' "$SHA" > "$WORK/$v.hash"
done
json_metadata "" "$ROOT_PASSWORD" > "$WORK/$SSH_IMG.metadata"
json_metadata > "$WORK/$VC_IMG.metadata"

BAD=lago-tiny-badhash-$TEMPLATE_VERSION.qcow2
ln "$WORK/$IMG" "$WORK/$BAD"
ln "$WORK/$IMG.xz" "$WORK/$BAD.xz"
printf '%s' "$(printf 'not the image' | sha1sum | cut -d' ' -f1)" > "$WORK/$BAD.hash"
[[ $(<"$WORK/$BAD.hash") != "$SHA" ]] || die "bad hash equals the good one"
json_metadata > "$WORK/$BAD.metadata"

BACKED=lago-tiny-backed-$TEMPLATE_VERSION.qcow2
[[ -r /etc/hostname ]] || die "/etc/hostname is needed as the backing file name"
qemu-img create -q -f qcow2 -b /etc/hostname -F raw "$WORK/$BACKED" 16M \
  || die "qemu-img create (backed) failed"
printf '%s' "$(sha1sum "$WORK/$BACKED" | cut -d' ' -f1)" > "$WORK/$BACKED.hash"
json_metadata > "$WORK/$BACKED.metadata"

TS=${SOURCE_DATE_EPOCH:-$(date +%s)}
python3 - "$OUTDIR" "$TS" "$WORK/repo.metadata" "$WORK/repo-http.metadata.in" "$TEMPLATE_VERSION" "$IMG" "$SSH_IMG" "$VC_IMG" "$BAD" "$BACKED" <<'EOF'
import json, sys
root, ts, out_file, out_http, version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
img, ssh_img, vc_img, bad, backed = sys.argv[6:11]
def repo(source):
    def tmpl(handle):
        return {"versions": {version: {"source": "local", "handle": handle, "timestamp": ts}}}
    return {
        "name": "lago-test",
        "sources": {"local": source},
        "templates": {
            "lago-tiny": tmpl(img),
            "lago-tiny-ssh": tmpl(ssh_img),
            "lago-tiny-vc": tmpl(vc_img),
            "lago-tiny-badhash": tmpl(bad),
            "lago-tiny-backed": tmpl(backed),
        },
    }
with open(out_file, "w") as f:
    json.dump(repo({"type": "file", "args": {"root": root}}), f, indent=2)
    f.write("\n")
with open(out_http, "w") as f:
    json.dump(repo({"type": "http", "args": {"baseurl": "@BASEURL@"}}), f, indent=2)
    f.write("\n")
EOF

# move results into place (same filesystem: rename), then stamp
for f in "$IMG" "$IMG.hash" "$IMG.metadata" "$IMG.xz" \
         "$SSH_IMG" "$SSH_IMG.xz" "$SSH_IMG.hash" "$SSH_IMG.metadata" \
         "$VC_IMG" "$VC_IMG.xz" "$VC_IMG.hash" "$VC_IMG.metadata" \
         "$BAD" "$BAD.xz" "$BAD.hash" "$BAD.metadata" \
         "$BACKED" "$BACKED.hash" "$BACKED.metadata" repo.metadata repo-http.metadata.in; do
  mv -f -- "$WORK/$f" "$OUTDIR/$f"
done
# the hard links were broken by separate renames only if mv copied; re-link to be sure
for v in "$BAD" "$SSH_IMG" "$VC_IMG"; do
  ln -f -- "$OUTDIR/$IMG" "$OUTDIR/$v"
  ln -f -- "$OUTDIR/$IMG.xz" "$OUTDIR/$v.xz"
done
# an earlier build's images of another version: the repository names them no more
find "$OUTDIR" -maxdepth 1 -name 'lago-tiny*-v*.qcow2*' ! -name "*-$TEMPLATE_VERSION.qcow2*" -delete
printf '%s\n' "$SELF_SHA" > "$OUTDIR/.stamp"
log "done in $((SECONDS - START)) s: $OUTDIR ($(du -h "$OUTDIR/$IMG" | cut -f1) qcow2, sha1 $SHA)"
