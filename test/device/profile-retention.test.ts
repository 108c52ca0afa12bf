/**
 * The retention policy of a device profile: absent means keep the last 3; a stored policy
 * is read back normalised; a malformed one never stops the profile from loading (a backup
 * must not fail for it) but is CORRUPT, naming profile.json, when the policy is used.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DEFAULT_DEVICE_RETENTION,
  DEVICE_FILES,
  createDevice,
  deviceRetentionPolicy,
  loadDevice,
  updateDeviceProfile,
} from '#cli/device/profile.js';
import { hasCode } from '#sdk/errors.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'backvault-retention-'));
});
after(async () => rm(root, { recursive: true, force: true }));

const device = async (name: string): Promise<string> => {
  const dir = join(root, name);
  await createDevice(dir, { mode: 'recovery-key', repo: '/cloud' }, randomBytes(32));
  return dir;
};

test('no stored policy: keep the last 3', async () => {
  const dir = await device('default');
  const { profile } = await loadDevice(dir);
  assert.equal(profile.retention, undefined);
  assert.deepEqual(deviceRetentionPolicy(profile), { last: 3 });
  assert.deepEqual(DEFAULT_DEVICE_RETENTION, { last: 3 });
  assert.throws(() => {
    (DEFAULT_DEVICE_RETENTION as { last?: number }).last = 1;
  }, TypeError);
});

test('a stored policy is kept in profile.json and read back', async () => {
  const dir = await device('stored');
  await updateDeviceProfile(dir, { retention: { daily: 7, weekly: 4, within: '2d' } });
  const text = JSON.parse(await readFile(join(dir, DEVICE_FILES.profile), 'utf8')) as {
    retention: unknown;
  };
  assert.deepEqual(text.retention, { daily: 7, weekly: 4, within: '2d' });
  assert.deepEqual(deviceRetentionPolicy((await loadDevice(dir)).profile), {
    daily: 7,
    weekly: 4,
    within: '2d',
  });
  // Other updates keep it.
  await updateDeviceProfile(dir, { lastBackup: { snapshotId: 'ab', seq: 1, time: 't' } });
  assert.deepEqual((await loadDevice(dir)).profile.retention, {
    daily: 7,
    weekly: 4,
    within: '2d',
  });
});

test('a malformed stored policy still loads, and is CORRUPT when used', async () => {
  for (const bad of [{ last: 0 }, { last: 'x' }, { within: '3w' }, 'keep', { tags: 1 }]) {
    const dir = await device(`bad-${Math.random().toString(16).slice(2)}`);
    const path = join(dir, DEVICE_FILES.profile);
    const p = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...p, retention: bad }), { mode: 0o600 });
    const { profile } = await loadDevice(dir);
    assert.throws(
      () => deviceRetentionPolicy(profile),
      (e) =>
        hasCode(e, 'CORRUPT') &&
        e.message.includes('retention') &&
        e.message.includes(DEVICE_FILES.profile),
      JSON.stringify(bad),
    );
  }
});
