/**
 * The vault chapter of `make demo`: a Backup Key Vault on loopback (software HSM, embedded
 * SQLite store, --dev-auth), the existing backup protected by a password, a restore on a
 * fresh device with the password alone, wrong guesses counting down, a password change, and
 * back to the 64-digit key. `scripts/demo.ts` appends these steps to its story and lends its
 * helpers (this module must not import demo.ts, which runs the demo when loaded).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diffTrees, hashTree } from '../bench/tree-hash.js';
import type { DemoContext, DemoStep } from './demo.js';

/** The compiled CLI, located from this file (dist/scripts → dist/src/cli). */
const MAIN_JS = fileURLToPath(new URL('../../packages/cli/dist/cli/main.js', import.meta.url));

const PASSWORD = 'purple otter 42';
const NEW_PASSWORD = 'seven quiet lanterns';

/** Helpers the demo lends to its chapters. */
export interface DemoTools {
  backvault(
    ctx: DemoContext,
    args: string[],
    opts?: { expectFail?: boolean; shown?: string; quiet?: boolean },
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  say(...lines: string[]): void;
  filesContaining(dir: string, needle: Buffer): Promise<number>;
}

interface VaultState {
  child?: ChildProcess;
  url?: string;
  serverPublicKey?: string;
}

/** Runs `backvault` with a password variable set only for that call. */
async function withPassword<T>(
  ctx: DemoContext,
  name: 'BACKVAULT_PASSWORD' | 'BACKVAULT_NEW_PASSWORD',
  value: string,
  fn: () => Promise<T>,
): Promise<T> {
  ctx.env[name] = value;
  try {
    return await fn();
  } finally {
    delete ctx.env[name];
  }
}

/** Starts `backvault vault serve` as a child; it is killed when the demo exits, whatever happens. */
async function startVault(ctx: DemoContext, tools: DemoTools, state: VaultState): Promise<void> {
  const args = [
    'vault',
    'serve',
    '--data',
    'vault-data',
    '--port',
    '0',
    '--dev-auth',
    '--max-attempts',
    '5',
    '--log-level',
    'warn',
  ];
  console.log(`\n  $ backvault ${args.join(' ')} &`);
  const child = spawn(process.execPath, [MAIN_JS, ...args], {
    cwd: ctx.root,
    env: ctx.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  state.child = child;
  process.once('exit', () => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`demo: the vault did not start: ${err}`)),
      15_000,
    );
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.on('exit', (code) => reject(new Error(`demo: the vault exited ${code}: ${err}`)));
  });
  console.log(`    ${line}`);
  for (const l of err.split('\n').filter((x) => x.startsWith('WARNING'))) console.log(`    ${l}`);
  const ready = JSON.parse(line) as { listening: string; serverPublicKey: string };
  state.url = ready.listening;
  state.serverPublicKey = ready.serverPublicKey;
  tools.say(
    '',
    '  One vault node: a software HSM holds the OPAQUE server secrets and the record-sealing key',
    '  (vault-data/hsm-keys.json, 0600), an embedded SQLite store holds sealed records. It hands',
    '  out INSECURE demo tokens (--dev-auth), which is why it only listens on 127.0.0.1.',
  );
}

