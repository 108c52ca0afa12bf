/**
 * `make api-check` (scripts/api-report.ts) on a copy of the package: it passes when the
 * checked-in report and reference match the compiled .d.ts, and fails — naming the file
 * and `make api-report` — when the public API or its TSDoc changed without them, or when
 * the API names a type no entry point exports. `--update` (`make api-report`) brings
 * them back in line. One entry point (`./errors`) keeps it quick.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, runNode } from '../examples/install.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/api-report.js', import.meta.url));

describe('make api-check / make api-report (scripts/api-report.ts)', () => {
  let copy: string;
  const run = (...args: string[]) =>
    runNode(copy, SCRIPT, ['--entry', './errors', ...args], { BACKVAULT_API_ROOT: copy });

  before(async () => {
    copy = await mkdtemp(join(tmpdir(), 'bv-api-'));
    await mkdir(join(copy, 'packages/sdk'), { recursive: true });
    await cp(join(REPO_ROOT, 'packages/sdk/package.json'), join(copy, 'packages/sdk/package.json'));
    await cp(join(REPO_ROOT, 'docs/api'), join(copy, 'docs/api'), { recursive: true });
    await cp(join(REPO_ROOT, 'packages/sdk/dist'), join(copy, 'packages/sdk/dist'), {
      recursive: true,
      filter: (src) => !/\.(js|map)$/.test(src),
    });
    await symlink(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  });
  after(async () => rm(copy, { recursive: true, force: true }));

  it('passes on the checked-in report and reference', async () => {
    const r = await run();
    assert.equal(r.code, 0, r.stderr);
  });

  it('fails on a new export until `make api-report` records it', async () => {
    await appendFile(
      join(copy, 'packages/sdk/dist/errors.d.ts'),
      '\n/** Added by the test. */\nexport declare function addedForTest(): void;\n',
    );
    const r = await run();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /The public API changed: docs\/api\/backvault-errors\.api\.md/);
    assert.match(r.stderr, /run `make api-report` and commit docs\/api\//);
    const u = await run('--update');
    assert.equal(u.code, 0, u.stderr);
    assert.match(
      await readFile(join(copy, 'docs/api/backvault-errors.api.md'), 'utf8'),
      /addedForTest/,
    );
    assert.match(
      await readFile(join(copy, 'docs/api/reference/backvault-errors.md'), 'utf8'),
      /### addedForTest \(function\)[\s\S]*Added by the test\./,
    );
    assert.equal((await run()).code, 0);
  });

  it('fails when only the TSDoc changed (the reference is stale)', async () => {
    const dts = join(copy, 'packages/sdk/dist/errors.d.ts');
    const text = await readFile(dts, 'utf8');
    await writeFile(dts, text.replace('/** Added by the test. */', '/** Reworded by the test. */'));
    const r = await run();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /docs\/api\/reference\/backvault-errors\.md/);
    assert.equal((await run('--update')).code, 0);
  });

  it('fails when the API names a type no entry point exports', async () => {
    // A type of another module that the entry point does not re-export.
    await writeFile(
      join(copy, 'packages/sdk/dist/hidden.d.ts'),
      'export interface Hidden { x: number }\n',
    );
    await appendFile(
      join(copy, 'packages/sdk/dist/errors.d.ts'),
      "\nimport type { Hidden } from './hidden.js';\n/** Leaks Hidden. */\nexport declare function leak(): Hidden;\n",
    );
    const r = await run('--update');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ae-forgotten-export .*"Hidden"/);
    assert.match(r.stderr, /export the named type/);
  });
});
