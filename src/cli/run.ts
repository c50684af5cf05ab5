/**
 * The `lago` executable's entry (bundled as dist/lago.cjs; bin/lago.js answers
 * `--version` itself and starts it): run the CLI and exit with its code.
 */
void import("./main.ts").then(async ({ main }) => {
  process.exitCode = await main(process.argv);
});
