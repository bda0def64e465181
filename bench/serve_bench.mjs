// serve_bench.mjs — serving benchmarks against a running `chingu serve` (bench/serve_bench.sh starts
// one). Prints figures; never pass/fail on time. Plain fetch (no npm packages needed).
//   1. total generated tokens/s: 8 concurrent streams vs one stream (goal ≥ 3×), measured one / eight /
//      one again (A-B-A: load drift shows as two different single-stream figures); also split into the
//      server's parts (forward pass, engine callbacks, HTTP threads' CPU, this client's CPU) and
//      "steady" figures from the intervals in which every step decoded exactly 1 (or 8) rows
//   2. time to first token of a request sharing a ~1,000-token prefix with an earlier one, vs the
//      first (goal ≤ 25 %)
//   3. load: 64 concurrent clients, 1,000 requests, 5 % malformed, 5 % cancelled mid-stream — no 5xx
//      for valid requests; resident memory before/after (SERVER_PID)
import { readdirSync, readFileSync } from 'node:fs';

const URL_BASE = process.env.CHINGU_URL;
const MODEL = process.env.CHINGU_MODEL_ID;
const PID = process.env.SERVER_PID;
const EOS = Number(process.env.EOS_ID ?? 2);
const GEN = Number(process.env.BENCH_GEN ?? 128);
const N_LOAD = Number(process.env.BENCH_REQUESTS ?? 1000);
// How long the load test lets the server idle before reading its RSS (clients' keep-alive sockets
// close after ~4 s; MHD frees a connection's memory pool then).
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 6000);
const now = () => Number(process.hrtime.bigint()) / 1e6;

function rssKiB() {
  if (!PID) return NaN;
  const m = readFileSync(`/proc/${PID}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m);
  return m ? Number(m[1]) : NaN;
}

async function post(path, body, { signal } = {}) {
  return fetch(`${URL_BASE}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body), signal });
}

// Streams a completion; returns { ttft, tokens, total } (ms, completion tokens from usage).
async function stream(prompt, maxTokens, extra = {}) {
  const t0 = now();
  const res = await post('/v1/completions', { model: MODEL, prompt, max_tokens: maxTokens, temperature: 0, stream: true,
    stream_options: { include_usage: true }, logit_bias: { [EOS]: -100 }, ...extra });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  let ttft = null, tokens = 0, buf = '';
  const dec = new TextDecoder();
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!frame.startsWith('data: ') || frame === 'data: [DONE]') continue;
      const j = JSON.parse(frame.slice(6));
      if (ttft === null && j.choices?.length) ttft = now() - t0;
      if (j.usage) tokens = j.usage.completion_tokens;
    }
  }
  return { ttft, tokens, total: now() - t0 };
}

const words = 'the little cat saw a big red ball and ran to the park with her friend'.split(' ');
const text = (n, salt) => Array.from({ length: n }, (_, i) => words[(i * 7 + salt) % words.length]).join(' ');
// The throughput prompts: BENCH_PROMPT=tokens (default) sends 16 token ids (ids 100..399, valid in
// every vocabulary we bench), so the prompt is as short on every model; =text sends 12 words, whose
// length in tokens depends on the vocabulary (a synth model without merges reads ~77 byte tokens).
const PROMPT_KIND = process.env.BENCH_PROMPT ?? 'tokens';
const shortPrompt = (salt) => PROMPT_KIND === 'text' ? text(12, salt)
  : Array.from({ length: 16 }, (_, i) => 100 + ((i * 37 + salt * 11) % 300));

// Server CPU seconds (utime + stime) from /proc/PID/task/*/stat: all threads, and the HTTP threads
// (libmicrohttpd names them MHD-*) apart from the rest (engine thread and forward-pass workers).
function cpuSeconds() {
  if (!PID) return { all: NaN, http: NaN };
  let all = 0, http = 0;
  for (const t of readdirSync(`/proc/${PID}/task`)) {
    let f;
    try { f = readFileSync(`/proc/${PID}/task/${t}/stat`, 'utf8'); } catch { continue; }   // a thread that ended
    const name = f.slice(f.indexOf('(') + 1, f.lastIndexOf(')'));
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const sec = (Number(rest[11]) + Number(rest[12])) / 100;   // fields 14, 15 (clock ticks of 1/100 s)
    all += sec;
    if (name.startsWith('MHD')) http += sec;
  }
  return { all, http };
}

