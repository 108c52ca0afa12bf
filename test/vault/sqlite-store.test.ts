import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVaultStoreConformance } from './store-conformance.js';
import { openSqliteStore } from '../../src/vault/sqlite-store.js';

runVaultStoreConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bv-store-'));
  const path = join(dir, 'vault.sqlite');
  return {
    store: await openSqliteStore(path),
    reopen: () => openSqliteStore(path),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
