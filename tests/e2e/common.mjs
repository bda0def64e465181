// common.mjs — shared setup for the e2e tests: the official client pointed at the server under test.
import OpenAI from 'openai';

export const URL_BASE = process.env.CHINGU_URL;
export const KEY = process.env.CHINGU_KEY;
if (!URL_BASE || !KEY) throw new Error('CHINGU_URL and CHINGU_KEY must be set (tests/integ/serve_e2e.sh does it)');

// maxRetries 0: a retry would hide a server error from the test.
export const client = new OpenAI({ baseURL: `${URL_BASE}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30000 });
export const MODEL = 'fake';

// Raw request (for bodies the client would refuse to send).
export async function raw(path, { method = 'POST', body, headers = {}, key = KEY } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined && !h['content-type']) h['content-type'] = 'application/json';
  const res = await fetch(`${URL_BASE}${path}`, { method, body, headers: h });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

export async function metric(name) {
  const r = await raw('/metrics', { method: 'GET' });
  const m = r.text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// A small JSON-Schema checker (type, properties, required, items, enum, minimum, minItems,
// additionalProperties:false) — independent of the server's schema code.
export function validate(schema, v, path = '$') {
  const errs = [];
  const t = schema.type;
  const typeOk = (ty) => ty === 'object' ? v !== null && typeof v === 'object' && !Array.isArray(v)
    : ty === 'array' ? Array.isArray(v) : ty === 'integer' ? Number.isInteger(v)
    : ty === 'number' ? typeof v === 'number' : ty === 'null' ? v === null : typeof v === ty;
  if (t && !(Array.isArray(t) ? t.some(typeOk) : typeOk(t))) return [`${path}: expected ${t}, got ${JSON.stringify(v)}`];
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) errs.push(`${path}: not in enum`);
  if (typeof v === 'number' && schema.minimum !== undefined && v < schema.minimum) errs.push(`${path}: below minimum`);
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) errs.push(`${path}: fewer than minItems`);
    if (schema.items) v.forEach((x, i) => errs.push(...validate(schema.items, x, `${path}[${i}]`)));
  } else if (v && typeof v === 'object') {
    for (const r of schema.required ?? []) if (!(r in v)) errs.push(`${path}: missing ${r}`);
    for (const [k, x] of Object.entries(v)) {
      if (schema.properties?.[k]) errs.push(...validate(schema.properties[k], x, `${path}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${path}: unexpected ${k}`);
    }
  }
  return errs;
}
