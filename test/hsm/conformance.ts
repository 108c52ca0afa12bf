/**
 * The conformance suite every {@link Hsm} implementation must pass (software, PKCS#11).
 * It drives the HSM with a real OPAQUE client (`@serenity-kit/opaque`).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as opaque from '@serenity-kit/opaque';
import type { Hsm } from '#vault/hsm/hsm.js';
import { hasCode } from '#sdk/errors.js';

/** What the suite passes to the factory: a controllable clock and short lifetimes. */
export interface HsmTestOptions {
  readonly now: () => number;
  readonly loginStateTtlMs: number;
  readonly registrationTicketTtlMs: number;
}

/** Minimal Argon2 so the suite is about the HSM, not the client's key stretching. */
export const FAST_STRETCHING = {
  'argon2id-custom': { iterations: 1, memory: 8, parallelism: 1 },
} as const;

/** Asserts `p` rejects with a backvault error of `code`. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(hasCode(e, code as never), `expected ${code}, got ${String(e)}`);
    return true;
  });
}

/**
 * Registers the suite under `describe(name)`. `makeHsm` must return a fresh HSM with its
 * own keys each call, honouring the given clock and lifetimes.
 */
export function runHsmConformance(
  name: string,
  makeHsm: (o: HsmTestOptions) => Promise<Hsm>,
): void {
  describe(`Hsm conformance: ${name}`, () => {
    let clock = Date.now();
    let hsm: Hsm;
    const ttl = 30_000;
    const password = 'correct horse battery staple';

    before(async () => {
      await opaque.ready;
      hsm = await makeHsm({
        now: () => clock,
        loginStateTtlMs: ttl,
        registrationTicketTtlMs: ttl,
      });
    });
    after(async () => hsm.close());

    async function register(account: string, binding = 'new', pw = password) {
      const c = opaque.client.startRegistration({ password: pw });
      const s = await hsm.createRegistrationResponse(account, c.registrationRequest, binding);
      const f = opaque.client.finishRegistration({
        password: pw,
        clientRegistrationState: c.clientRegistrationState,
        registrationResponse: s.registrationResponse,
        keyStretching: FAST_STRETCHING,
      });
      const done = await hsm.finishRegistration(
        account,
        s.registrationTicket,
        f.registrationRecord,
        binding,
      );
      return { ...done, exportKey: f.exportKey, serverStaticPublicKey: f.serverStaticPublicKey };
    }

    async function login(account: string, sealedRecord: Uint8Array, pw: string, binding = 'b1') {
      const c = opaque.client.startLogin({ password: pw });
      const s = await hsm.startLogin(account, sealedRecord, c.startLoginRequest, binding);
      const f = opaque.client.finishLogin({
        password: pw,
        clientLoginState: c.clientLoginState,
        loginResponse: s.loginResponse,
        keyStretching: FAST_STRETCHING,
      });
      return { s, f };
    }

    it('exposes a stable OPAQUE server public key', async () => {
      const a = await hsm.serverPublicKey();
      assert.match(a, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(await hsm.serverPublicKey(), a);
    });

    it('registers and logs in; both sides agree on the session key', async () => {
      const r = await register('alice');
      assert.equal(r.serverStaticPublicKey, await hsm.serverPublicKey());
      const { s, f } = await login('alice', r.sealedRecord, password);
      assert.ok(f, 'client must accept the server');
      const { sessionKey } = await hsm.finishLogin(
        'alice',
        s.sealedLoginState,
        f.finishLoginRequest,
        'b1',
      );
      assert.equal(Buffer.from(sessionKey).toString('base64url'), f.sessionKey);
      assert.equal(sessionKey.length, 64);
      // exportKey is stable across logins: the client's envelope key depends on it
      assert.equal(f.exportKey, r.exportKey);
    });

    it('a wrong password fails on the client; a forged KE3 is FORBIDDEN', async () => {
      const r = await register('bob');
      const { s, f } = await login('bob', r.sealedRecord, 'not the password');
      assert.equal(f, undefined);
      await rejectsWith(
        hsm.finishLogin('bob', s.sealedLoginState, Buffer.alloc(64, 1).toString('base64url'), 'b1'),
        'FORBIDDEN',
      );
    });

    it('each registration uses a fresh credential id', async () => {
      const a = await register('carol');
      const b = await register('carol', `replaces:${a.credentialId}`);
      assert.notEqual(a.credentialId, b.credentialId);
    });

    it('sealed records are bound to the account and authenticated', async () => {
      const sealed = await hsm.sealRecord('dave', new TextEncoder().encode('hello'));
      assert.equal(new TextDecoder().decode(await hsm.openRecord('dave', sealed)), 'hello');
      await rejectsWith(hsm.openRecord('erin', sealed), 'CORRUPT');
      const t = Uint8Array.from(sealed);
      t[t.length - 1]! ^= 1;
      await rejectsWith(hsm.openRecord('dave', t), 'CORRUPT');
      const r = await register('dave');
      const c = opaque.client.startLogin({ password });
      await rejectsWith(
        hsm.startLogin('erin', r.sealedRecord, c.startLoginRequest, 'b'),
        'CORRUPT',
      );
      assert.ok(
        !Buffer.from(sealed).includes(Buffer.from('hello')),
        'sealed must not hold plaintext',
      );
    });

    it('rejects a malformed KE1 and registration request with BAD_REQUEST', async () => {
      const r = await register('frank');
      await rejectsWith(
        hsm.startLogin('frank', r.sealedRecord, Buffer.alloc(96).toString('base64url'), 'b'),
        'BAD_REQUEST',
      );
      await rejectsWith(
        hsm.createRegistrationResponse('frank', Buffer.alloc(32).toString('base64url'), 'new'),
        'BAD_REQUEST',
      );
    });

    it('login state: foreign account and tampering are BAD_REQUEST, another binding is CONFLICT, expiry is BAD_REQUEST', async () => {
      const r = await register('grace');
      const { s, f } = await login('grace', r.sealedRecord, password, 'epoch-1');
      assert.ok(f);
      await rejectsWith(
        hsm.finishLogin('heidi', s.sealedLoginState, f.finishLoginRequest, 'epoch-1'),
        'BAD_REQUEST',
      );
      const raw = Buffer.from(s.sealedLoginState, 'base64url');
      for (const i of [0, 5, raw.length - 20, raw.length - 1]) {
        const t = Buffer.from(raw);
        t[i]! ^= 0x40;
        await rejectsWith(
          hsm.finishLogin('grace', t.toString('base64url'), f.finishLoginRequest, 'epoch-1'),
          'BAD_REQUEST',
        );
      }
      await rejectsWith(
        hsm.finishLogin('grace', s.sealedLoginState, f.finishLoginRequest, 'epoch-2'),
        'CONFLICT',
      );
      clock += ttl + 1;
      try {
        await rejectsWith(
          hsm.finishLogin('grace', s.sealedLoginState, f.finishLoginRequest, 'epoch-1'),
          'BAD_REQUEST',
        );
      } finally {
        clock -= ttl + 1;
      }
      // still fine within the lifetime and with the right binding
      await hsm.finishLogin('grace', s.sealedLoginState, f.finishLoginRequest, 'epoch-1');
    });

    it('registration tickets: bound to account and binding, expire', async () => {
      const c = opaque.client.startRegistration({ password });
      const s = await hsm.createRegistrationResponse('ivan', c.registrationRequest, 'new');
      const f = opaque.client.finishRegistration({
        password,
        clientRegistrationState: c.clientRegistrationState,
        registrationResponse: s.registrationResponse,
        keyStretching: FAST_STRETCHING,
      });
      await rejectsWith(
        hsm.finishRegistration('judy', s.registrationTicket, f.registrationRecord, 'new'),
        'BAD_REQUEST',
      );
      await rejectsWith(
        hsm.finishRegistration('ivan', s.registrationTicket, f.registrationRecord, 'replaces:x'),
        'CONFLICT',
      );
      clock += ttl + 1;
      try {
        await rejectsWith(
          hsm.finishRegistration('ivan', s.registrationTicket, f.registrationRecord, 'new'),
          'BAD_REQUEST',
        );
      } finally {
        clock -= ttl + 1;
      }
      await hsm.finishRegistration('ivan', s.registrationTicket, f.registrationRecord, 'new');
    });

    it('error messages and public properties never carry secrets', async () => {
      const r = await register('kim');
      const { s, f } = await login('kim', r.sealedRecord, password);
      assert.ok(f);
      const dump = JSON.stringify(hsm) + String(Object.keys(hsm));
      assert.ok(!dump.includes(s.sealedLoginState));
      try {
        await hsm.finishLogin('kim', s.sealedLoginState, f.finishLoginRequest, 'wrong');
      } catch (e) {
        const m = String((e as Error).message);
        assert.ok(!m.includes(s.sealedLoginState) && !m.includes(f.finishLoginRequest));
      }
    });

    it('handles concurrent logins', async () => {
      const r = await register('lee');
      const results = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const { s, f } = await login('lee', r.sealedRecord, password, `b${i}`);
          assert.ok(f);
          const k = await hsm.finishLogin('lee', s.sealedLoginState, f.finishLoginRequest, `b${i}`);
          return Buffer.from(k.sessionKey).toString('base64url') === f.sessionKey;
        }),
      );
      assert.ok(results.every(Boolean));
    });
  });
}
