/**
 * Child process for the LocalStorage tests (spawned with `node`):
 *
 *   writer ROOT NAME SIZE — prints "ready", then overwrites NAME forever with versions of
 *     SIZE random bytes whose first 32 bytes are the SHA-256 of the rest, so a reader can
 *     tell a whole version from a torn one. The parent kills it with SIGKILL.
 *   probe ROOT — tries operations the parent made impossible by permissions and prints
 *     one JSON line: for each operation, the error code and message (or "ok").
 */
import { createHash, randomBytes } from 'node:crypto';
import { BackvaultError } from '#sdk/errors.js';
import { LocalStorage } from '#sdk/storage/node/local.js';

function version(size: number): Uint8Array {
  const data = new Uint8Array(randomBytes(size));
  data.set(createHash('sha256').update(data.subarray(32)).digest(), 0);
  return data;
}

async function writer(root: string, name: string, size: number): Promise<never> {
  const storage = new LocalStorage(root);
  // Made up front, so that the loop spends its time inside put() and kills land there.
  const versions = [version(size), version(size), version(size)];
  process.stdout.write('ready\n');
  for (let i = 0; ; i++) await storage.put(name, versions[i % versions.length] ?? new Uint8Array());
}

async function probe(root: string): Promise<void> {
  const storage = new LocalStorage(root);
  const result: Record<string, { code: string; message: string; cause?: string }> = {};
  const attempt = async (label: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      const value = await fn();
      // Drain listings so that their errors surface.
      if (typeof value === 'object' && value !== null && Symbol.asyncIterator in value) {
        for await (const _ of value as AsyncIterable<unknown>) void _;
      }
      result[label] = { code: 'ok', message: '' };
    } catch (error) {
      // The system error at the end of the cause chain.
      let cause: { code?: string; cause?: unknown } | undefined;
      for (let c: unknown = error; c instanceof Error; c = c.cause) {
        if (!(c instanceof BackvaultError)) cause = c as { code?: string };
      }
      result[label] = {
        code: error instanceof BackvaultError ? error.code : String(error),
        message: error instanceof Error ? error.message : '',
        ...(cause?.code === undefined ? {} : { cause: cause.code }),
      };
    }
  };
  await attempt('put', () =>
    storage.put('ro/new-object', new TextEncoder().encode('SECRET-PAYLOAD')),
  );
  await attempt('get', () => storage.get('secret'));
  await attempt('getRange', () => storage.getRange('secret', 0, 4));
  await attempt('stat', () => storage.stat('locked/inner'));
  await attempt('list', async () => storage.list('locked/'));
  await attempt('delete', () => storage.delete('ro/existing'));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const [mode, root, name, size] = process.argv.slice(2);
if (mode === 'writer' && root !== undefined && name !== undefined && size !== undefined) {
  void writer(root, name, Number(size));
} else if (mode === 'probe' && root !== undefined) {
  void probe(root);
} else {
  process.stderr.write('usage: local-child-process.js writer ROOT NAME SIZE | probe ROOT\n');
  process.exit(2);
}
