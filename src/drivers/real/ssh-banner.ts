/** Whether an SSH server answers at an address: its `SSH-` banner, read over plain TCP (no handshake, no key). */
import net from "node:net";

/**
 * Resolves true once the server's identification line starts arriving
 * (`SSH-…`), false on a refusal, a reset, anything else first, or no answer
 * within `timeoutMs`. Never rejects.
 */
export function sshBannerAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let got = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (got.length >= 4) done(got.startsWith("SSH-"));
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}
