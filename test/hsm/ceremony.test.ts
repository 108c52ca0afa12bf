import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import * as opaque from '@serenity-kit/opaque';
import { FAST_STRETCHING } from './conformance.js';
import { createSoftHsmToken, type SoftHsmToken } from './softhsm.js';
import {
  decodeTransportPublicKey,
  exportFleetKeysFor,
  generateFleetKeys,
  importFleetKeys,
  vaultExport,
  vaultImport,
  vaultKeygen,
  vaultTransportKey,
} from '#vault/hsm/ceremony.js';
import { TokenSession, openPkcs11Hsm, type Pkcs11TokenOptions } from '#vault/hsm/pkcs11-hsm.js';
import { decodeSoftwareHsmKeys, openSoftwareHsm } from '#vault/hsm/software-hsm.js';
import { OpaqueCore, createMemorySealer } from '#vault/hsm/opaque-core.js';
import type { Hsm } from '#vault/hsm/hsm.js';
import { hasCode } from '#sdk/errors.js';

// Every token first: SoftHSM2 scans its token directory at C_Initialize.
const a: SoftHsmToken = await createSoftHsmToken({
  label: 'node-a',
  pin: '111111',
  soPin: '99999999',
});
after(async () => a.cleanup()); // registered first: removed even if a later step fails
const b = await createSoftHsmToken({
  label: 'node-b',
  pin: '222222',
  soPin: '99999999',
  shareWith: a,
});
const c = await createSoftHsmToken({
  label: 'node-c',
  pin: '333333',
  soPin: '99999999',
  shareWith: a,
});
process.env.SOFTHSM2_CONF = a.conf;
const opts = (t: SoftHsmToken): Pkcs11TokenOptions => ({
  module: t.module,
  tokenLabel: t.label,
  pin: t.pin,
});

async function rejectsCode(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(hasCode(e, code as never), `expected ${code}, got ${String(e)}`);
    return true;
  });
}

