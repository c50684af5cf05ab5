/**
 * What libvirt reports back (`<cpu mode=…><model>…`) for a CPU lago defines.
 * Pure; shared by the domain's refresh, the fake world that mimics libvirt,
 * and the property tests' oracle.
 */
import type { DomainCpuDef, DomainView } from "./types.ts";

/** The text of a `cpu_custom`'s model, written as a string or as `#text`. */
function customModel(custom: Record<string, unknown>): string | undefined {
  const model = custom.model;
  if (typeof model === "string") return model;
  const text = model && typeof model === "object" ? (model as Record<string, unknown>)["#text"] : undefined;
  return typeof text === "string" ? text : undefined;
}

/**
 * libvirt names a CPU model's mode `custom`; a `cpu_custom` keeps its `@mode`
 * (default `custom`). Without a model, KVM gets `host-passthrough` and TCG
 * libvirt's default model, `qemu64`.
 */
export function reportedCpu(cpu: DomainCpuDef, type: "kvm" | "qemu"): DomainView["cpu"] {
  if (cpu.mode === "model") return { mode: "custom", model: cpu.model };
  if (cpu.mode === "custom") return { mode: typeof cpu.custom["@mode"] === "string" ? cpu.custom["@mode"] : "custom", model: customModel(cpu.custom) };
  return type === "kvm" ? { mode: "host-passthrough", model: undefined } : { mode: "custom", model: "qemu64" };
}
