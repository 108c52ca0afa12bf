import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatBackupKey, generateBackupKey, parseBackupKey } from '#sdk/format/index.js';
import { InvalidKeyError } from '#sdk/errors.js';

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const SEPS = [' ', '-', '\n', '\r', '\t'];
const isAllowed = (ch: string): boolean => /^[0-9a-fA-F]$/.test(ch) || SEPS.includes(ch);

describe('64-digit key encoding', () => {
  it('formats as 16 groups of 4 lowercase hex digits', () => {
    const k = generateBackupKey();
    assert.equal(k.length, 32);
    assert.match(formatBackupKey(k), /^[0-9a-f]{4}( [0-9a-f]{4}){15}$/);
    assert.notDeepEqual(generateBackupKey(), k);
  });

  it('format/parse round trip', () => {
    fc.assert(
      fc.property(key32, (k) => {
        assert.deepEqual(parseBackupKey(formatBackupKey(k)), k);
      }),
    );
  });

  it('tolerates spaces, dashes, line breaks, tabs and case anywhere', () => {
    fc.assert(
      fc.property(
        key32,
        fc.array(fc.constantFrom(...SEPS), { maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(64), fc.constantFrom(...SEPS)), { maxLength: 20 }),
        fc.boolean(),
        (k, lead, inserts, upper) => {
          const digits = formatBackupKey(k).replaceAll(' ', '').split('');
          for (const [at, sep] of inserts) digits.splice(Math.min(at, digits.length), 0, sep);
          let text = lead.join('') + digits.join('');
          if (upper) text = text.toUpperCase();
          assert.deepEqual(parseBackupKey(text), k);
        },
      ),
    );
  });

  it('rejects every other character, naming it and its position but not the key', () => {
    fc.assert(
      fc.property(
        key32,
        fc.nat(100),
        fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 1 })
          .filter((c) => [...c].some((x) => !isAllowed(x))),
        (k, at, bad) => {
          const good = formatBackupKey(k);
          const pos = Math.min(at, good.length);
          const text = good.slice(0, pos) + bad + good.slice(pos);
          let err: unknown;
          try {
            parseBackupKey(text);
          } catch (e) {
            err = e;
          }
          assert.ok(err instanceof InvalidKeyError, 'InvalidKeyError');
          assert.equal(err.code, 'INVALID_KEY');
          const firstBad = [...bad].findIndex((x) => !isAllowed(x));
          assert.match(err.message, new RegExp(`at position ${pos + firstBad + 1} `));
          assert.ok(
            !err.message.includes(good.replaceAll(' ', '').slice(0, 8)),
            'message must not echo the key',
          );
        },
      ),
    );
  });

  it('names the character readably', () => {
    assert.throws(() => parseBackupKey('g'), /invalid character 'g' \(U\+0067\) at position 1 /);
    assert.throws(() => parseBackupKey('00\u00a0'), /U\+00A0 at position 3 /);
    assert.throws(() => parseBackupKey('😀'), /U\+1F600 at position 1 /);
  });

  it('says how many digits were found when the count is wrong', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }).filter((n) => n !== 64),
        (n) => {
          assert.throws(
            () => parseBackupKey('a'.repeat(n)),
            (e) => e instanceof InvalidKeyError && e.message.includes(`found ${n}`),
          );
        },
      ),
    );
  });

  it('refuses to format a key of the wrong length', () => {
    assert.throws(() => formatBackupKey(new Uint8Array(31)), InvalidKeyError);
  });
});
