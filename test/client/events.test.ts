/**
 * The device-side reading of the vault's event log (src/client/events.ts), on hand-made
 * logs whose chain is computed with node:crypto from SPEC.md §17 alone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  describeGuesses,
  formatNextTry,
  guessOutcomes,
  summarizeGuesses,
  verifyEventLog,
} from '#sdk/client/events.js';
import { hasCode } from '#sdk/errors.js';
import { EVENT_CHAIN_GENESIS, type SecurityEvent } from '#sdk/wire/index.js';

const T = Date.UTC(2026, 11, 1, 14, 0);

/** A log from kinds, one minute apart, chained per SPEC.md §17. */
function log(kinds: SecurityEvent['kind'][]): SecurityEvent[] {
  let prev = Buffer.alloc(32);
  return kinds.map((kind, i) => {
    const e = { seq: i + 1, at: T + i * 60_000, kind };
    const h = createHash('sha256')
      .update('backvault/vault/event-chain/v1')
      .update(prev)
      .update(`${e.seq}|${e.at}|${e.kind}|`)
      .digest();
    prev = h;
    return { ...e, hash: h.toString('base64url') };
  });
}

describe('vault event log on the device', () => {
  test('the chain from the SPEC verifies; an edited or reordered entry does not', async () => {
    const events = log(['enabled', 'guess', 'guess', 'success']);
    const latest = await verifyEventLog({ events, firstPrevHash: EVENT_CHAIN_GENESIS });
    assert.deepEqual(latest, { seq: 4, hash: events[3]!.hash });
    const edited = events.map((e, i) => (i === 1 ? { ...e, at: e.at + 1 } : e));
    await assert.rejects(
      verifyEventLog({ events: edited, firstPrevHash: EVENT_CHAIN_GENESIS }),
      (e: unknown) => hasCode(e, 'CORRUPT'),
    );
    const swapped = [events[0]!, events[2]!, events[1]!, events[3]!];
    await assert.rejects(
      verifyEventLog({ events: swapped, firstPrevHash: EVENT_CHAIN_GENESIS }),
      (e: unknown) => hasCode(e, 'CORRUPT'),
    );
  });

  test('what the device saw must still be there: cut back or rewritten is ROLLBACK', async () => {
    const events = log(['enabled', 'guess', 'success']);
    const full = { events, firstPrevHash: EVENT_CHAIN_GENESIS };
    const seen = { seq: 3, hash: events[2]!.hash };
    assert.deepEqual(await verifyEventLog(full, seen), seen);
    await assert.rejects(
      verifyEventLog({ events: events.slice(0, 2), firstPrevHash: EVENT_CHAIN_GENESIS }, seen),
      (e: unknown) => hasCode(e, 'ROLLBACK'),
    );
    const other = log(['enabled', 'guess', 'locked']);
    await assert.rejects(
      verifyEventLog({ events: other, firstPrevHash: EVENT_CHAIN_GENESIS }, seen),
      (e: unknown) => hasCode(e, 'ROLLBACK'),
    );
  });

  test('summaries say it plainly', () => {
    const events = log(['enabled', 'guess', 'guess', 'guess', 'guess', 'success']);
    const s = summarizeGuesses(events, { justRestored: true });
    assert.deepEqual(s, { wrong: 3, lastWrongAt: T + 3 * 60_000, locked: false });
    assert.equal(
      describeGuesses(s),
      '3 wrong passwords were tried since your last restore, the last on 2026-12-01 14:03 UTC',
    );
    assert.equal(summarizeGuesses(events, { justRestored: false }).wrong, 0);
    assert.equal(
      describeGuesses({ wrong: 1, lastWrongAt: T, locked: false }),
      '1 wrong password was tried since your last restore, the last on 2026-12-01 14:00 UTC',
    );
    // A restore whose finish answer was lost logs in once more: one restore, not two.
    const relogin = log(['enabled', 'guess', 'guess', 'success', 'guess', 'success']);
    assert.equal(summarizeGuesses(relogin, { justRestored: true }).wrong, 1);
    assert.equal(formatNextTry(T + 7 * 60_000, T), '14:07 UTC');
    assert.equal(formatNextTry(T + 86_400_000, T), '2026-12-02 14:00 UTC');
  });

  test('each guess gets its outcome', () => {
    const events = log(['enabled', 'guess', 'guess', 'success', 'guess', 'guess', 'locked']);
    assert.deepEqual(
      guessOutcomes(events).map((e) => e.outcome ?? e.kind),
      ['enabled', 'wrong', 'success', 'success', 'wrong', 'locked', 'locked'],
    );
    assert.equal(guessOutcomes(log(['enabled', 'guess'])).at(-1)!.outcome, 'pending');
  });
});
