// chat.test.mjs — /v1/chat/completions through the official openai client (non-stream, stream,
// n, stop, seed, logprobs, json_schema, tools) against chingu serve with the fake test backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, MODEL, validate } from './common.mjs';

const MSGS = [{ role: 'system', content: 'You are a test.' }, { role: 'user', content: '안녕하세요, 친구! Say "hi".' }];

async function collect(stream) {
  const out = { content: [], finish: [], roles: [], usage: null, chunks: 0, tools: [], ids: new Set() };
  for await (const ch of stream) {
    out.chunks++;
    out.ids.add(ch.id);
    assert.equal(ch.object, 'chat.completion.chunk');
    if (ch.usage) out.usage = ch.usage;
    for (const c of ch.choices) {
      const i = c.index;
      out.content[i] ??= '';
      if (c.delta.role) out.roles[i] = c.delta.role;
      if (c.delta.content) out.content[i] += c.delta.content;
      for (const tc of c.delta.tool_calls ?? []) {
        out.tools[i] ??= [];
        const t = (out.tools[i][tc.index] ??= { id: null, name: null, args: '' });
        if (tc.id) t.id = tc.id;
        if (tc.function?.name) t.name = tc.function.name;
        t.args += tc.function?.arguments ?? '';
      }
      if (c.finish_reason) out.finish[i] = c.finish_reason;
    }
  }
  return out;
}

test('chat without streaming: shape, usage, cached tokens', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 7 });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.ok(c.message.content.length > 0);
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  // The same system+user prefix was just seen: the fake's prefix cache reports it as cached.
  const again = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 7 });
  assert.equal(again.usage.prompt_tokens_details.cached_tokens, again.usage.prompt_tokens);
  console.log(`chat: ${r.usage.completion_tokens} tokens, finish ${c.finish_reason}, cached ${again.usage.prompt_tokens_details.cached_tokens}/${again.usage.prompt_tokens}`);
});

test('chat streaming equals non-streaming for the same seed (UTF-8, quotes, control characters survive SSE)', async () => {
  const full = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 11, max_tokens: 40 });
  const s = await collect(await client.chat.completions.create({
    model: MODEL, messages: MSGS, seed: 11, max_tokens: 40, stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.ids.size, 1);
  assert.equal(s.roles[0], 'assistant');
  assert.equal(s.content[0], full.choices[0].message.content);
  assert.equal(s.finish[0], full.choices[0].finish_reason);
  assert.ok(s.usage, 'include_usage gives a usage chunk');
  assert.equal(s.usage.completion_tokens, full.usage.completion_tokens);
  console.log(`stream: ${s.chunks} chunks, ${JSON.stringify(s.content[0]).slice(0, 80)}`);
});

test('n=2 gives two different choices, in order', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, n: 2, seed: 3, max_tokens: 12 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.notEqual(r.choices[0].message.content, r.choices[1].message.content);
  const s = await collect(await client.chat.completions.create({ model: MODEL, messages: MSGS, n: 2, seed: 3, max_tokens: 12, stream: true }));
  assert.deepEqual(s.content, r.choices.map((c) => c.message.content));
});

test('seed reproducibility', async () => {
  const a = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 42, max_tokens: 20 });
  const b = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 42, max_tokens: 20 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const others = await Promise.all([43, 44, 45].map((seed) =>
    client.chat.completions.create({ model: MODEL, messages: MSGS, seed, max_tokens: 20 })));
  assert.ok(others.some((o) => o.choices[0].message.content !== a.choices[0].message.content));
});

test('max_tokens ends with finish_reason length', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fake:long' }], max_completion_tokens: 5 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 5);
});

test('stop strings cut the text before the first match (also when streamed)', async () => {
  const base = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fake:long stop test' }], seed: 5, max_tokens: 30 });
  const text = base.choices[0].message.content;
  const words = text.split(' ');
  const stop = words[Math.floor(words.length / 2)].slice(0, 3) || words[1];
  const cut = text.slice(0, text.indexOf(stop));
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fake:long stop test' }], seed: 5, max_tokens: 30, stop: [stop, 'never-appears'] });
  assert.equal(r.choices[0].message.content, cut);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await collect(await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fake:long stop test' }], seed: 5, max_tokens: 30, stop, stream: true }));
  assert.equal(s.content[0] ?? '', cut);
  assert.equal(s.finish[0], 'stop');
  console.log(`stop ${JSON.stringify(stop)}: ${text.length} → ${cut.length} chars`);
});

test('logprobs shape: token, logprob, bytes, top_logprobs', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 9, max_tokens: 10, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  assert.equal(lp.map((t) => t.token).join(''), r.choices[0].message.content);
  for (const t of lp) {
    assert.equal(typeof t.token, 'string');
    assert.ok(t.logprob <= 0);
    assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
    assert.equal(t.top_logprobs.length, 3);
    for (let k = 1; k < 3; k++) assert.ok(t.top_logprobs[k].logprob <= t.top_logprobs[k - 1].logprob);
  }
  const s = await client.chat.completions.create({ model: MODEL, messages: MSGS, seed: 9, max_tokens: 10, logprobs: true, top_logprobs: 3, stream: true });
  let n = 0;
  for await (const ch of s) for (const c of ch.choices) n += c.logprobs?.content?.length ?? 0;
  assert.equal(n, lp.length);
});

test('json_schema response validates against the schema', async () => {
  const schema = {
    type: 'object', additionalProperties: false, required: ['name', 'age', 'tags', 'mood'],
    properties: {
      name: { type: 'string' }, age: { type: 'integer', minimum: 18 }, tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
      mood: { enum: ['happy', 'sad'] }, address: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  };
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } } });
  const v = JSON.parse(r.choices[0].message.content);
  assert.deepEqual(validate(schema, v), []);
  const o = await client.chat.completions.create({ model: MODEL, messages: MSGS, response_format: { type: 'json_object' } });
  assert.equal(typeof JSON.parse(o.choices[0].message.content), 'object');
  console.log(`json_schema: ${r.choices[0].message.content}`);
});

const TOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } }, required: ['city'] } } },
{ type: 'function', function: { name: 'noop', parameters: { type: 'object', properties: {} } } }];

test('tools → tool_calls, non-streamed and streamed, then a tool result gets a text answer', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, tools: TOOLS });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.content, null);
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.match(call.id, /^call_/);
  const args = JSON.parse(call.function.arguments);
  assert.deepEqual(validate(TOOLS[0].function.parameters, args), []);

  const s = await collect(await client.chat.completions.create({ model: MODEL, messages: MSGS, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'noop' } }, stream: true }));
  assert.equal(s.finish[0], 'tool_calls');
  assert.equal(s.tools[0].length, 1);
  assert.equal(s.tools[0][0].name, 'noop');
  assert.match(s.tools[0][0].id, /^call_/);
  assert.deepEqual(JSON.parse(s.tools[0][0].args), {});

  const follow = await client.chat.completions.create({ model: MODEL, tools: TOOLS, messages: [...MSGS, c.message,
    { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' }] });
  assert.equal(follow.choices[0].finish_reason, 'stop');
  assert.ok(follow.choices[0].message.content.length > 0);
  const none = await client.chat.completions.create({ model: MODEL, messages: MSGS, tools: TOOLS, tool_choice: 'none' });
  assert.equal(none.choices[0].message.tool_calls, undefined);
});
