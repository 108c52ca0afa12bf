/**
 * `backvault vault serve`: run the Backup Key Vault (delegates to `src/vault/serve.ts`, the
 * same entry as `node serve.js`). Prints one JSON line when ready:
 * `{"listening": URL, "serverPublicKey": KEY}`; logs go to stderr; SIGTERM/SIGINT drain and
 * exit 0.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { booleanOption, stringOption, stringOptions, type OptionSpec } from '../args.js';
import type { CommandSpec } from '../command.js';

const VALUE_FLAGS: Readonly<Record<string, string>> = {
  data: 'DIR',
  host: 'ADDR',
  port: 'N',
  'max-attempts': 'N',
  'login-ttl': 'SECONDS',
  'rate-limit-ip': 'N',
  'rate-limit-account': 'N',
  store: 'KIND',
  hsm: 'KIND',
  etcd: 'URL,URL',
  'etcd-shard': 'ID=URL,URL',
  'etcd-ca': 'PEM',
  'etcd-cert': 'PEM',
  'etcd-key': 'PEM',
  'etcd-prefix': 'PREFIX',
  'etcd-deadline-ms': 'MS',
  'etcd-defrag-interval': 'SECONDS',
  'hsm-key-file': 'FILE',
  'pkcs11-module': 'SO',
  'pkcs11-token': 'LABEL',
  'fleet-key': 'KEY',
  'log-level': 'LEVEL',
  workers: 'N',
  issuer: 'ISS',
  audience: 'AUD',
  jwks: 'FILE',
  'jwt-public-key': 'PEM',
  'max-token-lifetime': 'SECONDS',
  'headers-timeout-ms': 'MS',
  'request-timeout-ms': 'MS',
  'keep-alive-timeout-ms': 'MS',
  'max-connections-per-ip': 'N',
  'max-connections': 'N',
  'trust-proxy': 'IP,IP',
  'metrics-listen': 'HOST:PORT',
  'cors-origin': 'ORIGIN',
};

/** Flags that may be given several times (each value is passed on). */
const REPEATABLE = new Set(['jwt-public-key', 'cors-origin']);
/** Repeatable flags whose values are file paths (resolved against the working directory). */
const PATH_VALUES = new Set(['jwt-public-key']);

const DESCRIPTIONS: Readonly<Record<string, string>> = {
  data: 'data directory: SQLite store and software HSM keys (default $XDG_DATA_HOME/backvault/vault)',
  host: 'bind address (default 127.0.0.1)',
  port: 'TCP port, 0 = any free one (default 8787)',
  'max-attempts': 'wrong passwords before a key is destroyed (default 10)',
  'login-ttl': 'seconds between login start and finish (default 60)',
  'rate-limit-ip': 'requests per minute per client address (default 600)',
  'rate-limit-account': 'requests per minute per account (default 60)',
  store: 'vault store: sqlite (default, in DATA) or etcd (a fleet)',
  hsm: 'HSM: software (default; keys in DATA/hsm-keys.json, or env BACKVAULT_HSM_KEYS) or pkcs11',
  etcd: 'etcd client URLs (--store etcd), e.g. https://10.0.0.1:2379,https://10.0.0.2:2379',
  'etcd-ca': 'CA certificate (PEM) of the https:// etcd members (default: the system CAs)',
  'etcd-cert': 'client certificate (PEM) for etcd members started with --client-cert-auth',
  'etcd-key': 'private key (PEM) of --etcd-cert',
  'etcd-shard': 'shard accounts over etcd clusters: ID=URL,URL; several shards separated by ";"',
  'etcd-prefix': 'etcd key prefix (default /backvault/v1/)',
  'etcd-deadline-ms': 'deadline of one store call in ms, retries included (default 3000)',
  'etcd-defrag-interval':
    'defragment every etcd member this often, so destroyed values leave its free pages (default 3600; 0 = never)',
  'hsm-key-file': 'software HSM key file written by `vault import` (must exist)',
  'pkcs11-module':
    'PKCS#11 module (env BACKVAULT_PKCS11_MODULE); PIN only from env BACKVAULT_PKCS11_PIN',
  'pkcs11-token': 'PKCS#11 token label (env BACKVAULT_PKCS11_TOKEN)',
  'fleet-key': 'the fleet public key from `vault keygen`: refuse to start with other keys',
  'log-level': 'fatal, error, warn, info (default), debug, silent',
  workers:
    'server processes sharing the port (default: CPU count); rate limits are per process, the attempt counter is shared',
  issuer: 'JWT issuer (iss) of your app’s tokens',
  audience: 'JWT audience (aud) of your app’s tokens',
  jwks: 'JWKS file with the issuer’s public keys',
  'jwt-public-key':
    'PEM public key file of the issuer; repeat for several keys (all are accepted, e.g. during a rotation)',
  'headers-timeout-ms': 'a request’s headers must arrive within this (default 10000)',
  'request-timeout-ms': 'a whole request must arrive within this (default 30000)',
  'keep-alive-timeout-ms': 'idle keep-alive connections close after this (default 5000)',
  'max-connections-per-ip':
    'open connections per client address and worker; more are closed at once (default 32)',
  'max-connections':
    'open connections per worker (default 4096, lowered to fit the file descriptor limit)',
  'trust-proxy':
    'load balancer addresses whose X-Forwarded-For names the client (exact IPs; default none)',
  'metrics-listen':
    '/metrics on its own listener: HOST:PORT, or off (default 127.0.0.1:0, a free loopback port shown in the ready line)',
  'cors-origin':
    'a web app origin allowed to call the vault from a browser, exactly scheme://host[:port] (https://app.example); repeat for several; never * (default: none)',
  'max-token-lifetime':
    'longest token lifetime accepted in seconds (default 3600); tokens without exp are refused',
};

