// store_keys.test.mjs — per-user API keys from the memory store (`chingu key create`) with the
// official client: they open the OpenAI endpoints like --api-key-file keys, and a revoked one is
// refused with 401 in OpenAI's error shape. serve_e2e.sh starts the server with --data-dir and
// passes the key and its id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { URL_BASE, MODEL, raw } from './common.mjs';

const STORE_KEY = process.env.CHINGU_STORE_KEY;
const STORE_KEY_ID = process.env.CHINGU_STORE_KEY_ID;

test('a store key opens chat, completions and models; revoked, it gets 401 invalid_api_key', async (t) => {
  if (!STORE_KEY || !STORE_KEY_ID) { t.skip('no store key (CHINGU_STORE_KEY)'); return; }
  assert.match(STORE_KEY, /^cg-/);
  const c = new OpenAI({ baseURL: `${URL_BASE}/v1`, apiKey: STORE_KEY, maxRetries: 0, timeout: 30000 });
  const r = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  const s = await c.completions.create({ model: MODEL, prompt: 'once', max_tokens: 3, stream: true });
  let chunks = 0;
  for await (const ch of s) if (ch.choices?.length) chunks++;
  assert.ok(chunks > 0);
  assert.ok((await c.models.list()).data.some((m) => m.id === MODEL));
  // The user revokes its own key over the REST API, with the key itself.
  const del = await raw(`/v1/keys/${STORE_KEY_ID}`, { method: 'DELETE', key: STORE_KEY });
  assert.equal(del.status, 200, del.text);
  await assert.rejects(c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key' &&
      e.type === 'invalid_request_error' && /revoked/.test(e.message));
  await assert.rejects(c.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});
