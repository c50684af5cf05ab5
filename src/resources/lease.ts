/** A /24 from Lago's shared subnet lease store, owned by this environment's net. */
import { envPaths } from "../env/context.ts";
import { memo, str } from "./common.ts";
import type { ResourceKind } from "./types.ts";

export const leaseKind: ResourceKind = {
  kind: "lease",
  typicalMs: 10,
  replaceOn: [
    { path: "/requested", reason: "the requested subnet changes" },
    { path: "/net", reason: "the net changes" },
  ],
  async read(ctx, current) {
    // One read of the store for all the leases of a refresh.
    const store = await memo(ctx, "leases", () => ctx.drivers.leases.snapshot());
    const subnet = await store.find(envPaths.leaseOwner(ctx.env, str(current.attrs.net, "net")));
    return subnet ? { attrs: current.attrs, outputs: { subnet }, healthy: true } : undefined;
  },
  async create(ctx, desired) {
    const requested = typeof desired.requested === "string" ? desired.requested : undefined;
    const subnet = await ctx.drivers.leases.acquire(envPaths.leaseOwner(ctx.env, str(desired.net, "net")), requested, { signal: ctx.signal });
    return { subnet };
  },
  async update(ctx, desired) {
    return leaseKind.create(ctx, desired);
  },
  async delete(ctx, prior) {
    await ctx.drivers.leases.release(envPaths.leaseOwner(ctx.env, str(prior.attrs.net, "net")));
  },
};
