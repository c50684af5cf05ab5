#!/usr/bin/env bash
# Installs what lago and its test suite need on Debian 12: the virtualization
# stack, the tools the test template is built from, tmux (the tests drive the CLI
# on a real terminal), and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "install-deps.sh: run as root (apt-get)" >&2; exit 1; }

packages=(
  qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients libguestfs-tools dnsmasq-base
  linux-image-amd64 busybox-static dropbear-bin extlinux syslinux-common
  xz-utils iproute2 python3 openssh-client cpio kmod procps genisoimage
  openssh-sftp-server ansible-core tmux
  linux-source gcc make flex bison bc libelf-dev lz4
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [[ ! -f dist/lago.cjs.cache ]] || [[ -n $(find src bin scripts/build.mjs -newer dist/lago.cjs.cache -print -quit) ]]; then
  npm run -s build
fi
