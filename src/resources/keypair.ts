/** The environment's SSH key pair, injected into VMs by bootstrap and `ssh-inject`. */
import { envPaths } from "../env/context.ts";
import type { ResourceKind } from "./types.ts";

export const keypairKind: ResourceKind = {
  kind: "keypair",
  typicalMs: 50,
  replaceOn: [{ path: "/algorithm", reason: "the key algorithm changes" }],
  async read(ctx, current) {
    const keys = await ctx.drivers.keys.read(envPaths.keys(ctx.env));
    if (!keys) return undefined;
    return { attrs: current.attrs, outputs: { ...keys }, healthy: true };
  },
  async create(ctx) {
    return { ...(await ctx.drivers.keys.ensure(envPaths.keys(ctx.env))) };
  },
  async update(ctx) {
    return { ...(await ctx.drivers.keys.ensure(envPaths.keys(ctx.env))) };
  },
  async delete(ctx) {
    await ctx.drivers.keys.remove(envPaths.keys(ctx.env));
  },
};
