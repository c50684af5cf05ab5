/**
 * The everyday verbs (Lago's names): status, start/stop/shutdown, shell, ssh,
 * ssh-config, console, copy-to-vm/copy-from-vm, deploy, collect,
 * ansible_hosts, snapshot/revert, export, template, env, doctor. Registered
 * here; their implementations (`ops-actions.ts`) load only when one runs.
 */
import type { Command } from "commander";
import type { Cli } from "./main.ts";
import { attachExamples, type Example } from "./examples.ts";
import { initFileOptions, positiveSeconds } from "./global-options.ts";
import type { InitFileOpts } from "./init-file.ts";

const actions = (): Promise<typeof import("./ops-actions.ts")> => import("./ops-actions.ts");

/** Add the everyday verbs to `program`. */
export function addOpsCommands(program: Command, cli: Cli): void {
  program
    .command("status")
    .description("show each VM (state, addresses per net, whether SSH answers, pending restart) and net, and the templates in use")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }) => (await actions()).status(cli, opts));

  program
    .command("start")
    .description("start VMs (all by default) and wait until SSH answers")
    .argument("[vm...]", "VM names")
    .option("--json", "print the outcome as JSON")
    .action(async (vms: string[], opts: { json?: boolean }) => (await actions()).power(cli, "start", vms, opts));

  program
    .command("stop")
    .description("power off VMs at once (all by default); plans keep them stopped until `lago start`")
    .argument("[vm...]", "VM names")
    .option("--json", "print the outcome as JSON")
    .action(async (vms: string[], opts: { json?: boolean }) => (await actions()).power(cli, "stop", vms, opts));

  program
    .command("shutdown")
    .description("shut VMs down gracefully (ACPI; powered off after [lago] shutdown_timeout); plans keep them stopped until `lago start`")
    .argument("[vm...]", "VM names")
    .option("-r, --reboot", "start them again afterwards (a cold boot: pending changes take effect)")
    .option("--json", "print the outcome as JSON")
    .action(async (vms: string[], opts: { json?: boolean; reboot?: boolean }) => (await actions()).power(cli, opts.reboot ? "reboot" : "shutdown", vms, opts));

  program
    .command("shell")
    .description("an interactive shell on a VM (a real terminal), or COMMAND run on a terminal; exits with its exit code")
    .argument("<vm>", "VM name")
    .argument("[command...]", "run this instead of the login shell")
    .passThroughOptions()
    .action(async (vm: string, command: string[]) => (await actions()).shell(cli, vm, command));

  program
    .command("ssh")
    .description("run a command on a VM over SSH, output and exit code passed through")
    .argument("<vm>", "VM name")
    .argument("<command...>", "one argument: a command line for the VM's shell; several: a command and its arguments, each passed as is")
    .option("--timeout <seconds>", "give up after this long", positiveSeconds)
    .option("--json", "print {code, stdout, stderr} as JSON instead")
    .passThroughOptions()
    .action(async (vm: string, command: string[], opts: { timeout?: number; json?: boolean }) => (await actions()).ssh(cli, vm, command, opts));

  program
    .command("ssh-config")
    .description("an OpenSSH client configuration for every VM, with its key and pinned host key")
    .option("--path", "write it to the environment's ssh directory and print that file's path")
    .addHelpText(
      "after",
      "\n`ssh -F <(lago ssh-config)` does not work with OpenSSH 8 and later: ssh closes inherited file descriptors before reading -F.",
    )
    .action(async (opts: { path?: boolean }) => (await actions()).sshConfig(cli, opts));

  program
    .command("console")
    .description("attach to a VM's serial console (leave with Ctrl-])")
    .argument("<vm>", "VM name")
    .action(async (vm: string) => (await actions()).serialConsole(cli, vm));

  program
    .command("copy-to-vm")
    .description("copy a file or directory to a VM (SFTP; recursive; modes and times kept)")
    .argument("<vm>", "VM name")
    .argument("<local>", "local path")
    .argument("<remote>", "path on the VM (an existing directory receives it under its own name)")
    .option("--json", "print what was copied as JSON")
    .action(async (vm: string, local: string, remote: string, opts: { json?: boolean }) => (await actions()).copy(cli, "to", vm, local, remote, opts));

  program
    .command("copy-from-vm")
    .description("copy a file or directory from a VM (SFTP; recursive; modes and times kept)")
    .argument("<vm>", "VM name")
    .argument("<remote>", "path on the VM")
    .argument("<local>", "local path (an existing directory receives it under its own name)")
    .option("--json", "print what was copied as JSON")
    .action(async (vm: string, remote: string, local: string, opts: { json?: boolean }) => (await actions()).copy(cli, "from", vm, remote, local, opts));

  initFileOptions(
    program
      .command("deploy")
      .description("run each VM's metadata.deploy-scripts on it, in order (output prefixed with the VM's name)")
      .argument("[vm...]", "VM names (default: all)"),
  )
    .option("--json", "print what ran as JSON (output is not streamed)")
    .action(async (vms: string[], opts: InitFileOpts & { json?: boolean }) => (await actions()).deploy(cli, vms, opts));

  initFileOptions(
    program
      .command("collect")
      .description("copy each VM's artifacts to OUTPUT/<vm>/<path>")
      .argument("[vm...]", "VM names (default: all)")
      .requiredOption("--output <dir>", "where to put them")
      .option("--strict", "fail when an artifact does not exist (default: report and skip it)"),
  )
    .option("--json", "print what was collected as JSON")
    .action(async (vms: string[], opts: InitFileOpts & { output: string; strict?: boolean; json?: boolean }) => (await actions()).collect(cli, vms, opts));

  for (const name of ["ansible_hosts", "ansible-hosts"]) {
    initFileOptions(
      program
        .command(name)
        .description("an Ansible inventory (INI) of the VMs, grouped by groups, vm-type, vm-provider or the keys given")
        .option("-k, --keys <key...>", "key paths into each VM's spec to group by (e.g. vm-type groups disks/0/metadata/distro)"),
    )
      .option("--json", "Ansible's dynamic-inventory JSON")
      .option("--list", "the same as --json (Ansible's inventory script protocol)")
      .option("--host <vm>", "one host's variables as JSON (Ansible's inventory script protocol)")
      .action(async (opts: InitFileOpts & { keys?: string[]; json?: boolean; list?: boolean; host?: string }) => (await actions()).ansibleHosts(cli, opts));
  }

  program
    .command("snapshot")
    .description("snapshot every VM (or those named) consistently, memory included; --list shows the snapshots")
    .argument("[name]", "snapshot name")
    .argument("[vm...]", "VM names (default: all)")
    .option("-l, --list", "list the environment's snapshots")
    .option("--json", "as JSON")
    .action(async (name: string | undefined, vms: string[], opts: { list?: boolean; json?: boolean }) => (await actions()).snapshot(cli, name, vms, opts));

  program
    .command("revert")
    .description("revert VMs to a snapshot: running ones resume where they were, without a reboot")
    .argument("<name>", "snapshot name")
    .argument("[vm...]", "VM names (default: every VM that has it)")
    .option("--json", "print the outcome as JSON")
    .action(async (name: string, vms: string[], opts: { json?: boolean }) => (await actions()).revert(cli, name, vms, opts));

  initFileOptions(
    program
      .command("export")
      .description("export shut-off VMs' disks (as layers on their templates, or --standalone) and an init file that recreates them")
      .argument("[vm...]", "VM names (default: all)")
      .requiredOption("--output <dir>", "where to write the disks and the init file")
      .option("-s, --standalone", "flatten each disk into one image that needs no template")
      .option("--init-file-name <name>", "name of the exported init file", "LagoInitFile"),
  )
    .option("--json", "print what was exported as JSON")
    .action(async (vms: string[], opts: InitFileOpts & { output: string; standalone?: boolean; initFileName: string; json?: boolean }) => (await actions()).exportVms(cli, vms, opts));

  const template = program.command("template").description("the shared template store");
  template
    .command("list")
    .description("templates and build layers in the store (size, users, in use) and, with a repository, the templates it offers")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }) => (await actions()).templateList(cli, opts));
  template
    .command("fetch")
    .description("download a template from the repository into the store")
    .argument("<name>", "NAME or NAME:VERSION")
    .action(async (ref: string) => (await actions()).templateFetch(cli, ref));
  template
    .command("prune")
    .description("remove build layers and store images nobody uses (never one in use)")
    .option("--dry-run", "only say what would be removed")
    .option("--json", "as JSON")
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => (await actions()).templatePrune(cli, opts));

  const env = program.command("env").description("the environments of the workdir");
  env
    .command("list")
    .description("environments in the workdir; * marks the current one")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }) => (await actions()).envList(cli, opts));
  env
    .command("select")
    .alias("set-current")
    .description("make NAME the environment commands use without --env (Lago's set-current)")
    .argument("<name>", "environment name")
    .action(async (name: string) => (await actions()).envSelect(cli, name));

  program
    .command("doctor")
    .description("check this machine: libvirt, KVM, qemu-img, virt-customize, store and lease directories, free disk")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }) => (await actions()).doctor(cli, opts));

  attachExamples(program, OPS_EXAMPLES);
}

