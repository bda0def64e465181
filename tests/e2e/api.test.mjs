// api.test.mjs — completions, embeddings, models, health/metrics, auth, CORS, the error shape for
// bad requests, cancellation of a client that aborts, and 503 + Retry-After when the queue is full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { client, MODEL, URL_BASE, raw, metric } from './common.mjs';

test('completions: string, strings and token ids; echo; legacy logprobs', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 6, echo: true, logprobs: 2, seed: 1 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  const c = r.choices[0];
  assert.ok(c.text.startsWith('Once upon a time'));
  assert.equal(c.finish_reason, 'length');
  assert.equal(c.logprobs.tokens.length, 6);
  assert.equal(c.logprobs.token_logprobs.length, 6);
  assert.equal(c.logprobs.top_logprobs.length, 6);
  assert.equal(Object.keys(c.logprobs.top_logprobs[0]).length, 2);
  // text_offset points at each token inside the returned text (after the echoed prompt), in characters
  const chars = Array.from(c.text);
  c.logprobs.tokens.forEach((t, i) => assert.equal(chars.slice(c.logprobs.text_offset[i], c.logprobs.text_offset[i] + Array.from(t).length).join(''), t));
  const m = await client.completions.create({ model: MODEL, prompt: ['first', 'second'], max_tokens: 3, n: 2 });
  assert.deepEqual(m.choices.map((x) => x.index), [0, 1, 2, 3]);
  const t = await client.completions.create({ model: MODEL, prompt: [1, 2, 3], max_tokens: 3 });
  assert.equal(t.choices.length, 1);
  assert.equal(t.usage.prompt_tokens, 3);
  let streamed = '';
  for await (const ch of await client.completions.create({ model: MODEL, prompt: 'abc', max_tokens: 5, seed: 2, stream: true }))
    streamed += ch.choices[0]?.text ?? '';
  const same = await client.completions.create({ model: MODEL, prompt: 'abc', max_tokens: 5, seed: 2 });
  assert.equal(streamed, same.choices[0].text);
});

test('embeddings: float and base64 agree, unit length, one per input', async () => {
  const f = await client.embeddings.create({ model: MODEL, input: ['hello 친구', 'second text'], encoding_format: 'float' });
  assert.equal(f.data.length, 2);
  assert.equal(f.data[1].index, 1);
  const v = f.data[0].embedding;
  assert.equal(v.length, 64);
  const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
  const b = await raw('/v1/embeddings', { body: JSON.stringify({ model: MODEL, input: 'hello 친구', encoding_format: 'base64' }) });
  assert.equal(b.status, 200);
  const buf = Buffer.from(b.json.data[0].embedding, 'base64');
  const dec = Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(4 * i));
  assert.deepEqual(dec, v.map((x) => Math.fround(x)));
  const d = await client.embeddings.create({ model: MODEL, input: 'hello 친구' });   // the client asks for base64 itself
  assert.deepEqual(d.data[0].embedding.map(Math.fround), v.map(Math.fround));
  assert.ok(f.usage.prompt_tokens >= 4);
});

test('models list and retrieve; unknown model → 404', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL]);
  const m = await client.models.retrieve(MODEL);
  assert.equal(m.object, 'model');
  await assert.rejects(client.models.retrieve('gpt-4o'), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found' && e.param === 'model');
});

