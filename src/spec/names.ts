/**
 * Names that end up in libvirt object names, file names and shell commands
 * (domains, nets, disks, templates) must be boring: letters, digits, `.`, `_`
 * and `-`, at most 63 characters, not starting with `-` or `.`, no `..`.
 * Dotted names such as `foreman.example.com` are fine.
 */

export const MAX_NAME_LENGTH = 63;

const SPECIAL: Record<string, string> = {
  "/": "contains `/`",
  " ": "contains a space",
  ";": "contains `;`",
  $: "contains `$`",
  "`": "contains a backquote",
  "'": "contains a quote",
  '"': "contains a quote",
  ":": "contains `:`",
};

/** Why `name` is unsafe, one reason per problem; empty when it is safe. */
export function unsafeNameReasons(name: string): string[] {
  if (name === "") return ["is empty"];
  const reasons: string[] = [];
  const add = (r: string): void => {
    if (!reasons.includes(r)) reasons.push(r);
  };
  if (name.startsWith("-")) add("starts with `-`");
  if (name.startsWith(".")) add("starts with `.`");
  if (name.includes("..")) add("contains `..`");
  for (const ch of name) {
    if (/[A-Za-z0-9._-]/.test(ch)) continue;
    const special = SPECIAL[ch];
    if (special !== undefined) add(special);
    else if (/[\u0000-\u001f\u007f]/.test(ch)) add("contains a control character");
    else if (/\s/.test(ch)) add("contains whitespace");
    else add(`contains \`${ch}\``);
  }
  const length = [...name].length;
  if (length > MAX_NAME_LENGTH) add(`is ${length} characters long (at most ${MAX_NAME_LENGTH})`);
  return reasons;
}

/** A diagnostic message for an unsafe name, or undefined when it is safe. */
export function unsafeNameMessage(kind: string, name: string): string | undefined {
  const reasons = unsafeNameReasons(name);
  if (reasons.length === 0) return undefined;
  return `${kind} ${JSON.stringify(name)} is unsafe for libvirt, file names and shells: it ${reasons.join(", ")}; use letters, digits, \`.\`, \`_\` and \`-\``;
}
