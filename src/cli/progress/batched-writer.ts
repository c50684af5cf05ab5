/**
 * Text written during one event-loop turn goes out in one write: an apply of thousands of
 * resources prints thousands of progress lines, and a write(2) per line costs more than the
 * engine does for a step. `flush` writes what is pending now (before anything goes to
 * another stream, and at the end).
 */
export interface BatchedWriter {
  write(text: string): void;
  flush(): void;
}

export function batchedWriter(out: NodeJS.WritableStream): BatchedWriter {
  let pending: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (!pending.length) return;
    const text = pending.join("");
    pending = [];
    out.write(text);
  };
  return {
    write(text) {
      pending.push(text);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}
