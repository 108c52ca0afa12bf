/**
 * The fleet key ceremony on the command line: `vault transport-key`, `vault keygen`,
 * `vault export`, `vault import`. Each is a thin wrapper over the entry points of
 * `src/hsm/ceremony.ts`; the steps and their trade-offs are documented there and in
 * docs/OPERATIONS.md. The PKCS#11 PIN comes only from `BACKVAULT_PKCS11_PIN` (never a flag,
 * so it stays out of shell history and `ps`).
 */
import { resolve } from 'node:path';
import { UsageError } from 'backvault/errors';
import type { FleetImportTarget } from '@backvault/vault/ceremony';
import type { Pkcs11TokenOptions } from '@backvault/vault/pkcs11';
import { booleanOption, stringOption, type OptionSpec, type OptionValues } from '../args.js';
import type { CommandSpec } from '../command.js';
import type { CliContext } from '../context.js';

const PIN_ENV = 'BACKVAULT_PKCS11_PIN';

const HSM_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  hsm: { type: 'string', valueName: 'KIND', description: 'pkcs11 or software' },
  'pkcs11-module': {
    type: 'string',
    valueName: 'SO',
    description:
      'PKCS#11 module (env BACKVAULT_PKCS11_MODULE), e.g. /usr/lib/softhsm/libsofthsm2.so',
  },
  'pkcs11-token': {
    type: 'string',
    valueName: 'LABEL',
    description: 'token label (env BACKVAULT_PKCS11_TOKEN); PIN from env BACKVAULT_PKCS11_PIN',
  },
  replace: {
    type: 'boolean',
    description: 'replace keys this HSM already holds (makes their records unreadable)',
  },
};

function path(ctx: CliContext, values: OptionValues, name: string): string | undefined {
  const v = stringOption(values, name);
  return v === undefined ? undefined : resolve(ctx.io.cwd, v);
}

