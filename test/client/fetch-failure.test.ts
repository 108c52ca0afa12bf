/**
 * How the SDK names a `fetch` that got no HTTP answer (`diagnoseFetchFailure`): UNAVAILABLE
 * outside browsers and on the vault's own origin (without asking anything more), and in a
 * browser on another origin the two plain `GET /v1/info` that tell a CORS block
 * (VAULT_CORS_BLOCKED) from a vault that allows the page but failed, or one that is down.
 * The probes here are recorded functions standing in for the browser's `fetch` modes; the
 * same decisions run against real Chromium in test/browser/cors.test.ts. Also the real Node
 * client against a closed port: still UNAVAILABLE.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import {
  browserPageOrigin,
  diagnoseFetchFailure,
  VaultClient,
  type FetchFailure,
} from '#sdk/client/index.js';
import { UnavailableError, VaultCorsBlockedError } from '#sdk/errors.js';

const PAGE = 'https://chat.example';
const VAULT = 'https://vault.example:8443';

function probes(answers: { cors: boolean; 'no-cors': boolean }): {
  asked: string[];
  probe: FetchFailure['probe'];
} {
  const asked: string[] = [];
  return {
    asked,
    probe: (mode) => {
      asked.push(mode);
      return Promise.resolve(answers[mode]);
    },
  };
}

describe('diagnoseFetchFailure', () => {
  it('outside a browser, on the same origin, or for a non-network error: UNAVAILABLE, no probe', async () => {
    for (const [pageOrigin, cause] of [
      [undefined, new TypeError('fetch failed')],
      [VAULT, new TypeError('Failed to fetch')],
      [PAGE, new DOMException('signal timed out', 'TimeoutError')],
    ] as const) {
      const p = probes({ cors: false, 'no-cors': true });
      const e = await diagnoseFetchFailure({ base: VAULT, cause, pageOrigin, probe: p.probe });
      assert.ok(e instanceof UnavailableError, String(e));
      assert.equal(e.code, 'UNAVAILABLE');
      assert.equal(e.message, `cannot reach the vault at ${VAULT}`);
      assert.equal(e.cause, cause);
      assert.deepEqual(p.asked, []);
    }
  });

  it('cross-origin, the vault answers a no-cors request but not a CORS one: VAULT_CORS_BLOCKED', async () => {
    const p = probes({ cors: false, 'no-cors': true });
    const e = await diagnoseFetchFailure({
      base: `${VAULT}/`,
      cause: new TypeError('Failed to fetch'),
      pageOrigin: PAGE,
      probe: p.probe,
    });
    assert.deepEqual(p.asked, ['cors', 'no-cors']);
    assert.ok(e instanceof VaultCorsBlockedError);
    assert.ok(!(e instanceof UnavailableError));
    assert.equal(e.code, 'VAULT_CORS_BLOCKED');
    assert.equal(e.pageOrigin, PAGE);
    assert.equal(e.vaultOrigin, VAULT);
    assert.match(
      e.message,
      /origin https:\/\/chat\.example\) from the vault at https:\/\/vault\.example:8443/,
    );
    assert.match(e.message, /CORS/);
    assert.match(e.hint, /`vault serve --cors-origin https:\/\/chat\.example`/);
  });

  it('an opaque page origin (file:, sandboxed frame) is told no vault can list it', async () => {
    const p = probes({ cors: false, 'no-cors': true });
    const e = await diagnoseFetchFailure({
      base: VAULT,
      cause: new TypeError('Failed to fetch'),
      pageOrigin: 'null',
      probe: p.probe,
    });
    assert.equal(e.code, 'VAULT_CORS_BLOCKED');
    assert.match(e.hint, /opaque origin/);
    assert.doesNotMatch(e.hint, /--cors-origin null/);
  });

  it('cross-origin, the vault allows the page: UNAVAILABLE saying so; down: UNAVAILABLE naming both', async () => {
    const allowed = probes({ cors: true, 'no-cors': true });
    const a = await diagnoseFetchFailure({
      base: VAULT,
      cause: new TypeError('Failed to fetch'),
      pageOrigin: PAGE,
      probe: allowed.probe,
    });
    assert.deepEqual(allowed.asked, ['cors']);
    assert.equal(a.code, 'UNAVAILABLE');
    assert.match(a.message, /allows this origin/);
    const down = probes({ cors: false, 'no-cors': false });
    const d = await diagnoseFetchFailure({
      base: VAULT,
      cause: new TypeError('Failed to fetch'),
      pageOrigin: PAGE,
      probe: down.probe,
    });
    assert.deepEqual(down.asked, ['cors', 'no-cors']);
    assert.equal(d.code, 'UNAVAILABLE');
    assert.match(
      d.message,
      /from this page \(origin https:\/\/chat\.example\): not even a plain request/,
    );
    assert.match(d.message, /--cors-origin https:\/\/chat\.example/);
  });

  it('in Node there is no page origin, and a closed port is UNAVAILABLE as before', async () => {
    assert.equal(browserPageOrigin(), undefined);
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    const url = `http://127.0.0.1:${port}`;
    await assert.rejects(new VaultClient({ baseUrl: url }).info(), (e: unknown) => {
      assert.ok(e instanceof UnavailableError, String(e));
      assert.equal(e.message, `cannot reach the vault at ${url}`);
      return true;
    });
  });
});
