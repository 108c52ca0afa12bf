// The device SDK on Hermes (make test-phone; see build.ts and hermes-main.ts): bundled for
// React Native's engine with nothing of Node, it decodes and encodes the vectors byte for
// byte and backs up, restores and checks an in-memory tree of a few MB. Fails if Hermes
// fails, or if any check that must run there did not.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { hermesBinary, runPhone } from './build.js';

describe('the device SDK on Hermes (hermes-engine-cli)', () => {
  it(
    'runs the vectors and an in-memory backup, restore and check',
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
      for (const name of [
        'key-encoding',
        'key-schedule',
        'config',
        'blob',
        'pack',
        'tree',
        'snapshot',
        'chunking',
        'negative-repository',
      ])
        assert.match(out, new RegExp(`^PASS vectors/${name}\\.json`, 'm'), name);
      for (const step of [
        /^PASS in-memory tree \(6 files, [\d.]+ MB, SQLite \+ media\): backup to MemoryStorage/m,
        /^PASS restore into another in-memory tree, byte for byte/m,
        /^PASS check reads and verifies every blob: clean/m,
        /^PASS second backup stores nothing new/m,
        /^PASS a wrong key is WRONG_KEY/m,
      ])
        assert.match(out, step);
      // What cannot run on Hermes is said, never silently dropped.
      assert.match(out, /^SKIP vectors\/key-slots\.json: .*WebCrypto/m);
      assert.match(out, /^SKIP vectors\/repository\.json: .*decoder/m);
      assert.equal(r.failed, 0);
      assert.equal(r.passed, 14);
    },
  );
});
