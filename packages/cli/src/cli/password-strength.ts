/**
 * Judging a new vault password before anything is registered, with zxcvbn-ts (a maintained
 * estimator: dictionaries of common passwords, names and words, keyboard patterns, dates,
 * l33t substitutions) rather than a home-made list.
 *
 * - The rules of the SDK first (`checkPassword`: at least 6 characters with a letter).
 * - zxcvbn score 0 ("too guessable": among the first ~10^3 guesses) is refused.
 * - Scores 1 and 2 (up to ~10^8 guesses) are weak: on a terminal the user confirms, without
 *   one `--allow-weak` is needed. The vault's attempt limit stops online guessing; a weak
 *   password matters if the vault's secrets ever leak with a record (offline guessing).
 *
 * The dictionaries (~1 MB) are loaded only when a new password is judged. The scoring itself
 * is `src/client/password-strength.ts`, shared with the settings screen's meter.
 */
import { WeakPasswordError } from 'backvault/errors';
import { judgePassword, type PasswordJudgement } from 'backvault/password-strength';
import type { CliContext } from './context.js';
import { canPrompt, promptLine } from './prompt.js';

export { judgePassword, type PasswordJudgement } from 'backvault/password-strength';

/**
 * Refuse a very common password; have a weak one confirmed (terminal) or allowed
 * (`--allow-weak`). Called before anything is sent to the vault.
 * @throws WeakPasswordError when refused, or weak and neither confirmed nor allowed.
 */
export async function judgeNewPassword(
  ctx: CliContext,
  password: string,
  opts: { allowWeak: boolean; userInputs: readonly string[] },
): Promise<PasswordJudgement> {
  const j = await judgePassword(password, opts.userInputs);
  if (j.verdict === 'refused') {
    throw new WeakPasswordError(
      'this password is among the most common ones: anyone guessing tries it first',
      'Choose another: a few unrelated words work well.',
    );
  }
  if (j.verdict === 'weak' && !opts.allowWeak) {
    if (!canPrompt(ctx.io) || ctx.json) {
      throw new WeakPasswordError(
        'this password is weak: it is among the first hundred million guesses',
        'Choose a longer one (a few unrelated words), or pass --allow-weak to use it anyway.',
      );
    }
    const answer = await promptLine(
      ctx.io,
      'This password is weak: it is among the first hundred million guesses. Use it anyway? [y/N] ',
    );
    if (!/^y(es)?$/i.test(answer.trim())) {
      throw new WeakPasswordError(
        'weak password not confirmed; nothing was changed',
        'Run the command again with a longer password (a few unrelated words).',
      );
    }
  }
  return j;
}
