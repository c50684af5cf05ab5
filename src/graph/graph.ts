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
  if (!alg.isAcyclic(g)) {
    const cycle = alg.findCycles(g)[0] ?? [];
    throw new Error(`dependency cycle: ${[...cycle].sort().join(" → ")}`);
  }
  // Depth-first, dependencies first, visiting nodes and edges in address order: deterministic and linear.
  const done = new Set<string>();
  const out: string[] = [];
  type Frame = { node: string; deps: string[]; i: number };
  const visit = (start: string): void => {
    const stack: Frame[] = [{ node: start, deps: (g.successors(start) ?? []).sort(), i: 0 }];
    done.add(start);
    while (stack.length) {
      const top = stack[stack.length - 1] as Frame;
      const next = top.deps[top.i++];
      if (next === undefined) {
        out.push(top.node);
        stack.pop();
      } else if (!done.has(next)) {
        done.add(next);
        stack.push({ node: next, deps: (g.successors(next) ?? []).sort(), i: 0 });
      }
    }
  };
  for (const n of [...g.nodes()].sort()) if (!done.has(n)) visit(n);
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
