/**
 * A module (or any value) loaded on first use and shared after: for
 * dependencies that cost tens of milliseconds to load and that most commands
 * never use (`plan` of an empty state, `--version`).
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= load();
    return loading;
  };
}
