/**
 * The journal keeps only the last chain hash (`l`) in its sealed form, so opening it costs
 * no hashing. These tests pin that the events read back are the same chain as before, that
 * journals sealed before `l` existed still open, and that a last hash that does not match
 * the chain is refused instead of served.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hasCode } from '#sdk/errors.js';
import {
  generateSoftwareHsmKeys,
  openSoftwareHsm,
  type SoftwareHsm,
} from '#vault/hsm/software-hsm.js';
import {
  EMPTY_JOURNAL,
  MAX_EVENTS,
  appendEvent,
  journalEvents,
  openJournal,
  sealJournal,
  type Journal,
} from '#vault/vault/journal.js';
import { EVENT_CHAIN_GENESIS, EVENT_CHAIN_LABEL, eventCanonical } from '#sdk/wire/index.js';

const MAGIC = 'backvault/vault/journal/v1\n';
const KINDS = ['enabled', 'password-changed', 'guess', 'success', 'locked'];

/** The chain as the SDK computes it, independently of journal.ts. */
function expectedHash(prev: string, e: Parameters<typeof eventCanonical>[0]): string {
  return createHash('sha256')
    .update(EVENT_CHAIN_LABEL)
    .update(Buffer.from(prev, 'base64url'))
    .update(eventCanonical(e))
    .digest('base64url');
}

let hsm: SoftwareHsm;
before(async () => {
  hsm = await openSoftwareHsm({ keys: await generateSoftwareHsmKeys() });
});
after(async () => {
  await hsm.close();
});

function build(n: number): Journal {
  let j = EMPTY_JOURNAL;
  for (let i = 0; i < n; i++) {
    j = appendEvent(j, i % 3 === 0 ? 'success' : 'guess', 1_000 + i, i % 3 === 0 ? undefined : 7);
  }
  return j;
}

describe('journal chain', () => {
  it('events reopened from the sealed form chain exactly as computed from the genesis', async () => {
    const total = MAX_EVENTS + 9;
    const j = await openJournal(hsm, 'acct', await sealJournal(hsm, 'acct', build(total)));
    const events = journalEvents(j);
    assert.equal(events.length, MAX_EVENTS);
    // Recompute the whole chain from the genesis over every event ever appended.
    let prev = EVENT_CHAIN_GENESIS;
    const all = [];
    for (let i = 0; i < total; i++) {
      const e = {
        seq: i + 1,
        at: 1_000 + i,
        kind: i % 3 === 0 ? 'success' : 'guess',
        ...(i % 3 === 0 ? {} : { attemptsLeft: 7 }),
      };
      prev = expectedHash(prev, e);
      all.push({ ...e, hash: prev });
    }
    assert.deepEqual(events, all.slice(-MAX_EVENTS));
    assert.equal(j.firstPrevHash, all[total - MAX_EVENTS - 1]!.hash);
    assert.equal(j.lastHash, prev);
  });

  it('a journal sealed before the last hash was stored opens with its chain recomputed', async () => {
    const j = build(5);
    const legacy = {
      p: j.firstPrevHash,
      e: j.entries.map((e) => [e.seq, e.at, KINDS.indexOf(e.kind), e.attemptsLeft ?? null]),
      h: null,
      a: [],
    };
    const sealed = await hsm.sealRecord('acct', Buffer.from(MAGIC + JSON.stringify(legacy)));
    const opened = await openJournal(hsm, 'acct', sealed);
    assert.equal(opened.lastHash, j.lastHash);
    assert.deepEqual(journalEvents(opened), journalEvents(j));
    // Appending to it continues the same chain.
    const next = appendEvent(opened, 'guess', 9_999, 3);
    assert.equal(
      next.lastHash,
      expectedHash(j.lastHash, { seq: 6, at: 9_999, kind: 'guess', attemptsLeft: 3 }),
    );
  });

  it('a last hash that does not end the chain is refused when the log is read', async () => {
    const j = build(4);
    const stored = {
      p: j.firstPrevHash,
      e: j.entries.map((e) => [e.seq, e.at, KINDS.indexOf(e.kind), e.attemptsLeft ?? null]),
      h: null,
      a: [],
      l: expectedHash(j.lastHash, { seq: 99, at: 0, kind: 'guess' }),
    };
    const sealed = await hsm.sealRecord('acct', Buffer.from(MAGIC + JSON.stringify(stored)));
    const opened = await openJournal(hsm, 'acct', sealed);
    assert.throws(
      () => journalEvents(opened),
      (e: unknown) => hasCode(e, 'CORRUPT'),
    );
  });
});
