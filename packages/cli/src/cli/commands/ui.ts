/**
 * `backvault ui --device DIR [--port N] [--no-open]`: the device's settings screen in the
 * browser, served on 127.0.0.1 with an access token in the printed URL (see src/ui/server.ts).
 * Runs until Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { resolveDeviceDir } from '../../device/profile.js';
import { UsageError } from 'backvault/errors';
import { booleanOption, stringOption } from '../args.js';
import type { CommandSpec } from '../command.js';
import { accountOption, vaultUrlOption } from '../vault-access.js';

/** Opens `url` in the desktop's browser; silently does nothing where there is none. */
function openBrowser(url: string): void {
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
  try {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no opener: the printed URL is enough
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilStopped(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(signal);
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

/** `ui` */
export const uiCommand: CommandSpec = {
  path: ['ui'],
  summary: 'the settings screen in your browser: backups, protection, restore (local only)',
  usage:
    'ui --device DIR [--port N] [--no-open] [--folder DIR] [--repo URL] [--vault URL --account ID]',
  positionals: [],
  options: {
    device: {
      type: 'string',
      valueName: 'DIR',
      description:
        'device profile directory (may not exist yet: set up or restore a new device from the page)',
    },
    port: {
      type: 'string',
      valueName: 'N',
      description: 'port on 127.0.0.1 (default: any free port)',
    },
    host: {
      type: 'string',
      valueName: 'ADDR',
      description: 'only 127.0.0.1 is accepted: the screen is never reachable from other machines',
    },
    open: {
      type: 'boolean',
      negatable: true,
      description: 'open the browser (default; --no-open only prints the URL)',
    },
    folder: {
      type: 'string',
      valueName: 'DIR',
      description: 'the chat folder to back up and to restore into',
    },
    repo: {
      type: 'string',
      valueName: 'URL',
      description: 'repository for a new device (env BACKVAULT_REPO)',
    },
    vault: {
      type: 'string',
      valueName: 'URL',
      description: 'Backup Key Vault for a new device (env BACKVAULT_VAULT)',
    },
    account: {
      type: 'string',
      valueName: 'ID',
      description: 'account at the vault for a new device (env BACKVAULT_ACCOUNT)',
    },
    token: {
      type: 'string',
      valueName: 'JWT',
      description:
        "bearer token from your app's auth (env BACKVAULT_TOKEN); a --dev-auth vault issues one itself",
    },
  },
  details: [
    'Serves the settings screen on 127.0.0.1 and prints its URL, http://localhost:PORT/?token=…',
    '(localhost: passkeys refuse an IP address), with an access token (like Jupyter); the',
    'page trades it for a session cookie. Requests without',
    'it, or for another Host name, are refused. Passwords are handled by the OPAQUE client in',
    'the page; the page reaches the vault through this server (/vault/…). Backups and restores',
    'run in this process with the same engine as `backvault backup` and `restore`, so a page',
    'reload does not stop them. Ctrl-C stops the server (an unfinished backup leaves the',
    'previous snapshot intact).',
  ],
  examples: [
    'backvault ui --device ~/.bv --folder ~/chat',
    'backvault ui --device ~/.bv-new --folder ~/chat --repo /mnt/cloud/chat --vault https://vault.example --account alice',
  ],
  async run({ values }, ctx) {
    const portText = stringOption(values, 'port');
    const port = portText === undefined ? 0 : Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError('--port must be a whole number from 0 to 65535');
    }
    // Listening for Ctrl-C before the link is printed: a stop right after it is clean too.
    const stopped = untilStopped();
    const { startUiServer } = await import('../../ui/server.js');
    const { resolve } = await import('node:path');
    const folder = stringOption(values, 'folder');
    const repo = stringOption(values, 'repo') ?? (ctx.io.env.BACKVAULT_REPO || undefined);
    const vaultUrl = vaultUrlOption(ctx, values);
    const account = accountOption(ctx, values);
    const vaultToken = stringOption(values, 'token') ?? (ctx.io.env.BACKVAULT_TOKEN || undefined);
    const host = stringOption(values, 'host');
    const server = await startUiServer({
      deviceDir: resolveDeviceDir(stringOption(values, 'device'), ctx.io.env, ctx.io.cwd),
      port,
      ...(host !== undefined ? { host } : {}),
      ...(folder !== undefined ? { folder: resolve(ctx.io.cwd, folder) } : {}),
      ...(repo !== undefined ? { repo } : {}),
      ...(vaultUrl !== undefined ? { vaultUrl } : {}),
      ...(account !== undefined ? { account } : {}),
      ...(vaultToken !== undefined ? { vaultToken } : {}),
      env: ctx.io.env,
      cwd: ctx.io.cwd,
    });
    // The URL is the way in: printed now (the command runs until Ctrl-C). With --json it
    // goes to stderr, so that stdout still carries exactly one JSON object (at the end).
    const banner = `backvault ui: open this link in your browser (it holds the access token):\n  ${server.url}\nCtrl-C stops the server.\n`;
    (ctx.json ? ctx.io.stderr : ctx.io.stdout).write(banner);
    if (booleanOption(values, 'open', true)) openBrowser(server.url);
    const signal = await stopped;
    await server.close();
    return {
      json: { stopped: signal, origin: server.origin },
      human: ['backvault ui stopped'],
    };
  },
};
