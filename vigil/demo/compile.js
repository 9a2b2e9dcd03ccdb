// Compiles Solidity sources with solc-js (npm `solc`), resolving @openzeppelin imports from
// node_modules. Usage: node compile.js NODE_MODULES OUT.json SOURCE.sol...
// Writes {"ContractName": {"abi": [...], "bytecode": "0x..."}}.
const fs = require("fs");
const path = require("path");
const [modulesArg, out, ...files] = process.argv.slice(2);
const nodeModules = path.resolve(modulesArg);
const solc = require(path.join(nodeModules, "solc"));
const sources = {};
for (const file of files) sources[path.basename(file)] = { content: fs.readFileSync(file, "utf8") };
const input = {
  language: "Solidity",
  sources,
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun",
              outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
};
function findImports(name) {
  const full = path.join(nodeModules, name);
  return fs.existsSync(full) ? { contents: fs.readFileSync(full, "utf8") } : { error: "not found: " + name };
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) { console.error(errors.map((e) => e.formattedMessage).join("\n")); process.exit(1); }
const result = {};
for (const file of Object.keys(sources)) {
  for (const [name, c] of Object.entries(output.contracts[file] || {})) {
    result[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
fs.writeFileSync(out, JSON.stringify(result));
