/**
 * SoftHSM2 token harness for tests: a private SOFTHSM2_CONF and token directory in a temp
 * dir, so tests never touch the system's tokens. Requires Debian `softhsm2` (the Makefile
 * installs it); fails loudly when it is missing, never skips.
 *
 * SoftHSM2 reads SOFTHSM2_CONF and scans its token directory at C_Initialize, so a test
 * process sets `process.env.SOFTHSM2_CONF` before opening the first HSM and creates every
 * token it needs before that (pass `shareWith` to add tokens to the same directory).
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The Debian SoftHSM2 module. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const SOFTHSM_UTIL = '/usr/bin/softhsm2-util';

/** A token initialised for a test. */
export interface SoftHsmToken {
  readonly module: typeof SOFTHSM_MODULE;
  /** Path of the private SoftHSM2 config file. */
  readonly conf: string;
  /** `{ SOFTHSM2_CONF: conf }`: merge into `process.env` or a child's env. */
  readonly env: Record<string, string>;
  readonly label: string;
  readonly pin: string;
  /** The slot id SoftHSM2 assigned. */
  readonly slot: number | undefined;
  /** Removes the token directory (a no-op for tokens created with `shareWith`). */
  cleanup(): Promise<void>;
}

/** Options of {@link createSoftHsmToken}. */
export interface SoftHsmTokenOptions {
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  /** Put the token in that token's directory (same SOFTHSM2_CONF). */
  readonly shareWith?: SoftHsmToken;
}

async function requireSoftHsm(): Promise<void> {
  for (const f of [SOFTHSM_UTIL, SOFTHSM_MODULE]) {
    try {
      await access(f, constants.R_OK);
    } catch {
      throw new Error(
        `SoftHSM2 is not installed (${f} missing): run \`apt-get install -y softhsm2 opensc\` ` +
          '(`make test` installs them as root). PKCS#11 tests are never skipped.',
      );
    }
  }
}

/**
 * Initialises a fresh SoftHSM2 token (`softhsm2-util --init-token --free`) in a private
 * directory. Call `cleanup()` in `after`.
 * @throws Error naming `apt-get install softhsm2 opensc` when SoftHSM2 is missing.
 */
export async function createSoftHsmToken(o: SoftHsmTokenOptions): Promise<SoftHsmToken> {
  await requireSoftHsm();
  let conf: string;
  let dir: string | undefined;
  if (o.shareWith) {
    conf = o.shareWith.conf;
  } else {
    dir = await mkdtemp(join(tmpdir(), 'bv-softhsm-'));
    const tokens = join(dir, 'tokens');
    await mkdir(tokens, { mode: 0o700 });
    conf = join(dir, 'softhsm2.conf');
    await writeFile(
      conf,
      `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
      { mode: 0o600 },
    );
  }
  const env = { SOFTHSM2_CONF: conf };
  let out: string;
  try {
    ({ stdout: out } = await run(
      SOFTHSM_UTIL,
      ['--init-token', '--free', '--label', o.label, '--pin', o.pin, '--so-pin', o.soPin],
      { env: { ...process.env, ...env } },
    ));
  } catch (e) {
    if (dir) await rm(dir, { recursive: true, force: true });
    // The caught error's command line holds the PINs: report only what softhsm2-util said.
    const said = String((e as { stderr?: unknown }).stderr ?? '').trim();
    // eslint-disable-next-line preserve-caught-error -- see above: no cause, on purpose
    throw new Error(`softhsm2-util --init-token failed for "${o.label}": ${said}`);
  }
  const m = /reassigned to slot (\d+)/.exec(out);
  return {
    module: SOFTHSM_MODULE,
    conf,
    env,
    label: o.label,
    pin: o.pin,
    slot: m ? Number(m[1]) : undefined,
    async cleanup() {
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
