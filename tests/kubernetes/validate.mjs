// validate.mjs — check Kubernetes manifests offline against the object schemas of
// Kubernetes and cert-manager, strictly (what kubeconform -strict does, with what npm has).
//
//   node validate.mjs FILE.yaml...      (run from the folder where package-lock.json was
//                                        installed; tests/integration/test_kubernetes.py)
//
// For every YAML document of every file:
//   1. the YAML itself: parsed with `yaml` in strict mode (duplicate keys, bad indentation
//      and every other error or warning fail);
//   2. apiVersion + kind name a known object type: kubernetes-models (Kubernetes' OpenAPI
//      definitions) or @kubernetes-models/cert-manager (cert-manager's CRD schemas);
//   3. values: the package's validator — JSON schemas compiled from those definitions —
//      checks types, formats (int32, int-or-string, quantities, ...), enums and required
//      members at every depth;
//   4. no unknown field: the same definitions as TypeScript interfaces, and the document as
//      an object literal of that type; tsc's excess-property check fails any member the
//      schema does not define, at every depth (the JSON-schema validators alone allow them).
// Prints one line per document ("ok FILE#N Kind/name" or "FAIL FILE#N ...: why") and exits
// 1 when any document fails.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const ts = require("typescript");

// apiVersion -> the module holding its kinds.
function moduleFor(apiVersion) {
  if (apiVersion === "cert-manager.io/v1" || apiVersion === "acme.cert-manager.io/v1")
    return "@kubernetes-models/cert-manager/" + apiVersion;
  return "kubernetes-models/" + apiVersion;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE.yaml...");
  process.exit(2);
}

let failed = 0;
const docs = []; // { where, apiVersion, kind, data }

function fail(where, why) {
  failed++;
  console.log(`FAIL ${where}: ${why}`);
}

for (const file of files) {
  const text = readFileSync(file, "utf8");
  const parsed = parseAllDocuments(text, { strict: true, uniqueKeys: true, prettyErrors: true });
  const list = Array.isArray(parsed) ? parsed : [parsed];
  list.forEach((doc, i) => {
    const where = `${file}#${i + 1}`;
    if (doc.errors.length || doc.warnings.length) {
      fail(where, [...doc.errors, ...doc.warnings].map((e) => e.message).join("; "));
      return;
    }
    const data = doc.toJS();
    if (data === null || data === undefined)
      return; // an empty document (a trailing ---)
    if (typeof data !== "object" || !data.apiVersion || !data.kind) {
      fail(where, "not a Kubernetes object (no apiVersion and kind)");
      return;
    }
    docs.push({ where, apiVersion: data.apiVersion, kind: data.kind, data });
  });
}

// Steps 2 and 3.
for (const d of docs) {
  let Model;
  try {
    Model = (await import(moduleFor(d.apiVersion)))[d.kind];
  } catch {
    Model = undefined;
  }
  if (typeof Model !== "function") {
    fail(d.where, `unknown object type ${d.apiVersion} ${d.kind}`);
    d.bad = true;
    continue;
  }
  try {
    new Model(d.data).validate();
  } catch (e) {
    fail(d.where, `${d.kind}: ${e.message}`);
    d.bad = true;
  }
}

// Step 4: one TypeScript file, one typed constant per document.
const known = docs.filter((d) => !d.bad);
if (known.length) {
  // Inside the install folder, so that node_modules resolves as for any module there.
  const dir = mkdtempSync(join(process.cwd(), ".check-"));
  const lines = [];
  known.forEach((d, i) => {
    lines.push(`import type { I${d.kind} as T${i} } from ${JSON.stringify(moduleFor(d.apiVersion) + "/" + d.kind)};`);
  });
  known.forEach((d, i) => {
    d.line = lines.length + 1;
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(d.data)};`);
  });
  const src = join(dir, "manifests.mts");
  writeFileSync(src, lines.join("\n") + "\n");
  const program = ts.createProgram([src], {
    strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16, skipLibCheck: true, types: [],
  });
  const diags = ts.getPreEmitDiagnostics(program).filter((x) => x.file && x.file.fileName === src);
  const other = ts.getPreEmitDiagnostics(program).filter((x) => !x.file || x.file.fileName !== src);
  for (const x of other)
    fail("typescript", ts.flattenDiagnosticMessageText(x.messageText, "\n"));
  for (const x of diags) {
    const { line } = x.file.getLineAndCharacterOfPosition(x.start);
    const d = known.find((k) => k.line === line + 1);
    const msg = ts.flattenDiagnosticMessageText(x.messageText, " ").replace(/\s+/g, " ");
    fail(d ? d.where : "typescript", `${d ? d.kind + ": " : ""}${msg}`);
    if (d)
      d.bad = true;
  }
  rmSync(dir, { recursive: true, force: true });
}

for (const d of docs)
  if (!d.bad)
    console.log(`ok ${d.where} ${d.kind}/${(d.data.metadata || {}).name || "?"}`);
process.exit(failed ? 1 : 0);