test('health is public; metrics and the API need the key; a wrong key is 401', async () => {
  const h = await raw('/health', { method: 'GET', key: null });
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  const m = await raw('/v1/models', { method: 'GET', key: null });
  assert.equal(m.status, 401);
  assert.equal(m.json.error.code, 'invalid_api_key');
  const bad = new OpenAI({ baseURL: `${URL_BASE}/v1`, apiKey: 'sk-wrong-key-123', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  const other = new OpenAI({ baseURL: `${URL_BASE}/v1`, apiKey: 'sk-another-key-0001', maxRetries: 0 });
  assert.equal((await other.models.list()).data.length, 1);
  const met = await raw('/metrics', { method: 'GET' });
  assert.equal(met.status, 200);
  assert.match(met.text, /^chingu_requests_total\{code="200"\} \d+$/m);
  assert.match(met.text, /^chingu_time_to_first_token_seconds_bucket\{le="\+Inf"\} \d+$/m);
  assert.match(met.text, /^chingu_kv_blocks_free \d+$/m);
});

test('CORS only for the configured origin', async () => {
  const ok = await raw('/v1/models', { method: 'GET', headers: { origin: 'http://localhost:5173' } });
  assert.equal(ok.headers.get('access-control-allow-origin'), 'http://localhost:5173');
  const no = await raw('/v1/models', { method: 'GET', headers: { origin: 'http://evil.example' } });
  assert.equal(no.headers.get('access-control-allow-origin'), null);
  const pre = await raw('/v1/chat/completions', { method: 'OPTIONS', key: null, headers: { origin: 'http://localhost:5173' } });
  assert.equal(pre.status, 204);
  assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
});

// [description, path, body, status, param, code]
const msg = [{ role: 'user', content: 'hi' }];
const chat = (extra) => JSON.stringify({ model: MODEL, messages: msg, ...extra });
const BAD = [
  ['malformed JSON', '/v1/chat/completions', '{"model": "fake", "messages": [', 400, null, 'invalid_json'],
  ['duplicate key', '/v1/chat/completions', '{"model":"fake","model":"fake","messages":[]}', 400, null, 'invalid_json'],
  ['not an object', '/v1/chat/completions', '[1,2]', 400, null, 'invalid_type'],
  ['too deep', '/v1/chat/completions', `{"model":"fake","messages":${'['.repeat(100)}${']'.repeat(100)}}`, 400, null, 'json_too_deep'],
  ['missing model', '/v1/chat/completions', JSON.stringify({ messages: msg }), 400, 'model', 'missing_required_parameter'],
  ['missing messages', '/v1/chat/completions', JSON.stringify({ model: MODEL }), 400, 'messages', 'missing_required_parameter'],
  ['empty messages', '/v1/chat/completions', chat({ messages: [] }), 400, 'messages', 'empty_array'],
  ['bad role', '/v1/chat/completions', chat({ messages: [{ role: 'robot', content: 'x' }] }), 400, 'messages[0].role', 'invalid_value'],
  ['content number', '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 5 }] }), 400, 'messages[0].content', 'invalid_type'],
  ['image part', '/v1/chat/completions', chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), 400, 'messages[0].content[0].type', 'unsupported_content_type'],
  ['tool without id', '/v1/chat/completions', chat({ messages: [{ role: 'tool', content: 'x' }] }), 400, 'messages[0].tool_call_id', 'missing_required_parameter'],
  ['temperature string', '/v1/chat/completions', chat({ temperature: 'hot' }), 400, 'temperature', 'invalid_type'],
  ['temperature high', '/v1/chat/completions', chat({ temperature: 2.5 }), 400, 'temperature', 'decimal_above_max_value'],
  ['top_p negative', '/v1/chat/completions', chat({ top_p: -0.1 }), 400, 'top_p', 'decimal_below_min_value'],
  ['n zero', '/v1/chat/completions', chat({ n: 0 }), 400, 'n', 'integer_below_min_value'],
  ['n huge', '/v1/chat/completions', chat({ n: 100000 }), 400, 'n', 'integer_above_max_value'],
  ['n float', '/v1/chat/completions', chat({ n: 1.5 }), 400, 'n', 'invalid_type'],
  ['max_tokens -2', '/v1/chat/completions', chat({ max_tokens: -2 }), 400, 'max_tokens', 'integer_below_min_value'],
  ['max_tokens zero', '/v1/chat/completions', chat({ max_tokens: 0 }), 400, 'max_tokens', 'integer_below_min_value'],
  ['max_tokens string', '/v1/chat/completions', chat({ max_tokens: '5' }), 400, 'max_tokens', 'invalid_type'],
  ['max_completion_tokens 0', '/v1/chat/completions', chat({ max_completion_tokens: 0 }), 400, 'max_completion_tokens', 'integer_below_min_value'],
  ['legacy max_tokens -3', '/v1/completions', JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: -3 }), 400, 'max_tokens', 'integer_below_min_value'],
  ['max_tokens above cap', '/v1/chat/completions', chat({ max_tokens: 10000000 }), 400, 'max_tokens', 'integer_above_max_value'],
  ['context too long', '/v1/chat/completions', chat({ max_tokens: 8190 }), 400, 'messages', 'context_length_exceeded'],
  ['five stops', '/v1/chat/completions', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop', 'array_above_max_length'],
  ['empty stop', '/v1/chat/completions', chat({ stop: [''] }), 400, 'stop[0]', 'invalid_value'],
  ['logit_bias key', '/v1/chat/completions', chat({ logit_bias: { abc: 1 } }), 400, 'logit_bias', 'invalid_value'],
  ['logit_bias range', '/v1/chat/completions', chat({ logit_bias: { 12: 101 } }), 400, 'logit_bias', 'invalid_value'],
  ['top_logprobs alone', '/v1/chat/completions', chat({ top_logprobs: 2 }), 400, 'top_logprobs', 'invalid_value'],
  ['top_logprobs 21', '/v1/chat/completions', chat({ logprobs: true, top_logprobs: 21 }), 400, 'top_logprobs', 'integer_above_max_value'],
  ['presence_penalty', '/v1/chat/completions', chat({ presence_penalty: 3 }), 400, 'presence_penalty', 'decimal_above_max_value'],
  ['response_format type', '/v1/chat/completions', chat({ response_format: { type: 'yaml' } }), 400, 'response_format.type', 'invalid_value'],
  ['json_schema name', '/v1/chat/completions', chat({ response_format: { type: 'json_schema', json_schema: { name: 'bad name!' } } }), 400, 'response_format.json_schema.name', 'invalid_value'],
  ['tool type', '/v1/chat/completions', chat({ tools: [{ type: 'retrieval' }] }), 400, 'tools[0].type', 'invalid_value'],
  ['tool_choice unknown fn', '/v1/chat/completions', chat({ tools: [{ type: 'function', function: { name: 'a' } }], tool_choice: { type: 'function', function: { name: 'b' } } }), 400, 'tool_choice', 'invalid_value'],
  ['stream_options without stream', '/v1/chat/completions', chat({ stream_options: { include_usage: true } }), 400, 'stream_options', 'invalid_value'],
  ['stream not bool', '/v1/chat/completions', chat({ stream: 'yes' }), 400, 'stream', 'invalid_type'],
  ['prompt missing', '/v1/completions', JSON.stringify({ model: MODEL }), 400, 'prompt', 'missing_required_parameter'],
  ['prompt bad token', '/v1/completions', JSON.stringify({ model: MODEL, prompt: [1, -2] }), 400, 'prompt[1]', 'invalid_value'],
  ['legacy logprobs 6', '/v1/completions', JSON.stringify({ model: MODEL, prompt: 'x', logprobs: 6 }), 400, 'logprobs', 'integer_above_max_value'],
  ['embedding format', '/v1/embeddings', JSON.stringify({ model: MODEL, input: 'x', encoding_format: 'hex' }), 400, 'encoding_format', 'invalid_value'],
  ['embedding empty', '/v1/embeddings', JSON.stringify({ model: MODEL, input: [] }), 400, 'input', 'empty_array'],
  ['unknown model', '/v1/chat/completions', chat({ model: 'nope' }), 404, 'model', 'model_not_found'],
  ['unknown path', '/v1/nothing', '{}', 404, null, 'unknown_url'],
  ['wrong method', '/v1/chat/completions', undefined, 405, null, 'method_not_allowed'],
  ['body too large', '/v1/chat/completions', chat({ pad: 'x'.repeat(1100000) }), 413, null, 'request_too_large'],
];

test(`${BAD.length} kinds of bad request → exact OpenAI error shape, status, param, code`, async () => {
  for (const [what, path, body, status, param, code] of BAD) {
    const r = await raw(path, { method: body === undefined ? 'GET' : 'POST', body });
    assert.equal(r.status, status, `${what}: status ${r.status} ${r.text.slice(0, 200)}`);
    assert.deepEqual(Object.keys(r.json), ['error'], what);
    assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'param', 'code'], what);
    assert.equal(typeof r.json.error.message, 'string');
    assert.ok(r.json.error.message.length > 10, what);
    assert.equal(r.json.error.type, 'invalid_request_error', what);
    assert.equal(r.json.error.param, param, `${what}: ${r.json.error.message}`);
    assert.equal(r.json.error.code, code, `${what}: ${r.json.error.message}`);
    if (param) assert.ok(r.json.error.message.includes(param.split('.')[0].split('[')[0]) || code === 'model_not_found' || code === 'context_length_exceeded', `${what}: message names the field: ${r.json.error.message}`);
  }
  // The official client surfaces the same fields.
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: msg, temperature: 9 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature' && e.type === 'invalid_request_error');
  console.log(`${BAD.length} bad requests answered with the OpenAI error shape`);
});

