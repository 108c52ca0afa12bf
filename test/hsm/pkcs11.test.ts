import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import * as opaque from '@serenity-kit/opaque';
import { FAST_STRETCHING, runHsmConformance } from './conformance.js';
import { createSoftHsmToken, type SoftHsmToken } from './softhsm.js';
import {
  TokenSession,
  initializePkcs11Token,
  openPkcs11Hsm,
  type Pkcs11TokenOptions,
} from '#vault/hsm/pkcs11-hsm.js';
import { hasCode } from '#sdk/errors.js';

// SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: every token of this file is created first.
const token: SoftHsmToken = await createSoftHsmToken({
  label: 'bv-test',
  pin: '246810',
  soPin: '13579111',
});
after(async () => token.cleanup()); // registered first: removed even if a later step fails
const empty = await createSoftHsmToken({
  label: 'bv-empty',
  pin: '246810',
  soPin: '13579111',
  shareWith: token,
});
process.env.SOFTHSM2_CONF = token.conf;

const tok: Pkcs11TokenOptions = { module: token.module, tokenLabel: token.label, pin: token.pin };

runHsmConformance('pkcs11 (SoftHSM2)', async (o) => {
  await initializePkcs11Token({ ...tok, replace: true });
  return openPkcs11Hsm({ ...tok, ...o });
});

async function rejectsCode(p: Promise<unknown>, code: string, check?: (m: string) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(hasCode(e, code as never), `expected ${code}, got ${String(e)}`);
    check?.(`${(e as Error).message} ${(e as { hint?: string }).hint ?? ''}`);
    return true;
  });
}

