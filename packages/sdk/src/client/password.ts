/**
 * Password rules for the vault, and a strength estimate.
 *
 * **Rule** (enforced, {@link WeakPasswordError}): at least {@link MIN_PASSWORD_LENGTH}
 * characters (Unicode code points, after NFC normalisation) including at least one letter —
 * the bar WhatsApp sets. The vault's attempt limit (default 10 guesses, then the key is
 * destroyed) is what makes such a short minimum acceptable against online guessing.
 *
 * **Estimate** (advisory, a warning only): the vault's limit does not help if the vault's
 * HSM secrets ever leak together with a record — then guessing is offline, slowed only by
 * Argon2id (~0.2 s per guess on a laptop core). So we estimate entropy and warn below
 * {@link STRONG_PASSWORD_BITS} bits. The heuristic, deliberately simple and conservative:
 *
 * 1. A password in the built-in list of very common passwords (after lower-casing and
 *    stripping trailing digits and punctuation) scores 10 bits.
 * 2. Otherwise: length × log2(size of the character classes used: lower 26, upper 26,
 *    digits 10, symbols 33, other Unicode 100), where runs of a repeated character, and
 *    ascending/descending sequences (`abcd`, `4321`) and keyboard rows (`qwerty`), count
 *    their first two characters only.
 *
 * It is not zxcvbn: it misses dictionary words in general. It errs on the side of warning.
 * Browser-safe.
 */
import { WeakPasswordError } from '../errors.js';

/** Minimum length in characters. */
export const MIN_PASSWORD_LENGTH = 6;
/** Below this estimate a warning is produced. */
export const STRONG_PASSWORD_BITS = 50;

/** Result of {@link checkPassword}. */
export interface PasswordCheck {
  /** Rough entropy estimate in bits (see the module comment). */
  readonly estimatedBits: number;
  /** A human sentence when the password is acceptable but weak; absent otherwise. */
  readonly warning?: string;
}

// The most common passwords of public breach lists, lower-cased, letters required by our
// rule (pure-digit ones are refused anyway). Short on purpose: it catches the worst.
const COMMON = new Set(
  (
    'password passw0rd qwerty qwertyuiop qwerty123 abc123 abcdef abcdefg iloveyou admin ' +
    'welcome monkey dragon letmein football baseball master shadow sunshine princess ' +
    'superman batman trustno1 hello freedom whatever michael jennifer jordan hunter ' +
    'charlie thomas secret computer internet summer winter starwars pokemon killer ' +
    'soccer hockey ranger buster harley pepper ginger cookie cheese flower love ' +
    'loveme mustang access login changeme default test testing guest user qazwsx ' +
    'zaq1zaq1 1q2w3e4r 1qaz2wsx asdfgh asdfghjkl zxcvbn zxcvbnm q1w2e3r4 a1b2c3 ' +
    'backup backvault whatsapp chat'
  ).split(' '),
);

const KEYBOARD_ROWS = [
  'qwertyuiop',
  'asdfghjkl',
  'zxcvbnm',
  '1234567890',
  'azertyuiop',
  'qwertzuiop',
];

function isLetter(ch: string): boolean {
  return /\p{L}/u.test(ch);
}

function classSize(chars: readonly string[]): number {
  let lower = false;
  let upper = false;
  let digit = false;
  let symbol = false;
  let other = false;
  for (const c of chars) {
    if (c >= 'a' && c <= 'z') lower = true;
    else if (c >= 'A' && c <= 'Z') upper = true;
    else if (c >= '0' && c <= '9') digit = true;
    else if (c >= ' ' && c <= '~') symbol = true;
    else other = true;
  }
  return (
    (lower ? 26 : 0) + (upper ? 26 : 0) + (digit ? 10 : 0) + (symbol ? 33 : 0) + (other ? 100 : 0)
  );
}

/** True when `b` continues a repeat, an arithmetic run (±1) or a keyboard row after `a`. */
function predictable(prev2: string | undefined, a: string, b: string): boolean {
  if (a === b) return true;
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d = (y.codePointAt(0) ?? 0) - (x.codePointAt(0) ?? 0);
  if (prev2 !== undefined) {
    const d0 = (x.codePointAt(0) ?? 0) - (prev2.toLowerCase().codePointAt(0) ?? 0);
    if ((d === 1 || d === -1) && d === d0) return true;
  }
  return KEYBOARD_ROWS.some((row) => row.includes(x + y) || row.includes(y + x));
}

/** Canonical form used for both the rules and OPAQUE: Unicode NFC. */
export function normalizePassword(password: string): string {
  return password.normalize('NFC');
}

/**
 * Applies the rules and estimates strength.
 * @throws WeakPasswordError when the password is shorter than 6 characters or has no letter.
 *   The message never contains the password.
 */
export function checkPassword(password: string): PasswordCheck {
  const chars = [...normalizePassword(password)];
  if (chars.length < MIN_PASSWORD_LENGTH) {
    throw new WeakPasswordError(
      `the password is too short: ${chars.length} characters, at least ${MIN_PASSWORD_LENGTH} needed`,
    );
  }
  if (!chars.some(isLetter)) {
    throw new WeakPasswordError('the password needs at least one letter');
  }
  const core = chars
    .join('')
    .toLowerCase()
    .replace(/[\d\W_]+$/u, '');
  if (COMMON.has(core) || COMMON.has(chars.join('').toLowerCase())) {
    return {
      estimatedBits: 10,
      warning:
        'this is one of the most common passwords; anyone who guesses passwords tries it first',
    };
  }
  let effective = 0;
  for (let i = 0; i < chars.length; i++) {
    const cur = chars[i] as string;
    const prev = chars[i - 1];
    effective += prev !== undefined && predictable(chars[i - 2], prev, cur) ? 0 : 1;
  }
  const bits = Math.round(effective * Math.log2(Math.max(2, classSize(chars))));
  if (bits < STRONG_PASSWORD_BITS) {
    return {
      estimatedBits: bits,
      warning: `this password is weak (about ${bits} bits): longer is better — a few unrelated words work well`,
    };
  }
  return { estimatedBits: bits };
}