test('a client that aborts mid-stream is cancelled server-side', async () => {
  const before = await metric('chingu_requests_cancelled_total');
  const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fake:long abort me' }], max_tokens: 5000, stream: true });
  let n = 0;
  try {
    for await (const ch of stream) { if (ch.choices[0]?.delta?.content && ++n === 3) stream.controller.abort(); }
  } catch (e) { assert.ok(e.name === 'AbortError' || e instanceof OpenAI.APIUserAbortError, `${e}`); }
  let after = before;
  for (let i = 0; i < 50 && after <= before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await metric('chingu_requests_cancelled_total');
  }
  assert.ok(after > before, `cancelled_total ${before} → ${after}`);
  assert.equal(await metric('chingu_requests_running'), 0);
  console.log(`abort: cancelled_total ${before} → ${after}`);
});

test('queue full → 503 with Retry-After in OpenAI shape; the server recovers', async () => {
  const body = chat({ messages: [{ role: 'user', content: 'fake:long busy' }], max_tokens: 150 });
  const rs = await Promise.all(Array.from({ length: 12 }, () => raw('/v1/chat/completions', { body })));
  const ok = rs.filter((r) => r.status === 200), busy = rs.filter((r) => r.status === 503);
  assert.equal(ok.length + busy.length, 12, rs.map((r) => r.status).join(','));
  assert.ok(busy.length >= 1 && ok.length >= 4, `200: ${ok.length}, 503: ${busy.length}`);
  for (const r of busy) {
    assert.equal(r.headers.get('retry-after'), '1');
    assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'param', 'code']);
    assert.equal(r.json.error.type, 'server_error');
  }
  for (const r of ok) assert.equal(r.json.choices[0].finish_reason, 'length');
  const after = await client.chat.completions.create({ model: MODEL, messages: msg, max_tokens: 2 });
  assert.equal(after.choices.length, 1);
  console.log(`burst of 12: ${ok.length} served, ${busy.length} × 503`);
});