async function engineCounters() {
  const t = await (await fetch(`${URL_BASE}/metrics`)).text();
  const get = (re) => { const m = t.match(re); return m ? Number(m[1]) : NaN; };
  const cpu = cpuSeconds();
  return { fwd: get(/part="forward"\} ([\d.e+-]+)/), cb: get(/part="callback"\} ([\d.e+-]+)/),
    other: get(/part="other"\} ([\d.e+-]+)/), steps: get(/^chingu_engine_steps_total (\d+)/m),
    rows: get(/^chingu_engine_rows_total (\d+)/m), cpu: cpu.all, http: cpu.http, t: now() };
}

// Samples the counters every 250 ms while a phase runs; stop() returns the sum over the intervals in
// which every step had exactly `rows` rows (pure decode of that many streams: no prefill, no ramp or
// tail) — steady-state figures, independent of how the phase started and ended.
function sampler(rows) {
  let run = true, prev = null;
  const acc = { dt: 0, steps: 0, rows: 0, fwd: 0, cb: 0, cpu: 0, http: 0 };
  const loop = (async () => {
    while (run) {
      const c = await engineCounters();
      if (prev) {
        const ds = c.steps - prev.steps, dr = c.rows - prev.rows;
        if (ds > 0 && dr === rows * ds) {
          acc.dt += (c.t - prev.t) / 1000; acc.steps += ds; acc.rows += dr; acc.fwd += c.fwd - prev.fwd;
          acc.cb += c.cb - prev.cb; acc.cpu += c.cpu - prev.cpu; acc.http += c.http - prev.http;
        }
      }
      prev = c;
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return { stop: async () => { run = false; await loop; return acc; } };
}

function steadyLine(label, a) {
  console.log(`  steady ${label}: ${a.rows} tokens in ${a.dt.toFixed(2)} s of pure-decode intervals → ${(a.rows / a.dt).toFixed(1)} tok/s; ` +
    `forward ${(1000 * a.fwd / a.steps).toFixed(1)} ms/step; server CPU ${(1000 * a.cpu / a.rows).toFixed(1)} ms/token ` +
    `(HTTP threads ${(1000 * a.http / a.rows).toFixed(3)} ms/token, engine callbacks ${(1000 * a.cb / a.rows).toFixed(3)} ms/token)`);
}

// What a phase cost: wall, server CPU, and how the engine thread's time split.
function phaseLine(label, tokens, a, b) {
  const wall = (b.t - a.t) / 1000, cpu = b.cpu - a.cpu, http = b.http - a.http, fwd = b.fwd - a.fwd, cb = b.cb - a.cb, other = b.other - a.other;
  const steps = b.steps - a.steps, rows = b.rows - a.rows, eng = fwd + cb + other;
  console.log(`  ${label}: ${tokens} tokens, ${wall.toFixed(2)} s wall, ${(tokens / wall).toFixed(1)} tok/s; server CPU ` +
    `${cpu.toFixed(2)} s → ${(tokens / cpu).toFixed(2)} tok per CPU-s (HTTP threads ${(1000 * http / tokens).toFixed(3)} ms/token); ${steps} steps, ${(rows / steps).toFixed(2)} rows/step; ` +
    `engine ${eng.toFixed(2)} s: forward ${(100 * fwd / eng).toFixed(1)} %, callbacks ${(100 * cb / eng).toFixed(2)} % ` +
    `(${(1000 * cb / tokens).toFixed(3)} ms/token), other ${(100 * other / eng).toFixed(2)} %; forward ` +
    `${(1000 * fwd / steps).toFixed(1)} ms/step`);
  return { wall, cpu, fwd, steps };
}

async function throughput() {
  await stream('Once upon a time', 8);   // warm-up
  // A-B-A: one stream, eight, one again, so a change in machine load during the run shows up as a
  // difference between the two single-stream figures (they are averaged).
  const cpuNode0 = process.cpuUsage();
  const c0 = await engineCounters();
  let sm = sampler(1);
  const one = await stream(shortPrompt(1), GEN);
  const st1 = await sm.stop();
  const c1 = await engineCounters();
  const cpuNode1 = process.cpuUsage(cpuNode0);
  const t0 = now();
  sm = sampler(8);
  const rs = await Promise.all(Array.from({ length: 8 }, (_, k) => stream(shortPrompt(k + 2), GEN)));
  const st8 = await sm.stop();
  const wall = (now() - t0) / 1000;
  const c2 = await engineCounters();
  const cpuNode2 = process.cpuUsage(cpuNode0);
  sm = sampler(1);
  const oneB = await stream(shortPrompt(11), GEN);
  const st1b = await sm.stop();
  const oneTpsA = one.tokens / (one.total / 1000), oneTpsB = oneB.tokens / (oneB.total / 1000);
  const oneTps = (oneTpsA + oneTpsB) / 2;
  const total = rs.reduce((a, r) => a + r.tokens, 0);
  const eightTps = total / wall;
  console.log(`prompts: ${PROMPT_KIND === 'text' ? '12 words' : '16 token ids'} (BENCH_PROMPT=${PROMPT_KIND}), ` +
    `${(c1.rows - c0.rows) - (c1.steps - c0.steps) + 1} prompt tokens per request, ${GEN} generated`);
  console.log(`throughput: 1 stream ${oneTps.toFixed(1)} tok/s (${one.tokens} tokens; before/after ${oneTpsA.toFixed(1)}/${oneTpsB.toFixed(1)}); ` +
    `8 streams ${eightTps.toFixed(1)} tok/s (${total} tokens in ${wall.toFixed(2)} s) → ${(eightTps / oneTps).toFixed(2)}× (goal ≥ 3×)`);
  const p1 = phaseLine('1 stream ', one.tokens, c0, c1), p8 = phaseLine('8 streams', total, c1, c2);
  for (const k of Object.keys(st1)) st1[k] += st1b[k];
  steadyLine('1 stream ', st1);
  steadyLine('8 streams', st8);
  const node1 = (cpuNode1.user + cpuNode1.system) / 1e6, node8 = (cpuNode2.user + cpuNode2.system) / 1e6 - node1;
  console.log(`  client (this node process) CPU: 1 stream ${node1.toFixed(2)} s (${(100 * node1 / p1.wall).toFixed(1)} % of a core), ` +
    `8 streams ${node8.toFixed(2)} s (${(100 * node8 / p8.wall).toFixed(1)} % of a core)`);
  // On a machine shared with other work, wall time depends on what else runs; forward-pass time per
  // token and tokens per server CPU-second are what this server controls.
  console.log(`  ratios 8/1: tok/s ${(eightTps / oneTps).toFixed(2)}× (steady ${((st8.rows / st8.dt) / (st1.rows / st1.dt)).toFixed(2)}×), ` +
    `tokens per forward-second ${((total / p8.fwd) / (one.tokens / p1.fwd)).toFixed(2)}× (steady ` +
    `${((st8.rows / st8.fwd) / (st1.rows / st1.fwd)).toFixed(2)}×), tokens per server CPU-second ` +
    `${((total / p8.cpu) / (one.tokens / p1.cpu)).toFixed(2)}× (steady ${((st8.rows / st8.cpu) / (st1.rows / st1.cpu)).toFixed(2)}×)`);
}

async function prefixTtft() {
  const prefix = text(Number(process.env.BENCH_PREFIX_WORDS ?? 700), 3);   // ≈1,000 tokens with stories260K's vocabulary
  const a = await stream(prefix + ' Then Tom said', 4);
  const b = await stream(prefix + ' Then Amy said', 4);
  const c = await (await post('/v1/completions', { model: MODEL, prompt: prefix + ' So we', max_tokens: 1 })).json();
  console.log(`prefix TTFT: first ${a.ttft.toFixed(1)} ms, second (shared prefix) ${b.ttft.toFixed(1)} ms → ` +
    `${(100 * b.ttft / a.ttft).toFixed(1)} % (goal ≤ 25 %); prompt ${c.usage?.prompt_tokens} tokens, ` +
    `cached ${c.usage?.prompt_tokens_details?.cached_tokens}`);
}

// Baseline: the server's RSS after a 16-request warm-up (the KV pool is resident from start-up;
// the warm-up touches the per-thread allocator arenas and code pages any request needs).
async function warmUp() {
  const rssIdle = rssKiB();
  await Promise.all(Array.from({ length: 16 }, (_, k) => post('/v1/chat/completions', { model: MODEL,
    messages: [{ role: 'user', content: text(10 + k, k) }], max_tokens: 48 }).then((r) => r.text())));
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const base = rssKiB();
  console.log(`load: RSS ${rssIdle} KiB at start, ${base} KiB after warm-up (the baseline)`);
  return base;
}

async function load(round, rss0) {
  const counts = { ok: 0, malformed400: 0, cancelled: 0, valid5xx: 0, other: 0, errors: 0 };
  const statuses = {};
  let next = 0;
  const t0 = now();
  async function worker(w) {
    for (;;) {
      const i = next++;
      if (i >= N_LOAD) return;
      const kind = i % 20 === 7 ? 'malformed' : i % 20 === 13 ? 'cancel' : 'valid';
      try {
        if (kind === 'malformed') {
          const bodies = ['{"model":', `{"model":"${MODEL}","messages":"nope"}`, `{"model":"${MODEL}","prompt":"x","max_tokens":-3}`,
            `{"model":"${MODEL}","prompt":"x","temperature":"hot"}`];
          const r = await post('/v1/completions', bodies[i % bodies.length]);
          await r.text();
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (r.status === 400) counts.malformed400++; else counts.other++;
        } else if (kind === 'cancel') {
          const ac = new AbortController();
          const r = await post('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: text(20, i) }],
            max_tokens: 200, stream: true, logit_bias: { [EOS]: -100 } }, { signal: ac.signal });
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (r.status >= 500) counts.valid5xx++;
          const rd = r.body.getReader();
          await rd.read();
          ac.abort();
          counts.cancelled++;
        } else {
          const streamIt = i % 2 === 0;
          const body = { model: MODEL, messages: [{ role: 'user', content: text(10 + (i % 30), i) }], max_tokens: 16 + (i % 33),
            temperature: 0.8, seed: i, stream: streamIt };
          const r = await post('/v1/chat/completions', body);
          await r.text();
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (r.status >= 500) counts.valid5xx++; else if (r.status === 200) counts.ok++; else counts.other++;
        }
      } catch (e) {
        if (e.name !== 'AbortError') { counts.errors++; if (counts.errors < 4) console.log(`client error: ${e.message}`); }
      }
    }
  }
  await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
  const wall = (now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const health = await fetch(`${URL_BASE}/health`);
  const rss1 = rssKiB();
  console.log(`load round ${round}: ${N_LOAD} requests by 64 clients in ${wall.toFixed(1)} s; statuses ${JSON.stringify(statuses)}; ` +
    `${JSON.stringify(counts)}; /health ${health.status}; RSS after ${rss1} KiB = baseline ` +
    `${rss1 >= rss0 ? '+' : ''}${rss1 - rss0} KiB (${(100 * (rss1 - rss0) / rss0).toFixed(1)} %)`);
}

const which = (process.argv[2] ?? 'all').split(',');
if (which.includes('all') || which.includes('throughput')) await throughput();
if (which.includes('all') || which.includes('prefix')) await prefixTtft();
// The load test runs BENCH_ROUNDS (default 3) rounds after one warm-up; RSS after each round is
// compared with the baseline (the server trims its heap when idle).
if (which.includes('all') || which.includes('load')) {
  const base = await warmUp();
  for (let k = 1; k <= Number(process.env.BENCH_ROUNDS ?? 3); k++) await load(k, base);
}
