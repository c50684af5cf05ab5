/** Typed events the operations layer emits while it works; `cli/` and the SDK render or forward them. */
export type OpsEvent =
  /** Progress of one VM (starting, waiting for SSH, snapshotting…). */
  | { type: "vm"; vm: string; message: string }
  /** A piece of a remote command's output (deploy scripts), as it arrives. */
  | { type: "output"; vm: string; stream: "stdout" | "stderr"; text: string }
  /** Something that did not stop the operation but the user should know. */
  | { type: "warning"; vm: string | undefined; message: string };

export type OpsEmit = (event: OpsEvent) => void;
