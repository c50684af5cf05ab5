/** The `lago` executable's entry: run the CLI and exit with its code. */
import { VERSION } from "../version.ts";

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  // The one answer that needs nothing else: no command-line parser loaded.
  process.stdout.write(`${VERSION}\n`);
} else {
  const { main } = await import("./main.ts");
  process.exitCode = await main(process.argv);
}
