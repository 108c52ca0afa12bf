/**
 * Test harness: a whole vault fleet on loopback, every part a real process started here
 * and stopped by its own PID — three etcd members ({@link startEtcdCluster}) and vault
 * nodes (`serve.js`, one process each, `--workers 1`), node `i` pointed at etcd member `i`
 * only. PKCS#11 nodes get their own SoftHSM2 token (own SOFTHSM2_CONF: separate HSMs);
 * software nodes get a key file. All hold the same fleet keys, installed by running the
 * real key ceremony through the CLI (`backvault vault transport-key | keygen | import`).
 *
 * Tokens come from a test JWT issuer (Ed25519), the production path (`--jwt-public-key`),
 * so a token is valid on every node. Fails loudly when etcd or SoftHSM2 is missing.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { DEV_AUTH_KEY_ENV, generateDevAuthKey } from '#vault/vault/auth.js';
import { createSoftHsmToken, SOFTHSM_MODULE, type SoftHsmToken } from '../hsm/softhsm.js';
import { NO_RATE_LIMITS, startVaultProcess, type VaultProcess } from '../vault/vault-process.js';
import { startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { makeTestPki, type TestPki } from './test-pki.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../packages/cli/dist/cli/main.js', import.meta.url));
const ISSUER = 'https://auth.fleet.test';
const AUDIENCE = 'backvault-fleet-test';
const PIN = '2468';

/** Options of {@link startFleet}. */
export interface FleetOptions {
  /** HSM of each vault node, in order; node `i` uses etcd member `i % members`. */
  readonly hsms: readonly ('pkcs11' | 'software')[];
  /** etcd members. Default 3. */
  readonly members?: number;
  /** `--max-attempts`. Default 10. */
  readonly maxAttempts?: number;
  /** `--etcd-deadline-ms`. Default 2000. */
  readonly etcdDeadlineMs?: number;
  /**
   * `jwt` (default): a test issuer, `--jwt-public-key`. `dev`: `--dev-auth` on every node
   * with one shared INSECURE dev issuer key (loopback demo only).
   */
  readonly auth?: 'jwt' | 'dev';
  /** `--log-level`. Default warn. */
  readonly logLevel?: string;
  /**
   * Mutual TLS between the vault nodes and etcd and between etcd peers, with a throwaway
   * PKI made by `openssl` (see test-pki.ts): what a deployment across sites runs.
   * Default false (clear text on loopback).
   */
  readonly tls?: boolean;
  /** Extra `vault serve` flags for every node, after the defaults (e.g. `--pacing 3:5`). */
  readonly extraArgs?: readonly string[];
}

/** One vault node of the fleet. */
export interface FleetNode {
  readonly index: number;
  readonly hsm: 'pkcs11' | 'software';
  /** Base URL (stable across {@link restart}). */
  readonly url: string;
  /** PID of the running process, or undefined while down. */
  pid(): number | undefined;
  /** SIGKILL by PID (a crash). */
  crash(): Promise<void>;
  /** Starts the node again on the same port, data and HSM. */
  restart(): Promise<void>;
  /** Output (stdout + stderr) of the current process. */
  output(): string;
  /** The current process's metrics URL (its own loopback listener), if any. */
  metricsUrl(): string | undefined;
}

/** A running fleet. */
export interface Fleet {
  readonly etcd: EtcdCluster;
  readonly nodes: readonly FleetNode[];
  /** The fleet public key printed by `vault keygen`: what clients pin. */
  readonly fleetKey: string;
  /** The throwaway PKI when started with {@link FleetOptions.tls}. */
  readonly pki?: TestPki;
  /** A bearer token for `account`, valid on every node. */
  token(account: string): Promise<string>;
  /** Kills every process and removes every temp dir. */
  stopAll(): Promise<void>;
}

async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<unknown> {
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args, '--json'], {
      env: { ...process.env, ...env },
    });
    return JSON.parse(stdout) as unknown;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    throw new Error(
      `backvault ${args.slice(0, 2).join(' ')} failed:\n${x.stdout ?? ''}${x.stderr ?? ''}`,
      {
        cause: e,
      },
    );
  }
}

/**
 * Starts etcd, runs the key ceremony for every node through the CLI, and starts the
 * vault nodes. On any failure everything started so far is stopped.
 * @throws Error naming the Debian packages when etcd or SoftHSM2 is missing.
 */
