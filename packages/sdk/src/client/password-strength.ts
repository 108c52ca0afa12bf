/**
 * How guessable a new vault password is, with zxcvbn-ts (dictionaries of common passwords,
 * names and words, keyboard patterns, dates, l33t substitutions) after the SDK's rules
 * (`checkPassword`). Browser-safe: the CLI (`src/cli/password-strength.ts`) and the settings
 * screen's strength meter (`src/ui/web`) judge with this same function.
 *
 * - zxcvbn score 0 ("too guessable": among the first ~10^3 guesses) is refused.
 * - Scores 1 and 2 (up to ~10^8 guesses) are weak: the user must confirm.
 *
 * The dictionaries (~1 MB) are loaded on first use.
 */
import { checkPassword } from './password.js';

/** The verdict on a password. */
export interface PasswordJudgement {
  /** zxcvbn's score, 0 (too guessable) to 4 (very unguessable). */
  score: number;
  /** log10 of the estimated guesses. */
  guessesLog10: number;
  verdict: 'refused' | 'weak' | 'ok';
}

/** Words that make a password for this account and this app guessable. */
export const APP_WORDS = ['backvault', 'backup', 'whatsapp', 'chat', 'vault', 'password'];

/**
 * Score `password`, counting `userInputs` (the account name, …) as known to an attacker.
 * @throws WeakPasswordError when it breaks the SDK's rules.
 */
export async function judgePassword(
  password: string,
  userInputs: readonly string[] = [],
): Promise<PasswordJudgement> {
  checkPassword(password);
  const [{ ZxcvbnFactory }, common] = await Promise.all([
    import('@zxcvbn-ts/core'),
    import('@zxcvbn-ts/language-common'),
  ]);
  const z = new ZxcvbnFactory({
    dictionary: { ...common.dictionary, userInputs: [...APP_WORDS] },
    graphs: common.adjacencyGraphs,
  });
  const r = z.check(password.normalize('NFC'), [...userInputs]);
  return {
    score: r.score,
    guessesLog10: r.guessesLog10,
    verdict: r.score === 0 ? 'refused' : r.score <= 2 ? 'weak' : 'ok',
  };
}