/** Examples of the everyday verbs, by command path. */
const OPS_EXAMPLES: Readonly<Record<string, readonly Example[]>> = {
  status: [
    ["lago status", "every VM and net of the current environment"],
    ["lago status --json | jq '.vms[].state'", "as JSON, for scripts"],
  ],
  start: [
    ["lago start", "start every VM lago stopped, and wait for SSH"],
    ["lago start vm01", "only vm01"],
  ],
  stop: [
    ["lago stop vm02", "power vm02 off at once; plans keep it stopped"],
    ["lago stop", "every VM"],
  ],
  shutdown: [
    ["lago shutdown", "shut every VM down gracefully"],
    ["lago shutdown --reboot vm01", "reboot vm01 cold, so that pending changes take effect"],
  ],
  shell: [
    ["lago shell vm01", "an interactive shell on vm01"],
    ["lago shell vm01 top", "run top on a terminal on vm01"],
  ],
  ssh: [
    ["lago ssh vm01 'dmesg | tail'", "one argument: a command line for vm01's shell"],
    ["lago ssh vm01 -- printf '%s\\n' 'a b' '$HOME'", "several: each argument passed as is"],
  ],
  "ssh-config": [
    ["lago ssh-config --path", "write the configuration and print its path: ssh -F \"$(lago ssh-config --path)\" vm01"],
    ["lago ssh-config > lago.ssh", "then: scp -F lago.ssh file vm01:"],
  ],
  console: [["lago console vm01", "vm01's serial console; Ctrl-] leaves"]],
  "copy-to-vm": [
    ["lago copy-to-vm vm01 ./rpms /root", "copy the directory ./rpms to /root/rpms on vm01"],
    ["lago copy-to-vm vm01 app.conf /etc/app.conf", "one file, to that path"],
  ],
  "copy-from-vm": [
    ["lago copy-from-vm vm01 /var/log/messages .", "vm01's /var/log/messages to ./messages"],
    ["lago copy-from-vm vm01 /etc logs/vm01-etc", "a directory, recursively"],
  ],
  deploy: [
    ["lago deploy", "run each VM's metadata.deploy-scripts"],
    ["lago deploy vm02 -f envs/ci.yaml", "only vm02's, from another init file"],
  ],
  collect: [
    ["lago collect --output artifacts", "each VM's artifacts to artifacts/<vm>/"],
    ["lago collect vm01 --output out --strict", "fail when one is missing"],
  ],
  ansible_hosts: [
    ["lago ansible_hosts > hosts", "an INI inventory: ansible -i hosts all -m ping"],
    ["lago ansible_hosts -k vm-type disks/0/metadata/distro", "grouped by VM type and distro"],
  ],
  "ansible-hosts": [
    ["lago ansible-hosts --list", "Ansible's dynamic-inventory JSON"],
    ["lago ansible-hosts --host vm01", "one host's variables"],
  ],
  snapshot: [
    ["lago snapshot clean", "snapshot every VM as \"clean\", memory included"],
    ["lago snapshot --list", "the environment's snapshots"],
  ],
  revert: [
    ["lago revert clean", "every VM back to \"clean\""],
    ["lago revert clean vm01", "only vm01"],
  ],
  export: [
    ["lago export --output exported", "shut-off VMs' disks as layers, and an init file that recreates them"],
    ["lago export vm01 --output out --standalone", "one self-contained image per disk"],
  ],
  "template list": [
    ["lago template list", "the store's templates and build layers: size, users, in use"],
    ["lago template list --template-repo-path repo.json --json", "also what the repository offers, as JSON"],
  ],
  "template fetch": [["lago template fetch el9:v2", "download version v2 of el9 into the store"]],
  "template prune": [
    ["lago template prune --dry-run", "what would be removed"],
    ["lago template prune", "remove layers and images nobody uses"],
  ],
  "env list": [["lago env list", "the workdir's environments; * marks the current one"]],
  "env select": [["lago env select staging", "commands without --env now use staging"]],
  doctor: [
    ["lago doctor", "check libvirt, KVM, qemu-img, virt-customize, the stores and free disk"],
    ["lago doctor --json", "as JSON"],
  ],
};
