// Parses an AsyncAPI document with the official parser (@asyncapi/parser); exits 1 on any error-level diagnostic.
import { Parser, fromFile } from "@asyncapi/parser";

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
const severities = ["error", "warning", "info", "hint"];
for (const d of diagnostics) {
  console.log(`${severities[d.severity]} ${d.code} at ${d.path.join("/") || "/"}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length) {
  console.log(`${path}: ${errors.length} errors`);
  process.exit(1);
}
const counts = {
  channels: document.channels().length,
  operations: document.operations().length,
  send: document.operations().filterBySend().length,
  receive: document.operations().filterByReceive().length,
  messages: document.components().messages().length,
  schemas: document.components().schemas().length,
};
console.log(`${path}: valid AsyncAPI ${document.version()} ${JSON.stringify(counts)}`);
