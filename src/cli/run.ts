/** The `lago` executable's entry: run the CLI and exit with its code. */
import { main } from "./main.ts";

process.exitCode = await main(process.argv);