function required(ctx: CliContext, values: OptionValues, name: string): string {
  const v = path(ctx, values, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

function hsmKind(values: OptionValues): 'pkcs11' | 'software' {
  const kind = stringOption(values, 'hsm');
  if (kind !== 'pkcs11' && kind !== 'software') {
    throw new UsageError('--hsm must be pkcs11 or software');
  }
  return kind;
}

function token(ctx: CliContext, values: OptionValues): Pkcs11TokenOptions {
  const env = ctx.io.env;
  const module = stringOption(values, 'pkcs11-module') ?? env.BACKVAULT_PKCS11_MODULE;
  const tokenLabel = stringOption(values, 'pkcs11-token') ?? env.BACKVAULT_PKCS11_TOKEN;
  const pin = env[PIN_ENV];
  if (!module)
    throw new UsageError('--hsm pkcs11 needs --pkcs11-module (or BACKVAULT_PKCS11_MODULE)');
  if (!tokenLabel)
    throw new UsageError('--hsm pkcs11 needs --pkcs11-token (or BACKVAULT_PKCS11_TOKEN)');
  if (!pin) throw new UsageError(`--hsm pkcs11 needs the token's user PIN in ${PIN_ENV}`);
  ctx.addSecret(pin);
  return { module, tokenLabel, pin };
}

/** `vault transport-key` */
export const vaultTransportKeyCommand: CommandSpec = {
  path: ['vault', 'transport-key'],
  summary: 'key ceremony step 1 (each node): make this HSM a transport key for fleet keys',
  usage:
    'vault transport-key (--hsm pkcs11 --pkcs11-module SO --pkcs11-token LABEL | --hsm software --private-key FILE) --out FILE',
  positionals: [],
  options: {
    ...HSM_OPTIONS,
    'private-key': {
      type: 'string',
      valueName: 'FILE',
      description: 'software: where the transport private key is created (0600, never overwritten)',
    },
    name: { type: 'string', valueName: 'NAME', description: 'software: a name for humans' },
    out: { type: 'string', valueName: 'FILE', description: 'the public key file to hand over' },
  },
  details: [
    'PKCS#11: an RSA-3072 key pair is generated inside the token (private half unwrap-only,',
    'non-extractable); re-running returns the same public key unless --replace is given.',
    'Software: the private key goes to a 0600 PEM file on this node.',
    'Hand the --out file (public, not secret) to whoever runs `vault keygen`.',
  ],
  examples: [
    'BACKVAULT_PKCS11_PIN=… backvault vault transport-key --hsm pkcs11 --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token node1 --out node1.transport.json',
    'backvault vault transport-key --hsm software --private-key /var/lib/backvault/transport.pem --out node3.transport.json',
  ],
  async run({ values }, ctx) {
    const { vaultTransportKey } = await import('@backvault/vault/ceremony');
    const out = required(ctx, values, 'out');
    const r =
      hsmKind(values) === 'pkcs11'
        ? await vaultTransportKey({
            hsm: 'pkcs11',
            token: token(ctx, values),
            out,
            replace: booleanOption(values, 'replace'),
          })
        : await vaultTransportKey({
            hsm: 'software',
            privateKeyFile: required(ctx, values, 'private-key'),
            out,
            ...(stringOption(values, 'name') ? { name: stringOption(values, 'name') } : {}),
          });
    return {
      json: { ...r },
      human: [`transport public key ${r.transportKeyId} (${r.kind}) written to ${r.file}`],
    };
  },
};

/** `vault keygen` */
export const vaultKeygenCommand: CommandSpec = {
  path: ['vault', 'keygen'],
  summary: 'key ceremony step 2 (once): create the fleet keys, one bundle per node',
  usage: 'vault keygen --export-for FILE,FILE,... [--out-dir DIR] [--master-key FILE]',
  positionals: [],
  options: {
    'export-for': {
      type: 'string',
      valueName: 'FILE,FILE',
      description: 'transport public key files of the nodes (comma-separated)',
    },
    'out-dir': { type: 'string', valueName: 'DIR', description: 'where bundles go (default .)' },
    'master-key': {
      type: 'string',
      valueName: 'FILE',
      description: 'also keep the fleet keys (0600) to export for nodes added later: keep OFFLINE',
    },
  },
  details: [
    'Creates a new fleet identity (OPAQUE server setup + sealing key) and encrypts it for each',
    'transport key. Prints the fleet public key: clients pin it, every `vault import` and',
    '`vault serve --fleet-key` checks it. Run on a trusted, ideally offline machine.',
  ],
  examples: [
    'backvault vault keygen --export-for node1.transport.json,node2.transport.json,node3.transport.json --out-dir bundles',
  ],
  async run({ values }, ctx) {
    const { vaultKeygen } = await import('@backvault/vault/ceremony');
    const exportFor = (stringOption(values, 'export-for') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s) => resolve(ctx.io.cwd, s));
    const outDir = path(ctx, values, 'out-dir') ?? ctx.io.cwd;
    const masterKeyFile = path(ctx, values, 'master-key');
    const r = await vaultKeygen({
      exportFor,
      outDir,
      ...(masterKeyFile ? { masterKeyFile } : {}),
    });
    return {
      json: { ...r, bundles: r.bundles.map((b) => ({ ...b })) },
      human: [
        `fleet public key (pin it; pass to every import): ${r.serverPublicKey}`,
        ...r.bundles.map(
          (b) => `  bundle for ${b.name} (${b.transportKeyId.slice(0, 12)}): ${b.file}`,
        ),
        ...(r.masterKeyFile ? [`  master key file (keep offline): ${r.masterKeyFile}`] : []),
      ],
    };
  },
};

/** `vault export` */
export const vaultExportCommand: CommandSpec = {
  path: ['vault', 'export'],
  summary: 'key ceremony: a bundle for a node added later, from the master key file',
  usage: 'vault export --master-key FILE --for TRANSPORT.json --out BUNDLE.json',
  positionals: [],
  options: {
    'master-key': { type: 'string', valueName: 'FILE', description: 'from `keygen --master-key`' },
    for: { type: 'string', valueName: 'FILE', description: "the new node's transport public key" },
    out: { type: 'string', valueName: 'FILE', description: 'the bundle to write' },
  },
  examples: [
    'backvault vault export --master-key fleet-master.json --for node4.transport.json --out node4.bundle.json',
  ],
  async run({ values }, ctx) {
    const { vaultExport } = await import('@backvault/vault/ceremony');
    const r = await vaultExport({
      masterKeyFile: required(ctx, values, 'master-key'),
      transportKeyFile: required(ctx, values, 'for'),
      out: required(ctx, values, 'out'),
    });
    return {
      json: { ...r },
      human: [`bundle for ${r.name} written to ${r.file} (fleet ${r.serverPublicKey})`],
    };
  },
};

/** `vault import` */
export const vaultImportCommand: CommandSpec = {
  path: ['vault', 'import'],
  summary: "key ceremony step 3 (each node): install this node's bundle into its HSM",
  usage:
    'vault import --bundle FILE --fleet-key KEY (--hsm pkcs11 --pkcs11-module SO --pkcs11-token LABEL | --hsm software --transport-key PEM --key-file FILE) [--replace]',
  positionals: [],
  options: {
    ...HSM_OPTIONS,
    bundle: { type: 'string', valueName: 'FILE', description: 'the bundle made for this node' },
    'fleet-key': {
      type: 'string',
      valueName: 'KEY',
      description: 'the fleet public key printed by `vault keygen` (pinned; required)',
    },
    'transport-key': {
      type: 'string',
      valueName: 'PEM',
      description: 'software: the transport private key from `vault transport-key`',
    },
    'key-file': {
      type: 'string',
      valueName: 'FILE',
      description: 'software: the HSM key file to write (0600); serve with --hsm-key-file',
    },
  },
  details: [
    'Checks that the bundle was made for this HSM, unchanged, and for the pinned fleet; only',
    'then installs it. PKCS#11: the sealing keys are unwrapped inside the token and never',
    'appear in this process.',
  ],
  examples: [
    'BACKVAULT_PKCS11_PIN=… backvault vault import --bundle bundle-AbC.json --fleet-key KEY --hsm pkcs11 --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token node1',
    'backvault vault import --bundle bundle-XyZ.json --fleet-key KEY --hsm software --transport-key transport.pem --key-file /var/lib/backvault/hsm-keys.json',
  ],
  async run({ values }, ctx) {
    const { vaultImport } = await import('@backvault/vault/ceremony');
    const fleetKey = stringOption(values, 'fleet-key');
    if (!fleetKey) throw new UsageError('--fleet-key is required (the key `vault keygen` printed)');
    const replace = booleanOption(values, 'replace');
    const target: FleetImportTarget =
      hsmKind(values) === 'pkcs11'
        ? { kind: 'pkcs11', token: token(ctx, values), replace }
        : {
            kind: 'software',
            transportPrivateKeyFile: required(ctx, values, 'transport-key'),
            keyFile: required(ctx, values, 'key-file'),
            replace,
          };
    const r = await vaultImport({
      bundleFile: required(ctx, values, 'bundle'),
      expectedServerPublicKey: fleetKey,
      target,
    });
    return {
      json: { imported: true, serverPublicKey: r.serverPublicKey },
      human: [`fleet keys installed (fleet ${r.serverPublicKey})`],
    };
  },
};
