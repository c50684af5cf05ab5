#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running example environment you can play with:
# installs the dependencies, builds the tiny test template repository, copies
# examples/two-vms into /var/lib/lago/quickstart (two VMs, two NAT nets, a build step, an
# extra disk), applies it, checks the VMs over SSH, walks through one edit (more
# memory for vm01: plan, apply, apply --restart), and leaves the environment
# running with the commands to use and to destroy it. Run it again to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# qemu runs as libvirt's qemu user, which must be able to search every directory above the VMs'
# disks: the environment lives under /var/lib/lago rather than beside this checkout (often in a
# 0700 home).
work=/var/lib/lago/quickstart

bash scripts/install-deps.sh

# libvirtd: use the system's if it runs (a machine with systemd), else the
# test bed's network namespace with its own libvirtd (machines without systemd).
# The VMs' networks live where libvirtd runs: lago must run there too to reach them.
netns=
if pgrep -x libvirtd >/dev/null && ! ip netns identify "$(pgrep -xo libvirtd)" 2>/dev/null | grep -q .; then
  echo "quickstart: using the running libvirtd"
  bash scripts/build-test-template.sh "$root/build/test-template"
else
  bash scripts/testbed.sh up
  netns=lagotest
fi

# A small `lago` for this environment: the test template repository, TCG (works
# everywhere; with working KVM, LAGO_DOMAIN_TYPE=kvm is much faster), and the
# network namespace when there is one. It is what the commands printed below run.
# Its own .lago directory, so that lago never picks up one further up the tree.
mkdir -p "$work/.lago"
if [[ -x $work/lago && -f $work/.lago/default/state.json ]]; then
  echo "quickstart: destroying the previous quickstart environment"
  "$work/lago" destroy --auto-approve --workdir "$work" >/dev/null
fi
{
  echo '#!/bin/sh'
  echo '# lago for the quickstart environment (written by scripts/quickstart.sh).'
  printf 'export LAGO__INIT__TEMPLATE_REPO_PATH=%q\n' "$root/build/test-template/repo.metadata"
  echo 'export LAGO_DOMAIN_TYPE="${LAGO_DOMAIN_TYPE:-qemu}"'
  if [[ -n $netns ]]; then
    printf 'exec ip netns exec %q %q %q "$@"\n' "$netns" "$(command -v node)" "$root/bin/lago.js"
  else
    printf 'exec %q %q "$@"\n' "$(command -v node)" "$root/bin/lago.js"
  fi
} >"$work/lago"
chmod 0755 "$work/lago"
cp examples/two-vms/LagoInitFile "$work/LagoInitFile"
# The copy lives beside the wrapper: its schema comment points back into the repository.
sed -i "s|\$schema=\.\./\.\./schemas/|\$schema=$root/schemas/|" "$work/LagoInitFile"
cd "$work"

bold=; plain=
if [[ -t 1 ]]; then bold=$(tput bold 2>/dev/null || true); plain=$(tput sgr0 2>/dev/null || true); fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() {
  printf '$ %s\n' "$*"
  "$@"
}
lago() { "$work/lago" "$@"; }

say "Check the init file, then create the environment"
run lago validate
run lago apply --auto-approve
echo "--- vm01 says it is: $(lago ssh vm01 hostname)"
echo "--- vm02's build step wrote: $(lago ssh vm02 cat /etc/motd)"
run lago ssh vm01 ping -c1 -W5 vm02

say "Nothing to do when nothing changed"
run lago plan

say "One edit: vm01 gets 384 MiB instead of 256"
# vm01 is the first domain of the file: change its memory only.
sed -i '0,/memory: 256/s//memory: 384/' LagoInitFile
run grep -n -A1 '^  vm01:' LagoInitFile
run lago plan
say "Apply it: recorded now, it takes effect at vm01's next restart (vm02 is not touched)"
run lago apply --auto-approve
say "Restart vm01 to use its new memory"
run lago apply --restart --auto-approve
echo "--- vm01 now has: $(lago ssh vm01 head -n1 /proc/meminfo)"

cat <<EOF

quickstart: done. The example environment is running; its init file is $work/LagoInitFile.
Play with it (\`./lago\` is lago run where this environment's libvirt lives${netns:+, in network namespace $netns}):

  cd $work
  ./lago status                 # the VMs, their addresses, whether SSH answers
  ./lago shell vm01             # a shell on vm01 (exit with Ctrl-D)
  ./lago ssh vm02 cat /etc/motd # one command on vm02
  ./lago plan                   # after editing LagoInitFile: what would change
  ./lago apply                  # make it so

When you are done:

  cd $work && ./lago destroy --auto-approve
EOF
