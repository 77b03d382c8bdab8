// Builds app.js into a component exporting `cards`:
//   node build.mjs <wit folder> <output.wasm>
// WASI features the plugin does not use are disabled, so the component
// imports nothing beyond the plugin contract.
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const [witPath, output] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath: join(here, "app.js"),
  witPath,
  worldName: "export-cards",
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(output, component);
