/** Init files for the engine lifecycle tests: a base environment and the edits users make. */
export const BASE = `
domains:
  vm01:
    memory: 512
    nics:
      - net: lago
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
        format: qcow2
  vm02:
    memory: 512
    nics:
      - net: lago
      - net: data
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
        build:
          - virt-customize:
              touch: /root/built
      - name: extra
        type: empty
        size: 1G
        dev: vdb
nets:
  lago:
    type: nat
    management: true
    dhcp:
      start: 100
      end: 254
  data:
    type: nat
    management: false
`;

export function edit(base: string, from: string, to: string): string {
  if (!base.includes(from)) throw new Error(`fixture edit: ${JSON.stringify(from)} not found`);
  return base.replace(from, to);
}

export const VM03 = `  vm03:
    memory: 256
    nics:
      - net: lago
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
nets:`;
