import { LagoError } from "../errors.ts";

/** The error of an operation cancelled by its AbortSignal. */
export function cancelledError(what: string): LagoError {
  return new LagoError("CANCELLED", `${what} was cancelled`);
}

/** Wait `ms`; rejects with a CANCELLED LagoError saying "`what` was cancelled" when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancelled = (): LagoError => cancelledError(what);
    if (signal?.aborted) {
      reject(cancelled());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelled());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