export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const root = await mkdtemp(join(tmpdir(), 'bv-fleet-'));
  const tokens: SoftHsmToken[] = [];
  const procs: (VaultProcess | undefined)[] = [];
  let etcd: EtcdCluster | undefined;
  // Even if the caller dies without stopAll, leave no key material in /tmp.
  const removeRoot = (): void => rmSync(root, { recursive: true, force: true });
  process.once('exit', removeRoot);
  const stopAll = async (): Promise<void> => {
    process.off('exit', removeRoot);
    // A profiled vault writes its profile on a graceful exit only.
    const graceful = process.env.BACKVAULT_CPU_PROF_DIR !== undefined;
    await Promise.all(procs.map((p) => (graceful ? p?.stop() : p?.crash())));
    await etcd?.stopAll();
    await Promise.all(tokens.map((t) => t.cleanup()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    const pki = o.tls ? await makeTestPki(join(root, 'pki')) : undefined;
    etcd = await startEtcdCluster({ members: o.members ?? 3, ...(pki ? { tls: pki } : {}) });
    const tlsArgs = pki
      ? [
          '--etcd-ca',
          pki.caFile,
          '--etcd-cert',
          pki.clientCertFile,
          '--etcd-key',
          pki.clientKeyFile,
        ]
      : [];
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const jwtPem = join(root, 'issuer.pub.pem');
    await writeFile(jwtPem, publicKey.export({ type: 'spki', format: 'pem' }));

    // Ceremony step 1: every node makes a transport key in its own HSM.
    const nodeEnv: Record<string, string>[] = [];
    const transportFiles: string[] = [];
    for (const [i, hsm] of o.hsms.entries()) {
      const dir = join(root, `node${i}`);
      await mkdir(dir, { mode: 0o700 });
      const out = join(dir, 'transport.pub.json');
      if (hsm === 'pkcs11') {
        const t = await createSoftHsmToken({ label: `node${i}`, pin: PIN, soPin: '13579' });
        tokens.push(t);
        nodeEnv.push({ ...t.env, BACKVAULT_PKCS11_PIN: PIN });
        await cli(
          [
            'vault',
            'transport-key',
            '--hsm',
            'pkcs11',
            '--pkcs11-module',
            SOFTHSM_MODULE,
            '--pkcs11-token',
            t.label,
            '--out',
            out,
          ],
          nodeEnv[i],
        );
      } else {
        nodeEnv.push({});
        await cli([
          'vault',
          'transport-key',
          '--hsm',
          'software',
          '--private-key',
          join(dir, 'transport.pem'),
          '--name',
          `node${i}`,
          '--out',
          out,
        ]);
      }
      transportFiles.push(out);
    }
    // Step 2: the fleet keys, one bundle per node.
    const bundles = join(root, 'bundles');
    await mkdir(bundles, { mode: 0o700 });
    const kg = (await cli([
      'vault',
      'keygen',
      '--export-for',
      transportFiles.join(','),
      '--out-dir',
      bundles,
    ])) as { serverPublicKey: string; bundles: { file: string; transportKeyId: string }[] };
    const fleetKey = kg.serverPublicKey;
    // Step 3: each node imports its bundle, checked against the pinned fleet key.
    const hsmArgs: string[][] = [];
    for (const [i, hsm] of o.hsms.entries()) {
      const bundle = kg.bundles[i]?.file;
      if (!bundle) throw new Error(`keygen wrote no bundle for node ${i}`);
      const dir = join(root, `node${i}`);
      if (hsm === 'pkcs11') {
        const p11 = [
          '--hsm',
          'pkcs11',
          '--pkcs11-module',
          SOFTHSM_MODULE,
          '--pkcs11-token',
          `node${i}`,
        ];
        await cli(
          ['vault', 'import', '--bundle', bundle, '--fleet-key', fleetKey, ...p11],
          nodeEnv[i],
        );
        hsmArgs.push(p11);
      } else {
        const keyFile = join(dir, 'hsm-keys.json');
        await cli([
          'vault',
          'import',
          '--bundle',
          bundle,
          '--fleet-key',
          fleetKey,
          '--hsm',
          'software',
          '--transport-key',
          join(dir, 'transport.pem'),
          '--key-file',
          keyFile,
        ]);
        hsmArgs.push(['--hsm', 'software', '--hsm-key-file', keyFile]);
      }
    }

    const cluster = etcd;
    const dev = o.auth === 'dev';
    if (dev) {
      // One dev issuer for the whole fleet, so a token from any node works on all.
      const devKey = generateDevAuthKey();
      for (const env of nodeEnv) env[DEV_AUTH_KEY_ENV] = devKey;
    }
    const authArgs = dev
      ? ['--dev-auth']
      : ['--issuer', ISSUER, '--audience', AUDIENCE, '--jwt-public-key', jwtPem];
    const argsOf = (i: number): string[] => [
      '--data',
      join(root, `node${i}`),
      '--workers',
      '1',
      '--store',
      'etcd',
      '--etcd',
      cluster.clientUrls[i % cluster.clientUrls.length] ?? '',
      '--etcd-deadline-ms',
      String(o.etcdDeadlineMs ?? 2000),
      ...tlsArgs,
      ...(hsmArgs[i] ?? []),
      '--fleet-key',
      fleetKey,
      ...authArgs,
      '--max-attempts',
      String(o.maxAttempts ?? 10),
      ...NO_RATE_LIMITS,
      '--log-level',
      o.logLevel ?? 'warn',
      ...(o.extraArgs ?? []),
    ];
    const started = await Promise.all(
      o.hsms.map((_, i) => startVaultProcess(argsOf(i), nodeEnv[i])),
    );
    procs.push(...started);
    const nodes: FleetNode[] = started.map((first, i) => {
      const url = first.url;
      const port = new URL(url).port;
      if (first.serverPublicKey !== fleetKey) {
        throw new Error(`node ${i} serves key ${first.serverPublicKey}, not the fleet key`);
      }
      return {
        index: i,
        hsm: o.hsms[i] ?? 'software',
        url,
        pid: () => procs[i]?.pid,
        async crash() {
          await procs[i]?.crash();
          procs[i] = undefined;
        },
        async restart() {
          await procs[i]?.stop();
          procs[i] = await startVaultProcess([...argsOf(i), '--port', port], nodeEnv[i]);
        },
        output: () => procs[i]?.output() ?? '',
        metricsUrl: () => procs[i]?.metricsUrl,
      };
    });
    return {
      etcd,
      nodes,
      fleetKey,
      ...(pki ? { pki } : {}),
      token: dev
        ? async (account) => {
            const r = await fetch(`${nodes[0]?.url ?? ''}/v1/dev/token`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ account }),
            });
            return ((await r.json()) as { token: string }).token;
          }
        : (account) => mint(privateKey, account),
      stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

async function mint(key: KeyObject, account: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(account)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key);
}
