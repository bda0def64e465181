// template_cli.mjs — drives `chingu template` over every case in $CHINGU_TESTDATA/templates and
// compares its stdout byte for byte with the reference (Python jinja2 as transformers configures it),
// or expects exit 1 with the reference's raise_exception message on stderr for error cases.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = process.env.CHINGU_BIN;
const dir = join(process.env.CHINGU_TESTDATA, 'templates');
const conv = JSON.parse(readFileSync(join(dir, 'conversations.json'), 'utf8'));
const st = conv.special_tokens;
const tmp = mkdtempSync(join(tmpdir(), 'chingu-template-'));
let ok = 0, bad = 0;
try {
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json') && n !== 'conversations.json').sort()) {
    const t = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    const tpath = join(tmp, 't.jinja');
    writeFileSync(tpath, t.template);
    for (const c of t.cases) {
      const cv = conv.conversations[c.conversation];
      const mpath = join(tmp, 'm.json');
      writeFileSync(mpath, JSON.stringify(cv.messages));
      const args = ['template', '--template', tpath, '--messages', mpath, '--now', conv.fixed_now,
        '--bos', st.bos_token, '--eos', st.eos_token, '--unk', st.unk_token, '--pad', st.pad_token];
      if (cv.tools) {
        writeFileSync(join(tmp, 'tools.json'), JSON.stringify(cv.tools));
        args.push('--tools', join(tmp, 'tools.json'));
      }
      if (!cv.add_generation_prompt) args.push('--no-generation-prompt');
      let out = null, status = 0, stderr = '';
      try {
        out = execFileSync(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        status = e.status;
        stderr = String(e.stderr);
      }
      const name = `${f} / ${c.conversation}`;
      if ('output' in c) {
        if (status === 0 && out.equals(Buffer.from(c.output, 'utf8'))) ok++;
        else { bad++; console.log(`MISMATCH ${name}: exit ${status} ${stderr.trim()}`); }
      } else {
        const lines = stderr.trim().split('\n');
        if (status === 1 && lines.length === 1 && stderr.includes(c.error.replace(/^raise_exception: /, ''))) ok++;
        else { bad++; console.log(`EXPECTED ERROR ${name}: exit ${status}, stderr ${JSON.stringify(stderr)}, want ${c.error}`); }
      }
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`chingu template: ${ok}/${ok + bad} cases identical`);
process.exit(bad ? 1 : 0);
