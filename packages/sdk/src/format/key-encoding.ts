/**
 * The 64-digit backup key as people see it: 256 bits written as 64 lowercase hexadecimal
 * digits in 16 groups of 4, e.g. `3f2a 9c01 …`. Parsing forgives what people do when they
 * copy or type a key (spaces, dashes, line breaks, tabs, upper case) and rejects anything
 * else with a message naming the bad character and its position — never the input itself,
 * which is a secret.
 *
 * Browser-safe: randomness comes from `globalThis.crypto.getRandomValues`.
 */
import { InvalidKeyError } from '../errors.js';

/** Length of a backup key in bytes (256 bits). */
export const BACKUP_KEY_BYTES = 32;

/** Number of hexadecimal digits in a written backup key. */
export const BACKUP_KEY_DIGITS = 64;

/** A new random 256-bit backup key from the platform CSPRNG. */
export function generateBackupKey(): Uint8Array {
  const key = new Uint8Array(BACKUP_KEY_BYTES);
  globalThis.crypto.getRandomValues(key);
  return key;
}

/**
 * The written form: 64 lowercase hex digits in 16 groups of 4 separated by single spaces.
 * @throws InvalidKeyError when `key` is not 32 bytes.
 */
export function formatBackupKey(key: Uint8Array): string {
  if (key.length !== BACKUP_KEY_BYTES) {
    throw new InvalidKeyError(`a backup key is ${BACKUP_KEY_BYTES} bytes, got ${key.length}`);
  }
  const groups: string[] = [];
  for (let i = 0; i < BACKUP_KEY_BYTES; i += 2) {
    groups.push(
      (key[i] as number).toString(16).padStart(2, '0') +
        (key[i + 1] as number).toString(16).padStart(2, '0'),
    );
  }
  return groups.join(' ');
}

// Separators people produce when copying a key from a screen, a PDF or a password manager.
const SEPARATORS = new Set([' ', '-', '\n', '\r', '\t']);

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) as number;
  const uplus = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  // Printable ASCII is shown as itself; anything else only by code point, so that
  // invisible or look-alike characters are named unambiguously.
  return cp >= 0x21 && cp <= 0x7e ? `'${ch}' (${uplus})` : uplus;
}

/**
 * Parse a typed or pasted backup key.
 *
 * Accepts hex digits in any case, separated by any mix of spaces, dashes, tabs and line
 * breaks. Positions in messages count characters (code points) from 1.
 * @throws InvalidKeyError naming the first character that is neither a hex digit nor a
 *   separator, or saying how many digits were found when there are not exactly 64.
 */
export function parseBackupKey(text: string): Uint8Array {
  const digits: number[] = [];
  let position = 0;
  for (const ch of text) {
    position += 1;
    if (SEPARATORS.has(ch)) continue;
    const code = ch.charCodeAt(0);
    let v: number;
    if (ch.length === 1 && code >= 0x30 && code <= 0x39) v = code - 0x30;
    else if (ch.length === 1 && code >= 0x61 && code <= 0x66) v = code - 0x61 + 10;
    else if (ch.length === 1 && code >= 0x41 && code <= 0x46) v = code - 0x41 + 10;
    else {
      throw new InvalidKeyError(
        `invalid character ${describeChar(ch)} at position ${position} of the backup key`,
      );
    }
    // Keep counting past 64 so the message can say how many digits were typed.
    digits.push(v);
  }
  if (digits.length !== BACKUP_KEY_DIGITS) {
    throw new InvalidKeyError(
      `a backup key has ${BACKUP_KEY_DIGITS} hexadecimal digits, found ${digits.length}`,
    );
  }
  const key = new Uint8Array(BACKUP_KEY_BYTES);
  for (let i = 0; i < BACKUP_KEY_BYTES; i++) {
    key[i] = ((digits[2 * i] as number) << 4) | (digits[2 * i + 1] as number);
  }
  return key;
}
