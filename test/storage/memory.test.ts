import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CorruptBackupError, MissingObjectError, UnavailableError } from '#sdk/errors.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { runStorageConformance } from './conformance.js';

runStorageConformance('memory', async () => ({
  storage: new MemoryStorage(),
  cleanup: async () => undefined,
}));

describe('MemoryStorage test hooks', () => {
  it('tamper rewrites stored bytes without aliasing the caller', async () => {
    const s = new MemoryStorage();
    await s.put('data/x', new Uint8Array([1, 2, 3]));
    let seen: Uint8Array | undefined;
    s.tamper('data/x', (b) => {
      seen = b;
      b[0] = 9;
      return b.subarray(0, 2);
    });
    assert.deepEqual(await s.get('data/x'), new Uint8Array([9, 2]));
    seen?.fill(0);
    assert.deepEqual(await s.get('data/x'), new Uint8Array([9, 2]));
    assert.throws(() => s.tamper('data/none', (b) => b), MissingObjectError);
  });

  it('raw exposes the live map to delete, swap and replay objects', async () => {
    const s = new MemoryStorage();
    await s.put('snapshots/1', new Uint8Array([1]));
    const old = s.raw().get('snapshots/1');
    await s.put('snapshots/1', new Uint8Array([2]));
    assert.ok(old);
    s.raw().set('snapshots/1', old);
    assert.deepEqual(await s.get('snapshots/1'), new Uint8Array([1]));
    s.raw().delete('snapshots/1');
    await assert.rejects(s.get('snapshots/1'), MissingObjectError);
  });

  it('injectFault fails chosen operations until removed', async () => {
    const s = new MemoryStorage();
    await s.put('a', new Uint8Array([1]));
    s.injectFault((op, name) =>
      op === 'get' && name === 'a' ? new UnavailableError('simulated outage') : undefined,
    );
    await assert.rejects(s.get('a'), UnavailableError);
    assert.deepEqual(await s.stat('a'), { size: 1 });
    s.injectFault(() => {
      throw new CorruptBackupError('thrown by the hook');
    });
    await assert.rejects(s.put('b', new Uint8Array()), CorruptBackupError);
    s.injectFault(undefined);
    assert.deepEqual(await s.get('a'), new Uint8Array([1]));
    assert.equal(await s.stat('b'), undefined, 'a failed put stored nothing');
  });

  it('has distinct locations per instance', () => {
    assert.notEqual(new MemoryStorage().location, new MemoryStorage().location);
  });
});
