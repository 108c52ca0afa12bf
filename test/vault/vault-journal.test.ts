/**
 * Issue 15 on the vault service itself (real SQLite store, real software HSM, real OPAQUE
 * client, an injected clock): wrong-guess pacing, idempotent login start, the sealed and
 * chained security event log, and the snapshot head.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as opaque from '@serenity-kit/opaque';
import { hasCode } from '#sdk/errors.js';
import {
  generateSoftwareHsmKeys,
  openSoftwareHsm,
  type SoftwareHsm,
  type SoftwareHsmKeys,
} from '#vault/hsm/software-hsm.js';
import { MAX_EVENTS } from '#vault/vault/journal.js';
import { openSqliteStore, type SqliteVaultStore } from '#vault/vault/sqlite-store.js';
import type { VaultStore } from '#vault/vault/store.js';
import { VaultService, type Pacing } from '#vault/vault/vault-service.js';
import {
  DEFAULT_PACING,
  EVENT_CHAIN_LABEL,
  HEAD_RELEASE_INFO,
  eventCanonical,
  type RecordEventsResponse,
} from '#sdk/wire/index.js';
import { FAST_STRETCHING, keyProofOf } from './test-client.js';

const TTL_MS = 60_000;
const MIN = 60_000;

/** A node: a service over its own store handle and HSM (same keys), with its own clock. */
interface Node {
  service: VaultService;
  store: VaultStore;
  hsm: SoftwareHsm;
  clock: { now: number };
  close(): Promise<void>;
}

let dir: string;
let keys: SoftwareHsmKeys;
const nodes: Node[] = [];

async function node(opts: { pacing?: Pacing | null; limit?: number; at?: number } = {}) {
  const hsm = await openSoftwareHsm({ keys, loginStateTtlMs: TTL_MS });
  const store: SqliteVaultStore = await openSqliteStore(join(dir, 'vault.sqlite'));
  const clock = { now: opts.at ?? Date.UTC(2026, 11, 1, 14, 0) };
  const service = new VaultService({
    store,
    hsm,
    maxAttempts: opts.limit ?? 10,
    loginStateTtlMs: TTL_MS,
    now: () => clock.now,
    ...(opts.pacing !== undefined ? { pacing: opts.pacing } : {}),
  });
  const n: Node = {
    service,
    store,
    hsm,
    clock,
    async close() {
      service.close();
      await store.close();
      await hsm.close();
    },
  };
  nodes.push(n);
  return n;
}

async function enable(
  s: VaultService,
  account: string,
  password: string,
  backupKey: Uint8Array,
  currentBackupKey?: Uint8Array,
): Promise<void> {
  const c = opaque.client.startRegistration({ password });
  const r = await s.registrationStart(account, { registrationRequest: c.registrationRequest });
  const f = opaque.client.finishRegistration({
    password,
    clientRegistrationState: c.clientRegistrationState,
    registrationResponse: r.registrationResponse,
    keyStretching: FAST_STRETCHING,
  });
  await s.registrationFinish(account, {
    registrationTicket: r.registrationTicket,
    registrationRecord: f.registrationRecord,
    keyEnvelope: randomBytes(60).toString('base64url'),
    keyProof: keyProofOf(backupKey),
    ...(currentBackupKey ? { currentKeyProof: keyProofOf(currentBackupKey) } : {}),
  });
}

/** A full login; returns the session key on success, or the error code. */
async function login(
  s: VaultService,
  account: string,
  password: string,
): Promise<{ ok: true; sessionKey: Buffer; releasedHead?: string } | { ok: false; code: string }> {
  const c = opaque.client.startLogin({ password });
  let start;
  try {
    start = await s.loginStart(account, { startLoginRequest: c.startLoginRequest });
  } catch (e) {
    return { ok: false, code: (e as { code: string }).code };
  }
  const f = opaque.client.finishLogin({
    password,
    clientLoginState: c.clientLoginState,
    loginResponse: start.loginResponse,
    keyStretching: FAST_STRETCHING,
  });
  if (!f) return { ok: false, code: 'WRONG_PASSWORD' };
  const done = await s.loginFinish(account, {
    loginState: start.loginState,
    finishLoginRequest: f.finishLoginRequest,
  });
  return {
    ok: true,
    sessionKey: Buffer.from(f.sessionKey, 'base64url'),
    ...(done.releasedHead ? { releasedHead: done.releasedHead } : {}),
  };
}