describe('PKCS#11 HSM on SoftHSM2', () => {
  let serverPublicKey: string;
  before(async () => {
    await opaque.ready;
    ({ serverPublicKey } = await initializePkcs11Token({ ...tok, replace: true }));
  });

  it('sealing and wrap keys are sensitive, non-extractable, generated in the token', async () => {
    const t = TokenSession.open(tok);
    try {
      const l = t.labels;
      for (const label of [...Object.values(l.keys), l.wrapKey]) {
        const h = t.findOne(label, pkcs11js.CKO_SECRET_KEY);
        assert.ok(h, `${label} exists`);
        const [sensitive, extractable, neverExtractable, local, len] = t.getAttributes(h, [
          pkcs11js.CKA_SENSITIVE,
          pkcs11js.CKA_EXTRACTABLE,
          pkcs11js.CKA_NEVER_EXTRACTABLE,
          pkcs11js.CKA_LOCAL,
          pkcs11js.CKA_VALUE_LEN,
        ]);
        assert.equal(sensitive?.[0], 1, 'CKA_SENSITIVE');
        assert.equal(extractable?.[0], 0, 'CKA_EXTRACTABLE');
        assert.equal(neverExtractable?.[0], 1, 'CKA_NEVER_EXTRACTABLE');
        assert.equal(local?.[0], 1, 'CKA_LOCAL: generated in the token');
        assert.equal(len?.length === 8 ? Number(len.readBigUInt64LE()) : len?.[0], 32);
        assert.throws(() => t.getAttributes(h, [pkcs11js.CKA_VALUE]), /CKR_ATTRIBUTE_SENSITIVE/);
      }
    } finally {
      t.close();
    }
  });

  it('the token refuses to wrap (export) the record key, even under a key of our own', async () => {
    const hsm = await openPkcs11Hsm(tok); // keeps the module initialised for the raw calls
    const lib = new pkcs11js.PKCS11();
    lib.load(token.module);
    try {
      assert.throws(() => lib.C_Initialize(), /CKR_CRYPTOKI_ALREADY_INITIALIZED/);
      const slot = lib
        .C_GetSlotList(true)
        .find((s) => lib.C_GetTokenInfo(s).label.trim() === token.label);
      assert.ok(slot);
      const s = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        lib.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_LABEL, value: 'backvault-record-key' }]);
        const [key] = lib.C_FindObjects(s, 2);
        lib.C_FindObjectsFinal(s);
        assert.ok(key);
        const kek = lib.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
          { type: pkcs11js.CKA_WRAP, value: true },
        ]);
        assert.throws(
          () =>
            lib.C_WrapKey(
              s,
              { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD },
              kek,
              key,
              Buffer.alloc(128),
            ),
          /CKR_KEY_UNEXTRACTABLE|CKR_KEY_NOT_WRAPPABLE/,
        );
      } finally {
        lib.C_CloseSession(s);
      }
    } finally {
      lib.close();
      await hsm.close();
    }
  });

  it('close and reopen on the same token: same server key, same records, logins work', async () => {
    const a = await openPkcs11Hsm(tok);
    const pw = 'restart password';
    const c = opaque.client.startRegistration({ password: pw });
    const s = await a.createRegistrationResponse('ann', c.registrationRequest, 'new');
    const f = opaque.client.finishRegistration({
      password: pw,
      clientRegistrationState: c.clientRegistrationState,
      registrationResponse: s.registrationResponse,
      keyStretching: FAST_STRETCHING,
    });
    const reg = await a.finishRegistration(
      'ann',
      s.registrationTicket,
      f.registrationRecord,
      'new',
    );
    const sealed = await a.sealRecord('ann', Buffer.from('kept across restarts'));
    assert.equal(await a.serverPublicKey(), serverPublicKey);
    await a.close();

    // the module is finalised with its last user, so this is a fresh C_Initialize
    const b = await openPkcs11Hsm({ ...tok, expectedServerPublicKey: serverPublicKey });
    try {
      assert.equal(await b.serverPublicKey(), serverPublicKey);
      assert.equal(
        Buffer.from(await b.openRecord('ann', sealed)).toString(),
        'kept across restarts',
      );
      const lc = opaque.client.startLogin({ password: pw });
      const ls = await b.startLogin('ann', reg.sealedRecord, lc.startLoginRequest, 'e1');
      const lf = opaque.client.finishLogin({
        password: pw,
        clientLoginState: lc.clientLoginState,
        loginResponse: ls.loginResponse,
        keyStretching: FAST_STRETCHING,
      });
      assert.ok(lf);
      assert.equal(lf.serverStaticPublicKey, serverPublicKey);
      const { sessionKey } = await b.finishLogin(
        'ann',
        ls.sealedLoginState,
        lf.finishLoginRequest,
        'e1',
      );
      assert.equal(Buffer.from(sessionKey).toString('base64url'), lf.sessionKey);
    } finally {
      await b.close();
    }
  });

  it('a wrong PIN is a clear USAGE error that does not contain the PIN', async () => {
    const pin = '98765432109';
    await rejectsCode(openPkcs11Hsm({ ...tok, pin }), 'USAGE', (m) => {
      assert.match(m, /CKR_PIN_INCORRECT/);
      assert.match(m, /bv-test/);
      assert.ok(!m.includes(pin));
      assert.ok(!m.includes(token.pin));
    });
    // the right PIN still works afterwards
    await (await openPkcs11Hsm(tok)).close();
  });

  it('tampered, truncated or foreign sealed records are CORRUPT; the session survives', async () => {
    const hsm = await openPkcs11Hsm(tok);
    try {
      const sealed = await hsm.sealRecord('bo', randomBytes(256));
      for (const i of [0, 1, 12, 13, 100, sealed.length - 1]) {
        const t = Uint8Array.from(sealed);
        t[i]! ^= 0x01;
        await rejectsCode(hsm.openRecord('bo', t), 'CORRUPT');
      }
      await rejectsCode(hsm.openRecord('bo', sealed.subarray(0, 20)), 'CORRUPT');
      await rejectsCode(hsm.openRecord('bo', new Uint8Array(0)), 'CORRUPT');
      await rejectsCode(hsm.openRecord('bob', sealed), 'CORRUPT');
      // the session survives integrity failures
      assert.equal((await hsm.openRecord('bo', sealed)).length, 256);
      const empty0 = await hsm.sealRecord('bo', new Uint8Array(0));
      assert.equal((await hsm.openRecord('bo', empty0)).length, 0);
    } finally {
      await hsm.close();
    }
  });

  it('refuses a token without keys, an unknown token, a second keygen, and a foreign fleet key', async () => {
    await rejectsCode(
      openPkcs11Hsm({ ...tok, tokenLabel: empty.label, pin: empty.pin }),
      'USAGE',
      (m) => assert.match(m, /holds no backvault keys/),
    );
    await rejectsCode(openPkcs11Hsm({ ...tok, tokenLabel: 'no-such-token' }), 'USAGE');
    await rejectsCode(initializePkcs11Token(tok), 'USAGE', (m) => assert.match(m, /already holds/));
    await rejectsCode(
      openPkcs11Hsm({ ...tok, expectedServerPublicKey: Buffer.alloc(32).toString('base64url') }),
      'USAGE',
    );
    // a second vault on the same token under another label prefix is independent
    const other = { ...tok, labelPrefix: 'other-vault' };
    const { serverPublicKey: pub2 } = await initializePkcs11Token(other);
    assert.notEqual(pub2, serverPublicKey);
    const [h1, h2] = [await openPkcs11Hsm(tok), await openPkcs11Hsm(other)];
    try {
      const sealed = await h1.sealRecord('x', Buffer.from('a'));
      await rejectsCode(h2.openRecord('x', sealed), 'CORRUPT');
    } finally {
      await h1.close();
      await h2.close();
    }
  });

  it('throughput of sealing inside the token (prints ops/s)', async (t) => {
    const hsm = await openPkcs11Hsm(tok);
    try {
      const rec = randomBytes(256);
      const sealed: Uint8Array[] = [];
      const n = 5000;
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) sealed.push(await hsm.sealRecord(`acct-${i % 50}`, rec));
      const sealMs = Number(process.hrtime.bigint() - t0) / 1e6;
      t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await hsm.openRecord(`acct-${i % 50}`, sealed[i]!);
      const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const sealRate = Math.round((n / sealMs) * 1000);
      const openRate = Math.round((n / openMs) * 1000);
      t.diagnostic(`SoftHSM2 AES-GCM 256-byte records: seal ${sealRate}/s, open ${openRate}/s`);
      // server login start = open record in the token + OPRF/3DH in process + seal state in the token
      const pw = 'bench';
      const cr = opaque.client.startRegistration({ password: pw });
      const rs = await hsm.createRegistrationResponse('bench', cr.registrationRequest, 'new');
      const rf = opaque.client.finishRegistration({
        password: pw,
        clientRegistrationState: cr.clientRegistrationState,
        registrationResponse: rs.registrationResponse,
        keyStretching: FAST_STRETCHING,
      });
      const reg = await hsm.finishRegistration(
        'bench',
        rs.registrationTicket,
        rf.registrationRecord,
        'new',
      );
      const ke1 = opaque.client.startLogin({ password: pw }).startLoginRequest;
      const m = 300;
      t0 = process.hrtime.bigint();
      for (let i = 0; i < m; i++) await hsm.startLogin('bench', reg.sealedRecord, ke1, 'b');
      const startMs = Number(process.hrtime.bigint() - t0) / 1e6 / m;
      t.diagnostic(`server startLogin through the token: ${startMs.toFixed(2)} ms each`);
      // sanity floor far below the measured rate: catches a per-call session/login regression
      assert.ok(sealRate > 1000 && openRate > 1000);
    } finally {
      await hsm.close();
    }
  });
});
