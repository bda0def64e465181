// validate_schemas.js SCHEMA_DIR OUT_DIR — validates every OUT_DIR/<name>/*.json against
// SCHEMA_DIR/<name>.json with ajv (JSON Schema 2020-12, formats from ajv-formats, full mode).
// Prints a summary; exits 1 when any output is invalid or missing.
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const [schemaDir, outDir] = process.argv.slice(2);
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv, { mode: 'full' });
// OpenAPI's `nullable: true`: ajv supports it natively only next to `type`; we generate it the same way.

let total = 0, bad = 0, schemas = 0;
for (const file of fs.readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort()) {
  const name = file.slice(0, -5);
  const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, file), 'utf8'));
  const validate = ajv.compile(schema);
  const dir = path.join(outDir, name);
  const outputs = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  if (outputs.length === 0) { console.log(`${name}: no outputs`); bad++; continue; }
  schemas++;
  let nbad = 0;
  for (const o of outputs) {
    total++;
    const text = fs.readFileSync(path.join(dir, o), 'utf8');
    let doc;
    try { doc = JSON.parse(text); } catch (e) { nbad++; console.log(`${name}/${o}: not JSON: ${e.message}`); continue; }
    if (!validate(doc)) {
      nbad++;
      if (nbad <= 3) console.log(`${name}/${o}: ${ajv.errorsText(validate.errors)}\n  ${text.slice(0, 300)}`);
    }
  }
  bad += nbad;
  console.log(`${name}: ${outputs.length - nbad}/${outputs.length} valid`);
}
console.log(`ajv: ${total - bad}/${total} outputs valid across ${schemas} schemas`);
process.exit(bad ? 1 : 0);
