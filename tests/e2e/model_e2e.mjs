// model_e2e.mjs — the official openai client against `chingu serve -m <real model>` (run by
// tests/integ/serve_model_e2e.sh; not a *.test.mjs file, so the fake-backend suite skips it).
// Independent references: `chingu generate` (single-sequence greedy, GEN_TEXT) for completions, and
// a schema checker written here (common.mjs validate) for json_schema output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, raw, validate } from './common.mjs';

const MODEL = process.env.CHINGU_MODEL_ID;
const GEN_PROMPT = process.env.GEN_PROMPT;
const GEN_TEXT = process.env.GEN_TEXT;
const MSGS = [{ role: 'user', content: 'Once upon a time there was a cat.' }];

async function collect(stream) {
  const out = { content: [], finish: [], usage: null };
  for await (const ch of stream) {
    assert.equal(ch.object, 'chat.completion.chunk');
    if (ch.usage) out.usage = ch.usage;
    for (const c of ch.choices) {
      out.content[c.index] = (out.content[c.index] ?? '') + (c.delta.content ?? '');
      if (c.finish_reason) out.finish[c.index] = c.finish_reason;
    }
  }
  return out;
}

test('models lists the loaded file', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL]);
});

test('completions: greedy text equals chingu generate (single sequence)', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: GEN_PROMPT, max_tokens: 20, temperature: 0 });
  assert.equal(r.choices[0].text, GEN_TEXT);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 20);
});

test('chat: non-stream and stream give the same greedy text; the repeat is served from the prefix cache', async () => {
  const a = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 24, temperature: 0 });
  const text = a.choices[0].message.content;
  assert.ok(text.length > 0);
  assert.ok(['stop', 'length'].includes(a.choices[0].finish_reason));
  const s = await collect(await client.chat.completions.create({
    model: MODEL, messages: MSGS, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.content[0], text);
  assert.equal(s.usage.prompt_tokens, a.usage.prompt_tokens);
  assert.ok(s.usage.prompt_tokens_details.cached_tokens > 0, 'second identical prompt reuses cached blocks');
  console.log(`prompt ${a.usage.prompt_tokens} tokens, cached on repeat ${s.usage.prompt_tokens_details.cached_tokens}`);
});

test('n=2 returns two choices; a seed reproduces sampled text', async () => {
  const p = { model: MODEL, messages: MSGS, max_tokens: 16, temperature: 1.0, seed: 1234, n: 2 };
  const a = await client.chat.completions.create(p);
  const b = await client.chat.completions.create(p);
  assert.equal(a.choices.length, 2);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.equal(a.usage.completion_tokens, b.usage.completion_tokens);
});

test('stop: the text ends before the stop string', async () => {
  const g = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 24, temperature: 0 });
  const text = g.choices[0].message.content;
  const words = text.split(' ').filter((w) => w.length > 2);
  assert.ok(words.length >= 2, `need words in ${JSON.stringify(text)}`);
  const stop = ' ' + words[1];
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 24, temperature: 0, stop: [stop] });
  assert.equal(r.choices[0].message.content, text.slice(0, text.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('logprobs: one entry per token, top_logprobs of the asked size, log-probabilities ≤ 0', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 8, temperature: 0,
    logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  assert.ok(lp.length >= 1 && lp.length <= r.usage.completion_tokens);
  for (const e of lp) {
    assert.equal(e.top_logprobs.length, 3);
    assert.ok(e.logprob <= 0);
    // Greedy: the chosen token is the most probable one.
    assert.ok(Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-5);
  }
});

test('json_schema output parses and validates', async () => {
  const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0 },
    tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, minItems: 1, maxItems: 3 } },
    required: ['name', 'age', 'tags'], additionalProperties: false };
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 200, seed, temperature: 1,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } } });
    const v = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(validate(schema, v), []);
  }
});

test('a tight max_tokens: constrained output still closes and ends complete (finish "stop" / "tool_calls")', async () => {
  // any object: free-form strings and open containers, adversarial at temperature 1
  for (const seed of [1, 2, 3, 4]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 24, seed, temperature: 1,
      response_format: { type: 'json_object' } });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.completion_tokens <= 24);
    const v = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof v, 'object');
  }
  // parallel calls allowed: a model that keeps adding calls is closed by the budget, every call complete
  const params = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: params } }];
  for (const seed of [5, 6]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 120, seed, temperature: 1,
      tools, tool_choice: 'required', parallel_tool_calls: true });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.ok(r.usage.completion_tokens <= 120);
    assert.ok(r.choices[0].message.tool_calls.length >= 1);
    for (const call of r.choices[0].message.tool_calls) assert.deepEqual(validate(params, JSON.parse(call.function.arguments)), []);
  }
});

