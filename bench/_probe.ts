import { performance } from "node:perf_hooks";
import { parseSpec } from "../src/spec/load.ts";
import { readDocument } from "../src/spec/read-document.ts";
import { parseDocument } from "yaml";
import { generateInitFile } from "./generate.ts";
for (const n of [10, 100, 1000]) {
  const t = generateInitFile(n).text;
  for (let i = 0; i < 6; i++) {
    const a = performance.now(); parseDocument(t); const b = performance.now(); readDocument(t, "/x"); const c = performance.now(); parseSpec(t, "/x", { env: {} }); const d = performance.now();
    console.log(n, i, (b - a).toFixed(1), (c - b).toFixed(1), (d - c).toFixed(1));
  }
}