/** Recomputes the chain the way a device does; returns the hashes. */
function verifyChain(r: RecordEventsResponse): void {
  let prev = r.firstPrevHash;
  for (const e of r.events) {
    const h = createHash('sha256')
      .update(EVENT_CHAIN_LABEL)
      .update(Buffer.from(prev, 'base64url'))
      .update(eventCanonical(e))
      .digest('base64url');
    assert.equal(e.hash, h, `chain breaks at seq ${e.seq}`);
    prev = h;
  }
}

const rejectsWith = async (p: Promise<unknown>, code: string): Promise<unknown> => {
  let caught: unknown;
  await assert.rejects(p, (e) => {
    caught = e;
    return hasCode(e, code as never);
  });
  return caught;
};

before(async () => {
  await opaque.ready;
  dir = await mkdtemp(join(tmpdir(), 'bv-journal-'));
  keys = await generateSoftwareHsmKeys();
});
after(async () => {
  for (const n of nodes) await n.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe('wrong-guess pacing (state in the record)', () => {
  it('a token holder needs at least the default schedule to spend the limit; restart and another node do not shorten it', async () => {
    const a = await node();
    const account = 'pace-thief';
    await enable(a.service, account, 'the right password', randomBytes(32));
    const t0 = a.clock.now;
    // The thief tries a wrong password as soon as the vault lets it, on any node.
    const spent: number[] = [];
    let b: Node | undefined;
    for (let guess = 1; guess <= 10; guess++) {
      for (;;) {
        const n = guess % 2 === 0 && b ? b : a;
        const c = opaque.client.startLogin({ password: `wrong ${guess}` });
        try {
          await n.service.loginStart(account, { startLoginRequest: c.startLoginRequest });
          spent.push(n.clock.now - t0);
          break;
        } catch (e) {
          assert.ok(hasCode(e, 'RATE_LIMITED'), String(e));
          const wait = (e as unknown as { retryAfterSeconds: number }).retryAfterSeconds;
          assert.ok(wait >= 1);
          // Try one second early first: still refused.
          a.clock.now += wait * 1000 - 1000;
          if (b) b.clock.now = a.clock.now;
          const early = opaque.client.startLogin({ password: 'early' });
          await rejectsWith(
            n.service.loginStart(account, { startLoginRequest: early.startLoginRequest }),
            'RATE_LIMITED',
          );
          a.clock.now += 1000;
          if (b) b.clock.now = a.clock.now;
        }
      }
      if (guess === 4) {
        // A restart of the node (the store reopened) and a second node (own store handle,
        // own process state): neither forgets the pacing.
        await a.close();
        nodes.splice(nodes.indexOf(a), 1);
        const clockNow = a.clock.now;
        Object.assign(a, await node({ at: clockNow }));
        b = await node({ at: clockNow });
        const c = opaque.client.startLogin({ password: 'right after restart' });
        await rejectsWith(
          b.service.loginStart(account, { startLoginRequest: c.startLoginRequest }),
          'RATE_LIMITED',
        );
      }
    }
    // Guesses 1-3 free; then 1, 5, 15, 60, 60, 60, 60 minutes after the previous one.
    const gaps = [0, 0, 0, 1, 5, 15, 60, 60, 60, 60].map((m) => m * MIN);
    let expected = 0;
    spent.forEach((at, i) => {
      expected += gaps[i]!;
      assert.ok(at >= expected, `guess ${i + 1} at ${at / MIN} min, schedule ${expected / MIN}`);
    });
    assert.equal(spent.at(-1), 261 * MIN);
    // The limit is spent: the next start destroys the record.
    a.clock.now += 61 * MIN;
    const c = opaque.client.startLogin({ password: 'x' });
    await rejectsWith(
      a.service.loginStart(account, { startLoginRequest: c.startLoginRequest }),
      'LOCKED',
    );
  });

  it('status says when the next try is possible; a success resets the pacing', async () => {
    const a = await node();
    const account = 'pace-owner';
    await enable(a.service, account, 'owner password', randomBytes(32));
    for (let i = 0; i < 3; i++) assert.equal((await login(a.service, account, 'typo')).ok, false);
    const st = await a.service.status(account);
    assert.equal(st.attemptsLeft, 7);
    assert.equal(st.nextTryAt, new Date(a.clock.now + MIN).toISOString());
    assert.deepEqual(await login(a.service, account, 'owner password'), {
      ok: false,
      code: 'RATE_LIMITED',
    });
    a.clock.now += MIN;
    assert.equal((await login(a.service, account, 'owner password')).ok, true);
    // Reset: three free guesses again.
    for (let i = 0; i < 3; i++) assert.equal((await login(a.service, account, 'typo')).ok, false);
    assert.equal((await a.service.status(account)).nextTryAt !== undefined, true);
  });

  it('is configurable and can be turned off', async () => {
    const custom = await node({ pacing: { freeGuesses: 1, delaysSeconds: [2] } });
    await enable(custom.service, 'pace-custom', 'pw pw pw 1', randomBytes(32));
    await login(custom.service, 'pace-custom', 'no');
    assert.deepEqual(await login(custom.service, 'pace-custom', 'no'), {
      ok: false,
      code: 'RATE_LIMITED',
    });
    custom.clock.now += 2000;
    assert.deepEqual(await login(custom.service, 'pace-custom', 'no'), {
      ok: false,
      code: 'WRONG_PASSWORD',
    });
    const off = await node({ pacing: null });
    await enable(off.service, 'pace-off', 'pw pw pw 2', randomBytes(32));
    for (let i = 0; i < 8; i++) {
      assert.deepEqual(await login(off.service, 'pace-off', 'no'), {
        ok: false,
        code: 'WRONG_PASSWORD',
      });
    }
    assert.deepEqual(DEFAULT_PACING, { freeGuesses: 3, delaysSeconds: [60, 300, 900, 3600] });
  });
});

describe('idempotent login start', () => {
  it('the same request id and KE1 get the same answer without a second count', async () => {
    const a = await node();
    const b = await node();
    const account = 'idem-1';
    await enable(a.service, account, 'idem password', randomBytes(32));
    const c = opaque.client.startLogin({ password: 'idem password' });
    const req = { startLoginRequest: c.startLoginRequest, requestId: 'req-aaaaaaaaaaaaaaaa' };
    const first = await a.service.loginStart(account, req);
    assert.equal(first.attemptsLeft, 9);
    // Resent to the same node and to another node: same answer, no count.
    assert.deepEqual(await a.service.loginStart(account, req), first);
    assert.deepEqual(await b.service.loginStart(account, req), first);
    assert.equal((await a.service.status(account)).attemptsLeft, 9);
    // The replayed answer finishes the login.
    const f = opaque.client.finishLogin({
      password: 'idem password',
      clientLoginState: c.clientLoginState,
      loginResponse: first.loginResponse,
      keyStretching: FAST_STRETCHING,
    });
    assert.ok(f);
    await a.service.loginFinish(account, {
      loginState: first.loginState,
      finishLoginRequest: f.finishLoginRequest,
    });
    // After the success the stored answer is gone (new login epoch): the id counts anew.
    const again = await a.service.loginStart(account, req);
    assert.notEqual(again.loginResponse, first.loginResponse);
    assert.equal((await a.service.status(account)).attemptsLeft, 9);
  });

  it('an attacker reusing request ids gains nothing: another KE1 is refused, one answer per counted guess', async () => {
    const a = await node({ pacing: null });
    const account = 'idem-thief';
    await enable(a.service, account, 'the real one', randomBytes(32));
    const answers = new Set<string>();
    const id = 'stolen-id-0123456789';
    const first = opaque.client.startLogin({ password: 'guess 0' });
    answers.add(
      (
        await a.service.loginStart(account, {
          startLoginRequest: first.startLoginRequest,
          requestId: id,
        })
      ).loginResponse,
    );
    for (let i = 1; i <= 5; i++) {
      const c = opaque.client.startLogin({ password: `guess ${i}` });
      await rejectsWith(
        a.service.loginStart(account, { startLoginRequest: c.startLoginRequest, requestId: id }),
        'CONFLICT',
      );
      // The same KE1 again: the same bytes, nothing new.
      answers.add(
        (
          await a.service.loginStart(account, {
            startLoginRequest: first.startLoginRequest,
            requestId: id,
          })
        ).loginResponse,
      );
    }
    const spent = 10 - (await a.service.status(account)).attemptsLeft;
    assert.equal(spent, 1);
    assert.equal(answers.size, spent);
  });

  it('a stored answer expires with the login state TTL: a later resend is a new, counted guess', async () => {
    const a = await node();
    const account = 'idem-ttl';
    await enable(a.service, account, 'ttl password', randomBytes(32));
    const c = opaque.client.startLogin({ password: 'ttl password' });
    const req = { startLoginRequest: c.startLoginRequest, requestId: 'ttl-req-000000000000' };
    const first = await a.service.loginStart(account, req);
    a.clock.now += TTL_MS + 1;
    const later = await a.service.loginStart(account, req);
    assert.notEqual(later.loginResponse, first.loginResponse);
    assert.equal(later.attemptsLeft, 8);
  });

  it('model trace "stale-replay": a resend read stale from before the lockout is not answered', async () => {
    // model/vault.pml with -DBUG_STALE_REPLAY: a node replays a stored answer from a
    // serializable read two versions old, after another node locked the record. The code
    // confirms every replay on a linearizable read; this store serves the stale version.
    const base = await node({ pacing: null, limit: 2 });
    const held: { stale?: Awaited<ReturnType<VaultStore['get']>> } = {};
    const staleStore: VaultStore = {
      get: (a, o) =>
        o?.linearizable === false && held.stale
          ? Promise.resolve(held.stale)
          : base.store.get(a, o),
      compareAndSwap: (a, v, n) => base.store.compareAndSwap(a, v, n),
      compareAndDelete: (a, v) => base.store.compareAndDelete(a, v),
      close: () => Promise.resolve(),
    };
    const other = new VaultService({
      store: staleStore,
      hsm: base.hsm,
      maxAttempts: 2,
      loginStateTtlMs: TTL_MS,
      now: () => base.clock.now,
      pacing: null,
    });
    const account = 'model-stale-replay';
    await enable(base.service, account, 'stale pw', randomBytes(32));
    const a = opaque.client.startLogin({ password: 'a' });
    const reqA = { startLoginRequest: a.startLoginRequest, requestId: 'model-trace-aaaaaaaa' };
    await base.service.loginStart(account, reqA); // counted, answer lost
    held.stale = await base.store.get(account); // the version holding A's stored answer
    for (const pw of ['b', 'c']) {
      await base.service
        .loginStart(account, {
          startLoginRequest: opaque.client.startLogin({ password: pw }).startLoginRequest,
        })
        .catch(() => undefined);
    }
    assert.equal((await base.store.get(account))!.state, 'locked');
    await rejectsWith(other.loginStart(account, reqA), 'LOCKED');
    other.close();
  });

  it('an invalid KE1 costs nothing', async () => {
    const a = await node();
    await enable(a.service, 'idem-bad', 'bad ke1 pw', randomBytes(32));
    await rejectsWith(
      a.service.loginStart('idem-bad', {
        startLoginRequest: Buffer.alloc(96, 0xff).toString('base64url'),
      }),
      'BAD_REQUEST',
    );
    assert.equal((await a.service.status('idem-bad')).attemptsLeft, 10);
  });
});

describe('security event log', () => {
  it('records enable, guesses, success, password change and lockout, chained, across password change', async () => {
    const a = await node({ pacing: null, limit: 3 });
    const account = 'events-1';
    const key = randomBytes(32);
    await enable(a.service, account, 'first password', key);
    a.clock.now += 1000;
    await login(a.service, account, 'wrong one');
    a.clock.now += 1000;
    assert.equal((await login(a.service, account, 'first password')).ok, true);
    await enable(a.service, account, 'second password', key, key);
    await login(a.service, account, 'first password'); // the old one no longer works
    await login(a.service, account, 'nope');
    await login(a.service, account, 'nope again');
    await rejectsWith(
      a.service.loginStart(account, {
        startLoginRequest: opaque.client.startLogin({ password: 'x' }).startLoginRequest,
      }),
      'LOCKED',
    );
    const r = await a.service.events(account, keyProofOf(key));
    assert.equal(r.state, 'locked');
    assert.deepEqual(
      r.events.map((e) => [e.seq, e.kind, e.attemptsLeft]),
      [
        [1, 'enabled', undefined],
        [2, 'guess', 2],
        [3, 'guess', 1],
        [4, 'success', undefined],
        [5, 'password-changed', undefined],
        [6, 'guess', 2],
        [7, 'guess', 1],
        [8, 'guess', 0],
        [9, 'locked', undefined],
      ],
    );
    verifyChain(r);
    await rejectsWith(a.service.events(account, keyProofOf(randomBytes(32))), 'FORBIDDEN');
  });

  it('is bounded; the chain continues from the hash before the first kept entry', async () => {
    const a = await node({ pacing: null, limit: 1000 });
    const account = 'events-bounded';
    const key = randomBytes(32);
    await enable(a.service, account, 'bounded pw', key);
    const seen = await a.service.events(account, keyProofOf(key));
    for (let i = 0; i < MAX_EVENTS + 5; i++) {
      await a.service.loginStart(account, {
        startLoginRequest: opaque.client.startLogin({ password: 'x' }).startLoginRequest,
      });
    }
    const r = await a.service.events(account, keyProofOf(key));
    assert.equal(r.events.length, MAX_EVENTS);
    assert.equal(r.events[0]!.seq, 7);
    assert.equal(r.events.at(-1)!.seq, MAX_EVENTS + 6);
    verifyChain(r);
    assert.notEqual(r.firstPrevHash, seen.firstPrevHash);
  });

  it('a store that edits or replays the journal is caught', async () => {
    const a = await node({ pacing: null });
    const account = 'events-tamper';
    const key = randomBytes(32);
    await enable(a.service, account, 'tamper pw', key);
    const old = (await a.store.get(account))!;
    const seenBefore = await a.service.events(account, keyProofOf(key));
    await login(a.service, account, 'wrong');
    const seen = await a.service.events(account, keyProofOf(key));
    // A flipped byte: the journal no longer opens (CORRUPT), nothing is answered.
    const cur = (await a.store.get(account))!;
    const bad = new Uint8Array(cur.sealedJournal!);
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 1;
    assert.ok(await a.store.compareAndSwap(account, cur.version, { ...cur, sealedJournal: bad }));
    await rejectsWith(a.service.events(account, keyProofOf(key)), 'CORRUPT');
    // Another account's journal does not open here either.
    await enable(a.service, 'events-other', 'other pw', key);
    const other = (await a.store.get('events-other'))!;
    const now = (await a.store.get(account))!;
    assert.ok(
      await a.store.compareAndSwap(account, now.version, {
        ...now,
        sealedJournal: other.sealedJournal!,
      }),
    );
    await rejectsWith(a.service.events(account, keyProofOf(key)), 'CORRUPT');
    // The old journal replayed whole: it opens, but a device that saw seq 2 sees the log
    // end at seq 1 — the rollback is visible.
    const now2 = (await a.store.get(account))!;
    assert.ok(
      await a.store.compareAndSwap(account, now2.version, {
        ...now2,
        sealedJournal: old.sealedJournal!,
      }),
    );
    const replayed = await a.service.events(account, keyProofOf(key));
    assert.deepEqual(replayed.events, seenBefore.events);
    assert.ok(replayed.events.at(-1)!.seq < seen.events.at(-1)!.seq);
  });
});

describe('snapshot head in the vault', () => {
  const head = (seq: number, c = 'a') => ({ seq, snapshotId: c.repeat(64) });
  const openHead = (sessionKey: Buffer, released: string) => {
    const k = Buffer.from(hkdfSync('sha256', sessionKey, new Uint8Array(0), HEAD_RELEASE_INFO, 32));
    const b = Buffer.from(released, 'base64url');
    const d = createDecipheriv('aes-256-gcm', k, b.subarray(0, 12));
    d.setAAD(Buffer.from(HEAD_RELEASE_INFO));
    d.setAuthTag(b.subarray(b.length - 16));
    return JSON.parse(
      Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]).toString(),
    ) as unknown;
  };

  it('is raised only with the key proof, never lowered, released under the session key, kept across password change', async () => {
    const a = await node();
    const account = 'head-1';
    const key = randomBytes(32);
    await enable(a.service, account, 'head password', key);
    const none = await login(a.service, account, 'head password');
    assert.ok(none.ok);
    assert.equal(none.releasedHead, undefined);
    await rejectsWith(
      a.service.updateHead(account, keyProofOf(randomBytes(32)), head(5)),
      'FORBIDDEN',
    );
    assert.deepEqual(await a.service.updateHead(account, keyProofOf(key), head(5)), head(5));
    assert.deepEqual(await a.service.updateHead(account, keyProofOf(key), head(5)), head(5));
    const err = await rejectsWith(
      a.service.updateHead(account, keyProofOf(key), head(4)),
      'ROLLBACK',
    );
    assert.match((err as Error).message, /snapshot 5/);
    await rejectsWith(a.service.updateHead(account, keyProofOf(key), head(5, 'b')), 'ROLLBACK');
    assert.deepEqual(
      await a.service.updateHead(account, keyProofOf(key), head(6, 'c')),
      head(6, 'c'),
    );
    await enable(a.service, account, 'new head password', key, key);
    const r = await login(a.service, account, 'new head password');
    assert.ok(r.ok && r.releasedHead);
    assert.deepEqual(openHead(r.sessionKey, r.releasedHead), head(6, 'c'));
    assert.deepEqual((await a.service.events(account, keyProofOf(key))).head, head(6, 'c'));
  });
});
