/**
 * The resource graph (graphlib): dependency order, cycle detection that names
 * the cycle, and DOT output for `lago graph`.
 */
import { Graph, alg } from "@dagrejs/graphlib";
import type { DesiredResource } from "../resources/types.ts";

/** Edges point from a resource to what it depends on. */
export function resourceGraph(resources: DesiredResource[]): Graph {
  const g = new Graph({ directed: true });
  for (const r of resources) g.setNode(r.address, r.kind);
  for (const r of resources) for (const dep of r.dependsOn) if (g.hasNode(dep)) g.setEdge(r.address, dep);
  return g;
}

/** Addresses with every dependency before its dependents; ties by address. Throws naming a cycle. */
export function dependencyOrder(resources: DesiredResource[]): string[] {
  const g = resourceGraph(resources);
  const cycles = alg.findCycles(g);
  if (cycles.length) throw new Error(`dependency cycle: ${[...(cycles[0] ?? [])].sort().join(" → ")}`);
  // Kahn's algorithm over sorted addresses keeps the order deterministic.
  const remaining = new Map<string, number>();
  for (const n of g.nodes()) remaining.set(n, (g.outEdges(n) ?? []).length);
  const ready = [...remaining].filter(([, n]) => n === 0).map(([a]) => a).sort();
  const out: string[] = [];
  while (ready.length) {
    const a = ready.shift() as string;
    out.push(a);
    for (const e of g.inEdges(a) ?? []) {
      const left = (remaining.get(e.v) ?? 0) - 1;
      remaining.set(e.v, left);
      if (left === 0) {
        ready.push(e.v);
        ready.sort();
      }
    }
  }
  return out;
}

const quote = (s: string): string => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

/** The graph in Graphviz DOT, nodes and edges sorted. */
export function toDot(resources: DesiredResource[]): string {
  const g = resourceGraph(resources);
  const lines = ["digraph lago {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"];
  for (const n of [...g.nodes()].sort()) lines.push(`  ${quote(n)} [label=${quote(n)}];`);
  const edges = g.edges().map((e) => `  ${quote(e.v)} -> ${quote(e.w)};`);
  lines.push(...edges.sort(), "}");
  return `${lines.join("\n")}\n`;
}
