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

/**
 * Addresses with every dependency before its dependents; ties by address. Throws naming a cycle.
 * Linear in resources and edges: a graphlib graph is built only to name a cycle.
 */
export function dependencyOrder(resources: DesiredResource[]): string[] {
  const deps = new Map<string, string[]>();
  for (const r of resources) deps.set(r.address, []);
  for (const r of resources) {
    const list = deps.get(r.address) ?? [];
    for (const dep of r.dependsOn) if (deps.has(dep) && !list.includes(dep)) list.push(dep);
  }
  for (const list of deps.values()) list.sort();
  // Depth-first, dependencies first, visiting nodes and edges in address order: deterministic.
  // A dependency found on the current path closes a cycle.
  const ON_PATH = 1;
  const DONE = 2;
  const mark = new Map<string, number>();
  const out: string[] = [];
  type Frame = { node: string; deps: string[]; i: number };
  const visit = (start: string): void => {
    const stack: Frame[] = [{ node: start, deps: deps.get(start) ?? [], i: 0 }];
    mark.set(start, ON_PATH);
    while (stack.length) {
      const top = stack[stack.length - 1] as Frame;
      const next = top.deps[top.i++];
      if (next === undefined) {
        mark.set(top.node, DONE);
        out.push(top.node);
        stack.pop();
        continue;
      }
      const seen = mark.get(next);
      if (seen === ON_PATH) {
        const cycle = alg.findCycles(resourceGraph(resources))[0] ?? [];
        throw new Error(`dependency cycle: ${[...cycle].sort().join(" → ")}`);
      }
      if (seen === undefined) {
        mark.set(next, ON_PATH);
        stack.push({ node: next, deps: deps.get(next) ?? [], i: 0 });
      }
    }
  };
  for (const n of [...deps.keys()].sort()) if (!mark.has(n)) visit(n);
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
