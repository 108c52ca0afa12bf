/**
 * `make demo` (dist/scripts/demo.js), the first half of the set-up contract, run as a user
 * runs it: a second time, in a home whose state file remembers the repository the first
 * run created at the same place. The demo must keep its devices' state in its own
 * directory: that remembered repository is a different one, which the CLI rightly reports
 * as replaced (ROLLBACK) to a device that saw it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeDir, tempDir } from '../backup/helpers.js';

const DEMO_JS = new URL('../../scripts/demo.js', import.meta.url).pathname;

describe('make demo', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-demo-');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('runs to the end again, and leaves the user’s own state file alone', async () => {
    const root = join(dir, 'demo');
    const home = join(dir, 'home');
    const statePath = join(home, '.local', 'state', 'backvault', 'state.json');
    // What an earlier run leaves in the user's default state: the demo's store location,
    // seen holding another repository (each run creates a new one there).
    const other = 'ab'.repeat(16);
    const earlier = JSON.stringify({
      version: 1,
      repos: { [other]: { seq: 3, snapshot: 'cd'.repeat(32) } },
      locations: { [join(root, 'cloud')]: other },
    });
    await mkdir(join(home, '.local', 'state', 'backvault'), { recursive: true });
    await writeFile(statePath, earlier);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, NO_COLOR: '1' };
    env.BACKVAULT_DEMO_DIR = root;
    const child = spawn(process.execPath, [DEMO_JS], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, `demo exited ${code}:\n${out.slice(-3000)}`);
    assert.match(out, /Done in [\d.]+ s\./);
    assert.doesNotMatch(out, /ROLLBACK/);
    assert.equal(await readFile(statePath, 'utf8'), earlier, 'the demo wrote to the home state');
  });
});
