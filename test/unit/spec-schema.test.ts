import { test } from "node:test";
import assert from "node:assert/strict";
import { INIT_FILE_SCHEMA } from "../../src/spec/schema-validate.ts";
import { isRecord } from "../../src/spec/pointer.ts";

test("the schema is a JSON Schema 2020-12 document with an $id", () => {
  assert.equal(INIT_FILE_SCHEMA.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.equal(typeof INIT_FILE_SCHEMA.$id, "string");
  assert.deepEqual(INIT_FILE_SCHEMA.required, ["domains", "nets"]);
});

test("every property is documented for editors (title or description)", () => {
  const undocumented: string[] = [];
  const visit = (node: unknown, where: string): void => {
    if (Array.isArray(node)) {
      node.forEach((n, i) => visit(n, `${where}/${i}`));
      return;
    }
    if (!isRecord(node)) return;
    if (isRecord(node.properties)) {
      for (const [key, sub] of Object.entries(node.properties)) {
        if (!isRecord(sub) || (typeof sub.title !== "string" && typeof sub.description !== "string")) {
          undocumented.push(`${where}/properties/${key}`);
        }
      }
    }
    for (const [key, sub] of Object.entries(node)) visit(sub, `${where}/${key}`);
  };
  visit(INIT_FILE_SCHEMA, "#");
  assert.deepEqual(undocumented, []);
});

test("the documented defaults are stated in the schema", () => {
  const domain = (INIT_FILE_SCHEMA.$defs as Record<string, { properties: Record<string, { description: string }> }>).domain;
  assert.match(domain?.properties.memory?.description ?? "", /Default: 1024/);
  assert.match(domain?.properties.vcpu?.description ?? "", /Default: 2/);
});