// max_tokens absent / null / -1. OpenAI: absent or null = no limit but the context (chat) and 16
// (legacy completions); llama-server also reads -1 as "no limit" (its n_predict), so we do too.
test('max_tokens absent, null and -1: no limit but the context (chat); legacy completions default to 16', async () => {
  const msgs = [{ role: 'user', content: 'limits, please answer' }];
  const base = await raw('/v1/chat/completions', { body: chat({ messages: msgs, seed: 9 }) });
  assert.equal(base.status, 200, base.text);
  assert.equal(base.json.choices[0].finish_reason, 'stop');   // the fake's natural end, far below the context
  for (const v of [null, -1]) {
    for (const key of ['max_tokens', 'max_completion_tokens']) {
      const r = await raw('/v1/chat/completions', { body: chat({ messages: msgs, seed: 9, [key]: v }) });
      assert.equal(r.status, 200, `${key}: ${v}: ${r.text.slice(0, 200)}`);
      assert.equal(r.json.choices[0].message.content, base.json.choices[0].message.content, `${key}: ${v}`);
      assert.equal(r.json.choices[0].finish_reason, 'stop');
    }
  }
  const legacy = async (prompt, extra) => (await raw('/v1/completions', { body: JSON.stringify({ model: MODEL, prompt, seed: 9, ...extra }) })).json;
  for (const extra of [{}, { max_tokens: null }]) {
    const d = await legacy('fake:long x', extra);   // endless without a limit
    assert.equal(d.usage.completion_tokens, 16);
    assert.equal(d.choices[0].finish_reason, 'length');
  }
  const u = await legacy('a plain prompt', { max_tokens: -1 });
  assert.equal(u.choices[0].finish_reason, 'stop');
  assert.equal((await legacy('a plain prompt', {})).usage.completion_tokens, Math.min(16, u.usage.completion_tokens));
  console.log(`chat without max_tokens: ${base.json.usage.completion_tokens} tokens (stop); legacy: 16 by default, ${u.usage.completion_tokens} with -1 (stop)`);
});