const OPTIONS: Record<string, OptionSpec> = {};
for (const [name, valueName] of Object.entries(VALUE_FLAGS)) {
  OPTIONS[name] = {
    type: 'string',
    valueName,
    description: DESCRIPTIONS[name] ?? '',
    ...(REPEATABLE.has(name) ? { multiple: true } : {}),
  };
}
OPTIONS['accept-etcd-rollback'] = {
  type: 'boolean',
  description:
    'start although etcd is older than this node has seen (after a deliberate restore; see docs/OPERATIONS.md)',
};
OPTIONS['dev-auth'] = {
  type: 'boolean',
  description: 'INSECURE demo mode: the vault issues tokens for any account (loopback only)',
};

/** `vault serve` */
export const vaultServeCommand: CommandSpec = {
  path: ['vault', 'serve'],
  summary: 'run the Backup Key Vault server (OPAQUE, attempt counter, software HSM)',
  usage:
    'vault serve [--data DIR] [--port N] [--host 127.0.0.1] (--dev-auth | --issuer ISS --audience AUD --jwks FILE) [--max-attempts N]',
  positionals: [],
  options: OPTIONS,
  details: [
    'Serves the vault HTTP API under /v1 (OpenAPI at /v1/openapi.json) and /healthz; /metrics',
    'only on the --metrics-listen address (loopback by default).',
    'When ready it prints one JSON line on stdout: {"listening": URL, "serverPublicKey": KEY, "metrics": URL}.',
    'Clients pin that key. Logs are JSON lines on stderr and never hold a secret.',
    'SIGTERM or Ctrl-C stops accepting, drains requests and exits 0.',
    '',
    '--dev-auth makes the vault its own INSECURE token issuer, for the demo; it refuses to',
    'start on a non-loopback address.',
    '',
    '--cors-origin lets a web app on another origin use the vault from a browser: preflights',
    'are answered for the listed origins (cached 600 s), refused with 403 for any other.',
  ],
  examples: [
    'backvault vault serve --data ./vault-data --dev-auth --port 8787',
    'backvault vault serve --data /var/lib/backvault --host 0.0.0.0 --issuer https://auth.example --audience backvault --jwks jwks.json',
    'backvault vault serve --data /var/lib/backvault --issuer https://auth.example --audience backvault --jwks jwks.json --cors-origin https://chat.example --cors-origin https://staging.chat.example',
    'BACKVAULT_PKCS11_PIN=… backvault vault serve --store etcd --etcd https://10.0.0.1:2379,https://10.0.1.1:2379,https://10.0.2.1:2379 --etcd-ca etcd-ca.pem --etcd-cert node1.pem --etcd-key node1-key.pem --hsm pkcs11 --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token node1 --fleet-key KEY --data /var/lib/backvault --host 0.0.0.0 --issuer … --audience … --jwks jwks.json',
  ],
  async run({ values }, ctx) {
    const argv: string[] = [];
    for (const name of Object.keys(VALUE_FLAGS)) {
      if (REPEATABLE.has(name)) {
        for (const v of stringOptions(values, name))
          argv.push(`--${name}`, PATH_VALUES.has(name) ? resolve(ctx.io.cwd, v) : v);
        continue;
      }
      let v = stringOption(values, name);
      if (name === 'data') {
        const xdg = ctx.io.env.XDG_DATA_HOME;
        const base =
          xdg && xdg.startsWith('/') ? xdg : join(ctx.io.env.HOME || homedir(), '.local', 'share');
        v = resolve(ctx.io.cwd, v ?? join(base, 'backvault', 'vault'));
      }
      if (v === undefined) continue;
      if (name === 'etcd-ca' || name === 'etcd-cert' || name === 'etcd-key' || name === 'jwks') {
        v = resolve(ctx.io.cwd, v);
      }
      if (name === 'etcd-shard') {
        // One CLI flag holds every shard; serve.js takes one --etcd-shard per shard.
        for (const spec of v.split(';').filter((x) => x.trim() !== ''))
          argv.push('--etcd-shard', spec.trim());
      } else argv.push(`--${name}`, v);
    }
    if (booleanOption(values, 'dev-auth')) argv.push('--dev-auth');
    // A taken port is this machine's condition (PORT_IN_USE, exit 8), said before starting.
    const portText = stringOption(values, 'port');
    const port = portText === undefined ? 8787 : Number(portText);
    if (Number.isInteger(port) && port > 0 && port <= 65535) {
      const { assertPortFree } = await import('../port-probe.js');
      await assertPortFree(stringOption(values, 'host') ?? '127.0.0.1', port);
    }
    if (booleanOption(values, 'accept-etcd-rollback')) argv.push('--accept-etcd-rollback');
    // The server owns the process from here: its SIGINT/SIGTERM handlers drain and exit 0,
    // so the CLI's own Ctrl-C handler ("stopped before completion", exit 130) must go.
    for (const l of process.listeners('SIGINT')) process.removeListener('SIGINT', l);
    const { main } = await import('@backvault/vault/serve');
    await main(argv);
    // Never resolves: the server's signal handlers end the process.
    return new Promise(() => undefined);
  },
};
