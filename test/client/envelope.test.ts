/**
 * The client key envelope, the released envelope and the key proof: format, tamper
 * detection, and interoperability with an independent node:crypto implementation and with
 * the vault's own code.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  KEY_ENVELOPE_BYTES,
  KEY_ENVELOPE_INFO,
  deriveKeyProof,
  fromBase64url,
  openKeyEnvelope,
  openReleasedEnvelope,
  sealKeyEnvelope,
  toBase64url,
} from '#sdk/client/index.js';
import { BackvaultError } from '#sdk/errors.js';
import { releaseEnvelope, keyProofVerifier } from '#vault/vault/vault-service.js';
import { KEY_PROOF_INFO } from '#sdk/wire/index.js';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

test('a version-1 envelope is 65 bytes: BVKE, version 1, nonce, ciphertext, tag', async () => {
  const exportKey = bytes(64);
  const backupKey = bytes(32);
  const env = await sealKeyEnvelope(exportKey, backupKey);
  assert.equal(env.length, KEY_ENVELOPE_BYTES);
  assert.equal(env.length, 65);
  assert.deepEqual([...env.subarray(0, 5)], [0x42, 0x56, 0x4b, 0x45, 1]);
  assert.ok(!Buffer.from(env).includes(Buffer.from(backupKey)), 'key is not in clear');
  assert.deepEqual(await openKeyEnvelope(exportKey, env), backupKey);
  // Fresh nonce each time.
  const again = await sealKeyEnvelope(exportKey, backupKey);
  assert.notDeepEqual(again.subarray(5, 17), env.subarray(5, 17));
});

test('the envelope opens with node:crypto from the documented layout alone', async () => {
  const exportKey = bytes(64);
  const backupKey = bytes(32);
  const env = Buffer.from(await sealKeyEnvelope(exportKey, backupKey));
  const k = Buffer.from(hkdfSync('sha256', exportKey, Buffer.alloc(0), KEY_ENVELOPE_INFO, 32));
  const d = createDecipheriv('aes-256-gcm', k, env.subarray(5, 17));
  d.setAAD(env.subarray(0, 5));
  d.setAuthTag(env.subarray(49));
  const plain = Buffer.concat([d.update(env.subarray(17, 49)), d.final()]);
  assert.deepEqual(new Uint8Array(plain), backupKey);
});

test('any flipped bit or wrong export key is refused with a typed error', async () => {
  const exportKey = bytes(64);
  const backupKey = bytes(32);
  const env = await sealKeyEnvelope(exportKey, backupKey);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: env.length * 8 - 1 }), async (bit) => {
      const bad = env.slice();
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      await assert.rejects(openKeyEnvelope(exportKey, bad), (e: unknown) => {
        assert.ok(e instanceof BackvaultError);
        // The version byte says "unsupported"; everything else is damage.
        assert.equal(e.code, bit >> 3 === 4 ? 'UNSUPPORTED_VERSION' : 'CORRUPT');
        return true;
      });
    }),
    { numRuns: 60 },
  );
  await assert.rejects(openKeyEnvelope(bytes(64), env), { code: 'CORRUPT' });
  await assert.rejects(openKeyEnvelope(exportKey, env.subarray(0, 40)), { code: 'CORRUPT' });
  await assert.rejects(sealKeyEnvelope(exportKey, bytes(31)), { code: 'INVALID_KEY' });
});

test('seal/open round-trips for any keys (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      async (exportKey, backupKey) => {
        assert.deepEqual(
          await openKeyEnvelope(exportKey, await sealKeyEnvelope(exportKey, backupKey)),
          backupKey,
        );
      },
    ),
    { numRuns: 50 },
  );
});

test('the vault’s released envelope opens with the session key, and only with it', async () => {
  const sessionKey = bytes(64);
  const inner = bytes(65);
  const released = new Uint8Array(releaseEnvelope(sessionKey, inner));
  assert.deepEqual(await openReleasedEnvelope(sessionKey, released), inner);
  await assert.rejects(openReleasedEnvelope(bytes(64), released), { code: 'CORRUPT' });
  const bad = released.slice();
  bad[20] = (bad[20] as number) ^ 1;
  await assert.rejects(openReleasedEnvelope(sessionKey, bad), { code: 'CORRUPT' });
});

test('the key proof is HKDF(backupKey, KEY_PROOF_INFO) and matches the vault’s verifier', async () => {
  const backupKey = bytes(32);
  const proof = await deriveKeyProof(backupKey);
  const expected = hkdfSync('sha256', backupKey, Buffer.alloc(0), KEY_PROOF_INFO, 32);
  assert.deepEqual(proof, new Uint8Array(expected));
  assert.equal(keyProofVerifier(proof).length, 32);
  assert.notDeepEqual(await deriveKeyProof(bytes(32)), proof);
});

test('base64url agrees with Node’s encoder and rejects other alphabets', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const s = toBase64url(b);
      assert.equal(s, Buffer.from(b).toString('base64url'));
      assert.deepEqual(fromBase64url(s), b);
    }),
    { numRuns: 300 },
  );
  assert.throws(() => fromBase64url('ab+/'), { code: 'BAD_REQUEST' });
  assert.throws(() => fromBase64url('abcde'), { code: 'BAD_REQUEST' });
});