test('a prompt that cannot fit is a 400 naming both numbers', async () => {
  const r = await raw('/v1/chat/completions', { body: JSON.stringify({ model: MODEL, messages: MSGS, max_tokens: 1000 }) });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /1000/);
  assert.match(r.json.error.message, new RegExp(process.env.CHINGU_CTX));
});

test('tools: tool_choice required / named give tool_calls (also as streamed deltas) with valid arguments', async () => {
  const params = { type: 'object', properties: { city: { type: 'string', maxLength: 10 } }, required: ['city'],
    additionalProperties: false };
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: params } }];
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 200, seed: 3, tools,
    tool_choice: 'required', parallel_tool_calls: false });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(validate(params, JSON.parse(call.function.arguments)), []);
  const s = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 200, seed: 4, tools, stream: true,
    tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false });
  let name = '', args = '', finish = null;
  for await (const ch of s) {
    for (const c of ch.choices) {
      for (const tc of c.delta.tool_calls ?? []) { name += tc.function?.name ?? ''; args += tc.function?.arguments ?? ''; }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(name, 'get_weather');
  assert.deepEqual(validate(params, JSON.parse(args)), []);
});

// Embeddings through the official client. References: `chingu tokenize` (EMB_IDS: the token ids of
// GEN_PROMPT, so text and token-id inputs must agree) and llama.cpp's metadata (EMB_DIM: the
// model's embedding_length, read by `chingu info`).
const EMB_DIM = Number(process.env.EMB_DIM);
const EMB_IDS = JSON.parse(process.env.EMB_IDS ?? '[]');
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

test('embeddings: float and base64 agree, identical inputs give identical vectors, different ones differ', async () => {
  const input = [GEN_PROMPT, GEN_PROMPT, 'The little dog ran home.'];
  const f = await client.embeddings.create({ model: MODEL, input, encoding_format: 'float' });
  assert.equal(f.object, 'list');
  assert.equal(f.data.length, 3);
  f.data.forEach((d, i) => { assert.equal(d.index, i); assert.equal(d.object, 'embedding'); assert.equal(d.embedding.length, EMB_DIM); });
  for (const d of f.data) assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5, `norm ${norm(d.embedding)}`);
  assert.deepEqual(f.data[0].embedding, f.data[1].embedding);
  const cos = f.data[0].embedding.reduce((s, x, k) => s + x * f.data[2].embedding[k], 0);
  assert.ok(cos < 0.9999, `different inputs, cosine ${cos}`);
  assert.ok(f.usage.prompt_tokens > 2 * EMB_IDS.length);   // two copies of GEN_PROMPT and a longer text
  // The client asks for base64 when no format is given and decodes it to floats itself.
  const b = await client.embeddings.create({ model: MODEL, input: GEN_PROMPT });
  assert.deepEqual(b.data[0].embedding, f.data[0].embedding.map(Math.fround));
  const r = await raw('/v1/embeddings', { body: JSON.stringify({ model: MODEL, input: GEN_PROMPT, encoding_format: 'base64' }) });
  assert.equal(r.status, 200);
  const buf = Buffer.from(r.json.data[0].embedding, 'base64');
  assert.equal(buf.length, 4 * EMB_DIM);
  const dec = Array.from({ length: EMB_DIM }, (_, k) => buf.readFloatLE(4 * k));
  assert.deepEqual(dec, f.data[0].embedding.map(Math.fround));
});

test('embeddings: token-id inputs equal the text they tokenize from; dimensions other than the model\'s is a 400', async () => {
  assert.ok(EMB_IDS.length > 1);
  const t = await client.embeddings.create({ model: MODEL, input: GEN_PROMPT, encoding_format: 'float' });
  const one = await client.embeddings.create({ model: MODEL, input: EMB_IDS, encoding_format: 'float' });
  const two = await client.embeddings.create({ model: MODEL, input: [EMB_IDS, EMB_IDS.slice(0, 2)], encoding_format: 'float' });
  assert.deepEqual(one.data[0].embedding, t.data[0].embedding);
  assert.deepEqual(two.data[0].embedding, t.data[0].embedding);
  assert.notDeepEqual(two.data[1].embedding, t.data[0].embedding);
  assert.equal(one.usage.prompt_tokens, EMB_IDS.length);
  const same = await client.embeddings.create({ model: MODEL, input: 'x', dimensions: EMB_DIM, encoding_format: 'float' });
  assert.equal(same.data[0].embedding.length, EMB_DIM);
  await assert.rejects(client.embeddings.create({ model: MODEL, input: 'x', dimensions: 8 }),
    (e) => e.status === 400 && e.param === 'dimensions');
  await assert.rejects(client.embeddings.create({ model: MODEL, input: [[1, 1 << 20]] }), (e) => e.status === 400);
});

