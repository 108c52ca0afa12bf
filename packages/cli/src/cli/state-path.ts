/** Where the rollback-detection state file lives by default (XDG base directory spec). */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The state file path: `--state FILE`, else `BACKVAULT_STATE`, else
 * `$XDG_STATE_HOME/backvault/state.json`, else `~/.local/state/backvault/state.json`.
 */
export function resolveStatePath(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): string {
  if (flag) return resolve(cwd, flag);
  if (env.BACKVAULT_STATE) return resolve(cwd, env.BACKVAULT_STATE);
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && xdg.startsWith('/') ? xdg : join(env.HOME || homedir(), '.local', 'state');
  return join(base, 'backvault', 'state.json');
}