describe('key ceremony: 2 PKCS#11 tokens + 1 software HSM share one fleet', () => {
  let dir: string;
  let fleetKey: string;
  let masterKeyFile: string;
  const hsms: Record<string, Hsm> = {};

  before(async () => {
    await opaque.ready;
    dir = await mkdtemp(join(tmpdir(), 'bv-ceremony-'));
    // step 1, on each node: a transport key pair in its own HSM
    await vaultTransportKey({ hsm: 'pkcs11', token: opts(a), out: join(dir, 'a.pub.json') });
    await vaultTransportKey({ hsm: 'pkcs11', token: opts(b), out: join(dir, 'b.pub.json') });
    await vaultTransportKey({
      hsm: 'software',
      privateKeyFile: join(dir, 's.transport.pem'),
      out: join(dir, 's.pub.json'),
      name: 'node-s',
    });
    // step 2, on the ceremony machine
    masterKeyFile = join(dir, 'fleet-master.json');
    const kg = await vaultKeygen({
      exportFor: ['a', 'b', 's'].map((n) => join(dir, `${n}.pub.json`)),
      outDir: dir,
      masterKeyFile,
    });
    fleetKey = kg.serverPublicKey;
    assert.equal(kg.bundles.length, 3);
    const [ba, bb, bs] = kg.bundles.map((x) => x.file) as [string, string, string];
    // step 3, on each node
    await vaultImport({
      bundleFile: ba,
      expectedServerPublicKey: fleetKey,
      target: { kind: 'pkcs11', token: opts(a) },
    });
    await vaultImport({
      bundleFile: bb,
      expectedServerPublicKey: fleetKey,
      target: { kind: 'pkcs11', token: opts(b) },
    });
    await vaultImport({
      bundleFile: bs,
      expectedServerPublicKey: fleetKey,
      target: {
        kind: 'software',
        transportPrivateKeyFile: join(dir, 's.transport.pem'),
        keyFile: join(dir, 's.keys.json'),
      },
    });
    hsms.a = await openPkcs11Hsm({ ...opts(a), expectedServerPublicKey: fleetKey });
    hsms.b = await openPkcs11Hsm({ ...opts(b), expectedServerPublicKey: fleetKey });
    hsms.s = await openSoftwareHsm({ keyFile: join(dir, 's.keys.json') });
  });

  after(async () => {
    for (const h of Object.values(hsms)) await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('every node presents the fleet public key; secret files are 0600', async () => {
    for (const h of Object.values(hsms)) assert.equal(await h.serverPublicKey(), fleetKey);
    const master = decodeSoftwareHsmKeys(await readFile(masterKeyFile, 'utf8'));
    assert.equal(opaque.server.getPublicKey(master.serverSetup), fleetKey);
    for (const f of ['fleet-master.json', 's.keys.json', 's.transport.pem']) {
      assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
    }
  });

  it('a record sealed by any node opens on every other node', async () => {
    for (const [from, hf] of Object.entries(hsms)) {
      const sealed = await hf.sealRecord('acct-1', Buffer.from(`from ${from}`));
      for (const ht of Object.values(hsms)) {
        assert.equal(Buffer.from(await ht.openRecord('acct-1', sealed)).toString(), `from ${from}`);
      }
    }
    // and the shared OPAQUE core with in-memory keys reads the same layout
    const master = decodeSoftwareHsmKeys(await readFile(masterKeyFile, 'utf8'));
    const core = new OpaqueCore(master.serverSetup, createMemorySealer(master.sealingKey));
    const sealed = await hsms.a!.sealRecord('acct-2', Buffer.from('x'));
    assert.equal(Buffer.from(await core.openRecord('acct-2', sealed)).toString(), 'x');
    await core.close();
  });

  it('register on A, log in start on B, finish on the software node (and round the other way)', async () => {
    for (const [r, s, f] of [
      ['a', 'b', 's'],
      ['s', 'a', 'b'],
    ] as const) {
      const pw = `pw ${r}${s}${f}`;
      const account = `user-${r}`;
      const cr = opaque.client.startRegistration({ password: pw });
      const rs = await hsms[r]!.createRegistrationResponse(account, cr.registrationRequest, 'new');
      const rf = opaque.client.finishRegistration({
        password: pw,
        clientRegistrationState: cr.clientRegistrationState,
        registrationResponse: rs.registrationResponse,
        keyStretching: FAST_STRETCHING,
      });
      assert.equal(rf.serverStaticPublicKey, fleetKey);
      // the ticket issued by one node is finished by another
      const reg = await hsms[s]!.finishRegistration(
        account,
        rs.registrationTicket,
        rf.registrationRecord,
        'new',
      );
      const cl = opaque.client.startLogin({ password: pw });
      const ls = await hsms[s]!.startLogin(account, reg.sealedRecord, cl.startLoginRequest, 'e1');
      const lf = opaque.client.finishLogin({
        password: pw,
        clientLoginState: cl.clientLoginState,
        loginResponse: ls.loginResponse,
        keyStretching: FAST_STRETCHING,
      });
      assert.ok(lf);
      const { sessionKey } = await hsms[f]!.finishLogin(
        account,
        ls.sealedLoginState,
        lf.finishLoginRequest,
        'e1',
      );
      assert.equal(Buffer.from(sessionKey).toString('base64url'), lf.sessionKey);
      assert.equal(lf.exportKey, rf.exportKey);
    }
  });

  it('imported keys are sensitive and non-extractable in the token', async () => {
    const t = TokenSession.open(opts(b));
    try {
      for (const label of Object.values(t.labels.keys)) {
        const h = t.findOne(label, pkcs11js.CKO_SECRET_KEY);
        assert.ok(h);
        const [sensitive, extractable] = t.getAttributes(h, [
          pkcs11js.CKA_SENSITIVE,
          pkcs11js.CKA_EXTRACTABLE,
        ]);
        assert.equal(sensitive?.[0], 1);
        assert.equal(extractable?.[0], 0);
        assert.throws(() => t.getAttributes(h, [pkcs11js.CKA_VALUE]), /CKR_ATTRIBUTE_SENSITIVE/);
      }
      const priv = t.findOne(t.labels.transportKey, pkcs11js.CKO_PRIVATE_KEY);
      assert.ok(priv);
      assert.equal(t.getAttributes(priv, [pkcs11js.CKA_EXTRACTABLE])[0]?.[0], 0);
      // the one-time bundle key was a session object and is gone
      assert.equal(t.find(`${t.labels.wrapKey}-import`, pkcs11js.CKO_SECRET_KEY).length, 0);
    } finally {
      t.close();
    }
  });

  it('refuses tampered bundles, foreign bundles and other fleets, installing nothing', async () => {
    const cPub = join(dir, 'c.pub.json');
    await vaultTransportKey({ hsm: 'pkcs11', token: opts(c), out: cPub });
    const good = join(dir, 'c.bundle.json');
    await vaultExport({ masterKeyFile, transportKeyFile: cPub, out: good });
    const text = await readFile(good, 'utf8');
    const target = { kind: 'pkcs11', token: opts(c) } as const;
    const flip = (s: string, i: number) =>
      s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const bundle = JSON.parse(text) as Record<string, unknown> & {
      wrapped: Record<string, string>;
    };
    const tampered: string[] = [];
    for (const k of ['bundle', 'record', 'ticket', 'login']) {
      const t = structuredClone(bundle);
      t.wrapped[k] = flip(t.wrapped[k]!, 40);
      tampered.push(JSON.stringify(t));
    }
    for (const i of [5, 30, (bundle.sealed as string).length - 3]) {
      tampered.push(JSON.stringify({ ...bundle, sealed: flip(bundle.sealed as string, i) }));
    }
    tampered.push(JSON.stringify({ ...bundle, oaepHash: 'sha256' }));
    tampered.push(
      JSON.stringify({ ...bundle, fleetPublicKey: flip(bundle.fleetPublicKey as string, 3) }),
    );
    tampered.push(text.slice(0, 100));
    for (const t of tampered) await rejectsCode(importFleetKeys(t, target, fleetKey), 'CORRUPT');

    // made for another node's transport key
    const forA = await readFile(join(dir, await vaultKeygenBundleName(dir, 'a')), 'utf8');
    await rejectsCode(importFleetKeys(forA, target, fleetKey), 'USAGE');
    // a self-consistent bundle of another fleet (anyone can make one from the public key)
    const rogue = await exportFleetKeysFor(
      await generateFleetKeys(),
      decodeTransportPublicKey(await readFile(cPub, 'utf8')),
    );
    await rejectsCode(importFleetKeys(rogue, target, fleetKey), 'USAGE');
    await rejectsCode(openPkcs11Hsm(opts(c)), 'USAGE'); // still no keys in node C

    // the untouched bundle installs: a node added later joins the fleet
    await importFleetKeys(text, target, fleetKey);
    const hc = await openPkcs11Hsm({ ...opts(c), expectedServerPublicKey: fleetKey });
    try {
      const sealed = await hsms.s!.sealRecord('late', Buffer.from('joined'));
      assert.equal(Buffer.from(await hc.openRecord('late', sealed)).toString(), 'joined');
    } finally {
      await hc.close();
    }
    // a second import without --replace is refused
    await rejectsCode(importFleetKeys(text, target, fleetKey), 'USAGE');
  });

  it('keygen without an output is refused; transport keys are re-used, not silently replaced', async () => {
    await rejectsCode(vaultKeygen({}), 'USAGE');
    const again = join(dir, 'a2.pub.json');
    await vaultTransportKey({ hsm: 'pkcs11', token: opts(a), out: again });
    assert.equal(
      JSON.parse(await readFile(again, 'utf8')).keyId,
      JSON.parse(await readFile(join(dir, 'a.pub.json'), 'utf8')).keyId,
    );
    // a transport public key file that was edited is refused before anything is encrypted
    const pubText = JSON.parse(await readFile(again, 'utf8')) as Record<string, string>;
    await writeFile(
      join(dir, 'bad.pub.json'),
      JSON.stringify({ ...pubText, keyId: 'x'.repeat(43) }),
    );
    await rejectsCode(
      vaultExport({
        masterKeyFile,
        transportKeyFile: join(dir, 'bad.pub.json'),
        out: join(dir, 'never.json'),
      }),
      'USAGE',
    );
  });
});

/** The bundle file keygen wrote for node `n` (named by its transport key id). */
async function vaultKeygenBundleName(dir: string, n: string): Promise<string> {
  const id = (JSON.parse(await readFile(join(dir, `${n}.pub.json`), 'utf8')) as { keyId: string })
    .keyId;
  return `bundle-${id.slice(0, 12)}.json`;
}
