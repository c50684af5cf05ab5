#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running example environment and back:
# installs the dependencies, builds the tiny test template repository, applies
# examples/two-vms (two VMs, two NAT nets, a build step, an extra disk),
# checks the VMs over SSH, shows that a second plan is empty, and destroys it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh

# libvirtd: use the system's if it runs (a machine with systemd), else the
# test bed's network namespace with its own libvirtd (machines without systemd).
run=()
if pgrep -x libvirtd >/dev/null && ! ip netns identify "$(pgrep -xo libvirtd)" 2>/dev/null | grep -q .; then
  echo "quickstart: using the running libvirtd"
  bash scripts/build-test-template.sh "$root/build/test-template"
else
  bash scripts/testbed.sh up
  run=(ip netns exec lagotest)
fi

export LAGO__INIT__TEMPLATE_REPO_PATH="$root/build/test-template/repo.metadata"
# TCG works everywhere; on a machine with working KVM, LAGO_DOMAIN_TYPE=kvm is much faster.
# (lago sets libguestfs's backend variables for virt-customize from it.)
export LAGO_DOMAIN_TYPE=${LAGO_DOMAIN_TYPE:-qemu}
# qemu runs as libvirt's qemu user, which must be able to search every directory above the VMs' disks:
# keep the environment's state and disks under /var/lib/lago rather than beside this checkout (often in a 0700 home).
workdir=/var/lib/lago/quickstart/.lago
lago() { "${run[@]}" "$root/bin/lago.js" --workdir "$workdir" "$@"; }

cd examples/two-vms
lago validate
lago apply --auto-approve
echo "--- vm01 says it is: $(lago ssh vm01 hostname)"
echo "--- vm02's build step wrote: $(lago ssh vm02 cat /etc/motd)"
lago ssh vm01 ping -c1 -W5 vm02
lago plan
lago destroy --auto-approve
echo "quickstart: done. The example environment was created, checked and destroyed."
