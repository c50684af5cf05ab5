/**
 * The everyday verbs (Lago's names): status, start/stop/shutdown, shell, ssh,
 * ssh-config, console, copy-to-vm/copy-from-vm, deploy, collect,
 * ansible_hosts, snapshot/revert, export, template, env, doctor. Registered
 * here; their implementations (`ops-actions.ts`) load only when one runs.
 */
import type { Command } from "commander";
import type { Cli } from "./main.ts";

const actions = (): Promise<typeof import("./ops-actions.ts")> => import("./ops-actions.ts");

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`expected a number of seconds, got ${JSON.stringify(value)}`);
  return n;
}

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
    .option("--timeout <seconds>", "give up after this long", seconds)
    .option("--json", "print {code, stdout, stderr} as JSON instead")
    .passThroughOptions()
    .addHelpText("after", "\nExamples:\n  lago ssh vm01 'dmesg | tail'\n  lago ssh vm01 -- printf '%s\\n' 'a b' '$HOME'")
    .action(async (vm: string, command: string[], opts: { timeout?: number; json?: boolean }) => (await actions()).ssh(cli, vm, command, opts));

  program
    .command("ssh-config")
    .description("an OpenSSH client configuration for every VM, with its key and pinned host key")
    .option("--path", "write it to the environment's ssh directory and print that file's path")
    .addHelpText(
      "after",
      "\nExamples:\n  ssh -F \"$(lago ssh-config --path)\" vm01\n  lago ssh-config > lago.ssh && scp -F lago.ssh file vm01:\n\n" +
        "(`ssh -F <(lago ssh-config)` does not work with OpenSSH 8 and later: ssh closes inherited file descriptors before reading -F.)",
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

  program
    .command("deploy")
    .description("run each VM's metadata.deploy-scripts on it, in order (output prefixed with the VM's name)")
    .argument("[vm...]", "VM names (default: all)")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .option("--json", "print what ran as JSON (output is not streamed)")
    .action(async (vms: string[], opts: { file: string; json?: boolean }) => (await actions()).deploy(cli, vms, opts));

  program
    .command("collect")
    .description("copy each VM's artifacts to OUTPUT/<vm>/<path>")
    .argument("[vm...]", "VM names (default: all)")
    .requiredOption("--output <dir>", "where to put them")
    .option("--strict", "fail when an artifact does not exist (default: report and skip it)")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .option("--json", "print what was collected as JSON")
    .action(async (vms: string[], opts: { output: string; strict?: boolean; file: string; json?: boolean }) => (await actions()).collect(cli, vms, opts));

  for (const name of ["ansible_hosts", "ansible-hosts"]) {
    program
      .command(name)
      .description("an Ansible inventory (INI) of the VMs, grouped by groups, vm-type, vm-provider or the keys given")
      .option("-k, --keys <key...>", "key paths into each VM's spec to group by (e.g. vm-type groups disks/0/metadata/distro)")
      .option("-f, --file <file>", "init file", "LagoInitFile")
      .option("--json", "Ansible's dynamic-inventory JSON")
      .option("--list", "the same as --json (Ansible's inventory script protocol)")
      .option("--host <vm>", "one host's variables as JSON (Ansible's inventory script protocol)")
      .addHelpText("after", "\nExamples:\n  lago ansible_hosts > hosts && ansible -i hosts all -m raw -a uptime\n  lago ansible_hosts -k vm-type disks/0/metadata/distro")
      .action(async (opts: { keys?: string[]; file: string; json?: boolean; list?: boolean; host?: string }) => (await actions()).ansibleHosts(cli, opts));
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

  program
    .command("export")
    .description("export shut-off VMs' disks (as layers on their templates, or --standalone) and an init file that recreates them")
    .argument("[vm...]", "VM names (default: all)")
    .requiredOption("--output <dir>", "where to write the disks and the init file")
    .option("-s, --standalone", "flatten each disk into one image that needs no template")
    .option("--init-file-name <name>", "name of the exported init file", "LagoInitFile")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .option("--json", "print what was exported as JSON")
    .action(async (vms: string[], opts: { output: string; standalone?: boolean; initFileName: string; file: string; json?: boolean }) => (await actions()).exportVms(cli, vms, opts));

  const template = program.command("template").description("the shared template store");
  template
    .command("list")
    .description("templates in the store (size, users, in use) and, with a repository, the ones it offers")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }) => (await actions()).templateList(cli, opts));
  template
    .command("fetch")
    .description("download a template from the repository into the store")
    .argument("<name>", "NAME or NAME:VERSION")
    .action(async (ref: string) => (await actions()).templateFetch(cli, ref));
  template
    .command("prune")
    .description("remove store images no environment uses (never one in use)")
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
}
