// The device SDK on Hermes (make test-phone; see build.ts and hermes-main.ts): bundled for
// React Native's engine with nothing of Node, it decodes and encodes every vector file byte
// for byte — each case list in full, as counted here on Node — and backs up, restores and
// checks an in-memory tree of a few MB. Fails if Hermes fails, if any vector file is
// skipped or partly checked, or if any check that must run there did not.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { caseLists, type V } from '../format/vector-json.js';
import { ROOT, hermesBinary, runPhone } from './build.js';

/**
 * Vector files that may be left out on Hermes because they need OPAQUE (WebAssembly, which
 * Hermes lacks): none today. Adding one needs a reason here.
 */
const NEEDS_OPAQUE: Record<string, string> = {};

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('the device SDK on Hermes (hermes-engine-cli)', () => {
  it(
    'runs every vector file in full and an in-memory backup, restore, check and key slot',
    { timeout: 600_000 },
    async () => {
      assert.ok(existsSync(hermesBinary()), `no Hermes binary at ${hermesBinary()}`);
      const r = await runPhone();
      const out = r.lines.join('\n');
      assert.ok(r.ok, `Hermes run failed:\n${out}\n${r.stderr}`);
      assert.match(
        out,
        /^engine: Hermes \(HermesInternal present\); WebAssembly undefined, crypto\.subtle undefined$/m,
      );
      const files = (await readdir(join(ROOT, 'vectors'))).filter((f) => f.endsWith('.json'));
      assert.ok(files.length >= 11, `vector files: ${files.join(', ')}`);
      let vectorPasses = 0;
      for (const f of files.sort()) {
        if (NEEDS_OPAQUE[f] !== undefined) continue;
        const v = JSON.parse(await readFile(join(ROOT, 'vectors', f), 'utf8')) as V;
        const lists = [...caseLists(v)];
        assert.ok(lists.length > 0, `${f}: no case list`);
        // Every case list, each in full (n/n), in the file's order.
        const counts = lists.map(([k, n]) => `${escape(k)} ${n}/${n}`).join(', ');
        assert.match(out, new RegExp(`^PASS vectors/${escape(f)} \\(${counts}\\)$`, 'm'), f);
        vectorPasses++;
      }
      // Nothing about a vector is skipped or partly run.
      assert.doesNotMatch(out, /^SKIP /m);
      assert.doesNotMatch(out, /^FAIL /m);
      assert.doesNotMatch(out, /partly|not run here|AEAD layer only|cannot decompress/);
      assert.equal(r.skipped, 0);
      const steps = [
        /^PASS in-memory tree \(6 files, [\d.]+ MB, SQLite \+ media\): backup to MemoryStorage/m,
        /^PASS restore into another in-memory tree, byte for byte/m,
        /^PASS check reads and verifies every blob: clean/m,
        /^PASS second backup stores nothing new/m,
        /^PASS a recovery-key slot is added, listed, and opens the repository/m,
        /^PASS a wrong key is WRONG_KEY/m,
      ];
      for (const step of steps) assert.match(out, step);
      assert.equal(r.failed, 0);
      assert.equal(r.passed, vectorPasses + steps.length);
    },
  );
});