/** The vault chapter's steps. */
export function vaultSteps(tools: DemoTools): DemoStep[] {
  const { backvault, say } = tools;
  const state: VaultState = {};
  const url = (): string => state.url ?? '';
  /** The cloud repository, protected by alice's password in the vault. */
  const aliceInVault = (): string[] => [
    '--repo',
    'cloud',
    '--password',
    '--vault',
    url(),
    '--account',
    'alice',
  ];
  /** `restore TARGET` from the cloud with alice's vault password (the new-phone path). */
  const passwordRestore = (target: string): string[] => ['restore', target, ...aliceInVault()];

  return [
    {
      title: 'A Backup Key Vault, for users who would rather remember a password',
      async run(ctx) {
        // From here on the devices hold the key: no key or state in the environment.
        delete ctx.env.BACKVAULT_KEY;
        delete ctx.env.BACKVAULT_STATE;
        await startVault(ctx, tools, state);
      },
    },
    {
      title: 'Protect the backup with a password',
      async run(ctx) {
        say(
          '  The old phone escrows its backup key in the vault under a password. The password runs',
          '  through OPAQUE on the phone and never leaves it; the vault stores a key envelope it',
          '  cannot open. (--key-file: protect the existing repository and its key.)',
        );
        await withPassword(ctx, 'BACKVAULT_PASSWORD', PASSWORD, () =>
          backvault(
            ctx,
            [
              'enable',
              '--device',
              'old-phone/device',
              ...aliceInVault(),
              '--key-file',
              'backup-key.txt',
            ],
            {
              shown: `BACKVAULT_PASSWORD='${PASSWORD}' backvault enable --device old-phone/device --repo cloud --password --vault ${url()} --account alice --key-file backup-key.txt`,
            },
          ),
        );
        await backvault(ctx, ['backup', 'old-phone/chat', '--device', 'old-phone/device']);
        await backvault(ctx, ['status', '--device', 'old-phone/device']);
        ctx.facts.push('the backup key was escrowed in the vault under a password (OPAQUE)');
      },
    },
    {
      title: 'What the vault and the cloud hold: no key, no password',
      async run(ctx) {
        const keyText = (await readFile(join(ctx.root, 'backup-key.txt'), 'utf8')).trim();
        const hex = keyText.replace(/\s/g, '');
        const raw = Buffer.from(hex, 'hex');
        const vaultDir = join(ctx.root, 'vault-data');
        say(`  vault-data/ holds: ${(await readdir(vaultDir)).sort().join(', ')}`);
        const probes: [string, Buffer][] = [
          [`the password "${PASSWORD}"`, Buffer.from(PASSWORD)],
          ['the backup key as 64 digits', Buffer.from(hex)],
          ['the backup key as raw bytes', raw],
          ['the backup key in base64url', Buffer.from(raw.toString('base64url'))],
        ];
        for (const [label, needle] of probes) {
          const inVault = await tools.filesContaining(vaultDir, needle);
          const inCloud = await tools.filesContaining(ctx.cloud, needle);
          say(`  searching for ${label}: vault ${inVault} file(s), cloud ${inCloud} object(s)`);
          if (inVault + inCloud !== 0) throw new Error(`demo: found ${label}`);
        }
        ctx.facts.push('neither the vault nor the cloud held the password or the backup key');
      },
    },
    {
      title: 'Another lost phone: restore with the password alone',
      async run(ctx) {
        say('  phone-2 has no key file: only the account name and the password.');
        await withPassword(ctx, 'BACKVAULT_PASSWORD', PASSWORD, () =>
          backvault(ctx, [...passwordRestore('phone-2/chat'), '--device', 'phone-2/device'], {
            shown: `BACKVAULT_PASSWORD='${PASSWORD}' backvault restore phone-2/chat --repo cloud --password --vault ${url()} --account alice --device phone-2/device`,
          }),
        );
        const d = diffTrees(
          await hashTree(join(ctx.root, 'old-phone', 'chat')),
          await hashTree(join(ctx.root, 'phone-2', 'chat')),
        );
        if (d.content.length > 0) throw new Error('demo: the password restore differs');
        say(
          '',
          '  Identical to the old phone, byte for byte; phone-2 is set up to continue backing up.',
        );
        ctx.facts.push('a new phone restored with the password alone, byte-identical');
      },
    },
    {
      title: 'Someone guesses: every wrong password counts',
      async run(ctx) {
        for (const guess of ['alice1234', 'otter purple 42', 'letmein!']) {
          await withPassword(ctx, 'BACKVAULT_PASSWORD', guess, () =>
            backvault(ctx, passwordRestore('thief/chat'), {
              expectFail: true,
              shown: `BACKVAULT_PASSWORD='${guess}' backvault restore thief/chat --repo cloud --password --vault … --account alice`,
            }),
          );
        }
        say(
          '',
          '  Each guess was counted durably by the vault before it answered. Two more and the vault',
          '  destroys the key for good ("LOCKED", exit 5) — on every node, across restarts.',
        );
        await backvault(ctx, ['status', '--device', 'phone-2/device']);
        ctx.facts.push('three wrong passwords counted down: 4, 3, 2 attempts left');
      },
    },
    {
      title: 'Change the password',
      async run(ctx) {
        await withPassword(ctx, 'BACKVAULT_NEW_PASSWORD', NEW_PASSWORD, () =>
          backvault(ctx, ['password', 'change', '--device', 'phone-2/device'], {
            shown: `BACKVAULT_NEW_PASSWORD='${NEW_PASSWORD}' backvault password change --device phone-2/device`,
          }),
        );
        say('', '  The device proved it holds the key; the vault swapped the record in one step.');
        await withPassword(ctx, 'BACKVAULT_PASSWORD', PASSWORD, () =>
          backvault(ctx, passwordRestore('phone-3/chat'), {
            expectFail: true,
            shown: `BACKVAULT_PASSWORD='${PASSWORD}' backvault restore phone-3/chat … (the old password)`,
          }),
        );
        await withPassword(ctx, 'BACKVAULT_PASSWORD', NEW_PASSWORD, () =>
          backvault(ctx, passwordRestore('phone-3/chat'), {
            shown: `BACKVAULT_PASSWORD='${NEW_PASSWORD}' backvault restore phone-3/chat … (the new password)`,
          }),
        );
        ctx.facts.push('after a password change the old password failed and the new one worked');
      },
    },
    {
      title: 'Back to the 64-digit key',
      async run(ctx) {
        say(
          '  Turning the password off deletes the key envelope from the vault. The backups stay',
          '  readable with the 64-digit key, so disable shows it one last time.',
        );
        await backvault(ctx, ['disable', '--device', 'phone-2/device', '--yes']);
        await withPassword(ctx, 'BACKVAULT_PASSWORD', NEW_PASSWORD, () =>
          backvault(ctx, passwordRestore('phone-4/chat'), {
            expectFail: true,
            shown: 'backvault restore phone-4/chat --repo cloud --password …',
          }),
        );
        await backvault(ctx, [
          'restore',
          'phone-4/chat',
          '--repo',
          'cloud',
          '--key-file',
          'backup-key.txt',
        ]);
        const child = state.child;
        if (child?.pid !== undefined && child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          process.kill(child.pid, 'SIGTERM');
          await exited;
        }
        say('', '  The vault is stopped (SIGTERM: drained, exit 0).');
        ctx.facts.push('after disable only the 64-digit key restored, as it always could');
      },
    },
  ];
}
