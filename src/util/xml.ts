/** A tiny XML writer with escaping: every value from an init file goes through `esc`. */
export type XmlNode = string | XmlElement;
export interface XmlElement {
  name: string;
  attrs?: Record<string, string | number | undefined> | undefined;
  children?: (XmlNode | undefined | false)[] | undefined;
}

export function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&apos;");
}

export function el(name: string, attrs?: XmlElement["attrs"], ...children: (XmlNode | undefined | false)[]): XmlElement {
  return { name, attrs, children };
}

/** Element and attribute names are written unescaped, so they must be names (cpu_custom keys come from the init file). */
const XML_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;

function checkName(name: string): string {
  if (!XML_NAME.test(name)) throw new Error(`${JSON.stringify(name)} is not a valid XML element or attribute name`);
  return name;
}

export function renderXml(node: XmlNode, depth = 0): string {
  if (typeof node === "string") return `${"  ".repeat(depth)}${esc(node)}`;
  checkName(node.name);
  const pad = "  ".repeat(depth);
  const attrs = Object.entries(node.attrs ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${checkName(k)}="${esc(String(v))}"`)
    .join("");
  const kids = (node.children ?? []).filter((c): c is XmlNode => c !== undefined && c !== false);
  if (!kids.length) return `${pad}<${node.name}${attrs}/>`;
  if (kids.length === 1 && typeof kids[0] === "string") return `${pad}<${node.name}${attrs}>${esc(kids[0])}</${node.name}>`;
  return `${pad}<${node.name}${attrs}>\n${kids.map((k) => renderXml(k, depth + 1)).join("\n")}\n${pad}</${node.name}>`;
}
