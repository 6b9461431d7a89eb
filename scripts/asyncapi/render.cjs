// Renders an AsyncAPI document to one self-contained HTML page with the AsyncAPI generator's html-template.
const path = require("node:path");
const Generator = require("@asyncapi/generator");

async function main() {
  const [input, outDir] = process.argv.slice(2);
  const template = path.dirname(require.resolve("@asyncapi/html-template/package.json"));
  const generator = new Generator(template, path.resolve(outDir), {
    forceWrite: true,
    templateParams: { singleFile: "true", outFilename: "index.html" },
  });
  await generator.generateFromFile(path.resolve(input));
  console.log(`rendered ${input} to ${path.join(outDir, "index.html")}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
