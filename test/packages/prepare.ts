/**
 * Installs, once, every set of packages the packaging and example tests install into fresh
 * apps (test/packages/install.ts keeps one copy of each install under .tmp/installs), so
 * that building the vault's native modules (~2 min) runs beside the first test files
 * instead of inside a test file's time limit. scripts/run-tests.sh starts it in the
 * background for the whole suite; the tests that need an install it is still making wait
 * for it (a lock per install), and make their own when it failed.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES_DIR, exampleApp } from '../examples/install.js';
import { installApp, packPackages } from './install.js';

async function main(): Promise<void> {
  const t0 = Date.now();
  const work = await mkdtemp(join(tmpdir(), 'bv-prepare-'));
  try {
    const tarballs = await packPackages(join(work, 'packs'));
    // The vault's set first: it is the long one (native modules).
    await installApp(join(work, 'operator'), {
      backvault: tarballs.backvault,
      '@backvault/vault': tarballs['@backvault/vault'],
    });
    await installApp(join(work, 'app'), { backvault: tarballs.backvault });
    await installApp(
      join(work, 'cli'),
      {
        backvault: tarballs.backvault,
        '@backvault/vault': tarballs['@backvault/vault'],
        '@backvault/cli': tarballs['@backvault/cli'],
      },
      [],
      { ignoreScripts: true },
    );
    for (const name of (await readdir(EXAMPLES_DIR, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)) {
      await rm(await exampleApp(name), { recursive: true, force: true });
    }
    console.log(`prepared the package installs in ${Math.round((Date.now() - t0) / 1000)} s`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