test('embeddings while a stream runs: the stream\'s greedy text is unchanged', async () => {
  const ref = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 40, temperature: 0 });
  const s = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 40, temperature: 0, stream: true });
  let text = '', n = 0;
  const e0 = await client.embeddings.create({ model: MODEL, input: GEN_PROMPT, encoding_format: 'float' });
  for await (const ch of s) {
    for (const c of ch.choices) text += c.delta.content ?? '';
    if (n++ % 5 === 0) {
      const e = await client.embeddings.create({ model: MODEL, input: GEN_PROMPT, encoding_format: 'float' });
      assert.deepEqual(e.data[0].embedding, e0.data[0].embedding);
    }
  }
  assert.equal(text, ref.choices[0].message.content);
});

// A client's view of streamed tool calls (as the openai SDK's helpers accumulate them): per choice and
// call index, id / type / name from the first delta, arguments concatenated from every delta.
async function collectCalls(stream) {
  const out = { calls: [], finish: [], pieces: [] };
  for await (const ch of stream) {
    for (const c of ch.choices) {
      for (const tc of c.delta.tool_calls ?? []) {
        const calls = (out.calls[c.index] ??= []);
        const pieces = (out.pieces[c.index] ??= []);
        if (!calls[tc.index]) {
          assert.ok(tc.id && tc.type === 'function' && tc.function.name, `first delta of call ${tc.index} has id, type, name`);
          assert.equal(tc.function.arguments, '');
          calls[tc.index] = { id: tc.id, name: tc.function.name, arguments: '' };
          pieces[tc.index] = 0;
        } else {
          assert.equal(tc.id, undefined, 'later deltas carry no id');
          assert.equal(tc.function.name, undefined, 'later deltas carry no name');
        }
        if (tc.function.arguments) { calls[tc.index].arguments += tc.function.arguments; pieces[tc.index]++; }
      }
      if (c.finish_reason) out.finish[c.index] = c.finish_reason;
    }
  }
  return out;
}

const WEATHER = { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, days: { type: 'integer', minimum: 1 },
  unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'days', 'unit'], additionalProperties: false };
const WEATHER_TOOLS = [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER } }];

test('streamed tool calls: arguments arrive in pieces as generated and concatenate to the non-streamed call (n=2)', async () => {
  for (const seed of [7, 8]) {
    const p = { model: MODEL, messages: MSGS, max_tokens: 120, seed, temperature: 1, n: 2, tools: WEATHER_TOOLS,
      tool_choice: 'required', parallel_tool_calls: false };
    const whole = await client.chat.completions.create(p);
    const s = await collectCalls(await client.chat.completions.create({ ...p, stream: true }));
    for (const ch of whole.choices) {
      const i = ch.index;
      assert.equal(ch.finish_reason, 'tool_calls');
      assert.equal(s.finish[i], 'tool_calls');
      assert.equal(ch.message.tool_calls.length, 1);
      assert.equal(s.calls[i].length, 1);
      const [w, st] = [ch.message.tool_calls[0], s.calls[i][0]];
      assert.equal(st.name, w.function.name);
      assert.equal(st.arguments, w.function.arguments, `choice ${i}: streamed pieces concatenate to the whole arguments`);
      assert.deepEqual(validate(WEATHER, JSON.parse(st.arguments)), []);
      assert.ok(s.pieces[i][0] > 1, `choice ${i}: ${s.pieces[i][0]} argument pieces for a three-field call`);
      console.log(`seed ${seed} choice ${i}: ${s.pieces[i][0]} argument pieces → ${st.arguments}`);
    }
  }
});

