/**
 * A real vault process trusting a fresh sample issuer (examples/token-issuer), for the
 * examples that talk to a vault.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startVaultProcess, type VaultProcess } from '../vault/vault-process.js';
import { EXAMPLES_DIR } from './install.js';

export const ISS = 'https://app.example';
export const AUD = 'backvault';

export interface IssuerVault {
  readonly vault: VaultProcess;
  issue(user: string): Promise<{ token: string }>;
  stop(): Promise<void>;
}

export async function startIssuerVault(): Promise<IssuerVault> {
  const work = await mkdtemp(join(tmpdir(), 'bv-example-vault-'));
  const { createTokenIssuer } = (await import(
    pathToFileURL(join(EXAMPLES_DIR, 'token-issuer/issuer.mjs')).href
  )) as {
    createTokenIssuer: (o: object) => Promise<{
      jwks: object;
      issue: (u: string) => Promise<{ token: string }>;
    }>;
  };
  const privateKeyPem = generateKeyPairSync('ed25519')
    .privateKey.export({ format: 'pem', type: 'pkcs8' })
    .toString();
  const issuer = await createTokenIssuer({ privateKeyPem, issuer: ISS, audience: AUD });
  await writeFile(join(work, 'jwks.json'), JSON.stringify(issuer.jwks));
  const vault = await startVaultProcess([
    '--data',
    join(work, 'data'),
    '--workers',
    '1',
    '--issuer',
    ISS,
    '--audience',
    AUD,
    '--jwks',
    join(work, 'jwks.json'),
  ]);
  return {
    vault,
    issue: (u) => issuer.issue(u),
    async stop() {
      await vault.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}