test('parallel_tool_calls false holds with tool_choice auto: one call, generation stops after it', async () => {
  // tool_choice auto leaves the choice to the model; a json_schema response_format makes this tiny model
  // write two calls in the template's tool-call JSON ({"tool_calls": [...]}), which the server parses.
  const call = { type: 'object', properties: { name: { type: 'string', enum: ['get_weather'] },
    arguments: { type: 'object', properties: { city: { type: 'string', maxLength: 6 } }, required: ['city'], additionalProperties: false } },
  required: ['name', 'arguments'], additionalProperties: false };
  const schema = { type: 'object', properties: { tool_calls: { type: 'array', items: call, minItems: 2, maxItems: 2 } },
    required: ['tool_calls'], additionalProperties: false };
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: call.properties.arguments } }];
  const p = { model: MODEL, messages: MSGS, max_tokens: 150, seed: 3, temperature: 1, tools, tool_choice: 'auto',
    response_format: { type: 'json_schema', json_schema: { name: 'calls', schema } } };
  const two = await client.chat.completions.create({ ...p, parallel_tool_calls: true });
  assert.equal(two.choices[0].finish_reason, 'tool_calls');
  assert.equal(two.choices[0].message.tool_calls.length, 2);
  for (const stream of [false, true]) {
    let one;
    if (stream) {
      const s = await collectCalls(await client.chat.completions.create({ ...p, parallel_tool_calls: false, stream: true }));
      one = { calls: s.calls[0], finish: s.finish[0] };
    } else {
      const r = await client.chat.completions.create({ ...p, parallel_tool_calls: false });
      one = { calls: r.choices[0].message.tool_calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments })),
        finish: r.choices[0].finish_reason, tokens: r.usage.completion_tokens };
      assert.ok(one.tokens < two.usage.completion_tokens, `stopped after the first call: ${one.tokens} < ${two.usage.completion_tokens} tokens`);
      console.log(`auto: parallel ${two.usage.completion_tokens} tokens, 2 calls; not parallel ${one.tokens} tokens, 1 call`);
    }
    assert.equal(one.finish, 'tool_calls');
    assert.equal(one.calls.length, 1);
    assert.equal(one.calls[0].arguments, two.choices[0].message.tool_calls[0].function.arguments);
  }
});

test('no max_tokens (absent, null, -1): constrained output is budgeted by the context left and ends complete', async () => {
  const ctx = Number(process.env.CHINGU_CTX);
  for (const [seed, mt] of [[1, undefined], [2, null], [3, -1], [4, undefined]]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed, temperature: 1, max_tokens: mt,
      response_format: { type: 'json_object' } });
    assert.equal(r.choices[0].finish_reason, 'stop', `seed ${seed}`);
    assert.ok(r.usage.prompt_tokens + r.usage.completion_tokens <= ctx);
    assert.equal(typeof JSON.parse(r.choices[0].message.content), 'object');
    console.log(`json_object, max_tokens ${mt}: ${r.usage.completion_tokens} tokens of ${ctx - r.usage.prompt_tokens} left, valid JSON`);
  }
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 5, temperature: 1, tools: WEATHER_TOOLS,
    tool_choice: 'required' });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  for (const c of r.choices[0].message.tool_calls) assert.deepEqual(validate(WEATHER, JSON.parse(c.function.arguments)), []);
});

test('a call cut by max_tokens: finish "length", arguments closed where they stood (streamed = whole)', async () => {
  // Below the forced call's shortest form, so the budget cannot complete it: the output stops inside
  // the arguments at some of these limits (each one checked the same way).
  let cut = 0;
  for (const mt of [50, 60, 70, 80]) {
    const p = { model: MODEL, messages: MSGS, max_tokens: mt, seed: 1, temperature: 1, tools: WEATHER_TOOLS,
      tool_choice: 'required', parallel_tool_calls: false };
    const whole = await client.chat.completions.create(p);
    const s = await collectCalls(await client.chat.completions.create({ ...p, stream: true }));
    const c = whole.choices[0];
    assert.equal(s.finish[0], c.finish_reason);
    if (!c.message.tool_calls) continue;
    assert.equal(s.calls[0][0].arguments, c.message.tool_calls[0].function.arguments);
    const args = JSON.parse(c.message.tool_calls[0].function.arguments);
    for (const [k, v] of Object.entries(args)) {   // every member present is one the schema has, never a cut key
      assert.ok(k in WEATHER.properties, `key ${k}`);
      assert.notEqual(v, null);
    }
    if (c.finish_reason === 'length') cut++;
    console.log(`max_tokens ${mt}: ${c.finish_reason}, arguments ${c.message.tool_calls[0].function.arguments}`);
  }
  assert.ok(cut >= 1, 'at least one limit cut the arguments');
});
