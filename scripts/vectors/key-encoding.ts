/**
 * Vectors of SPEC.md §13: the 64-digit key, written and read.
 */

import {
formatBackupKey
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,detBytes,header,hex } from './common.js';











export async function keyEncodingVectors(): Promise<Json> {
  const k = VECTOR_KEY;
  const text = formatBackupKey(k);
  const digits = text.replaceAll(' ', '');
  const valid: Json[] = [
    ['canonical form', text],
    ['no separators', digits],
    ['upper case', text.toUpperCase()],
    ['dashes between groups', text.replaceAll(' ', '-')],
    [
      'line breaks, tabs, CRLF and stray separators',
      `\n\t${digits.slice(0, 16)}\r\n${digits.slice(16, 40)}  -- ${digits.slice(40)}\n`,
    ],
    [
      'mixed case, groups of 8',
      digits
        .replace(/(.{8})/g, '$1 ')
        .replace(/[a-f]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c)),
    ],
  ].map(([description, input]) => ({
    description: description as string,
    input: input as string,
    key: hex(k),
  }));
  const k2 = detBytes('second key', 32);
  valid.push({ description: 'another key, canonical', input: formatBackupKey(k2), key: hex(k2) });
  const invalid: Json[] = [
    ['63 digits', digits.slice(0, 63), 'found 63'],
    ['65 digits', digits + '0', 'found 65'],
    ['empty', '', 'found 0'],
    ['letter g', 'g' + digits.slice(1), "invalid character 'g' (U+0067) at position 1"],
    [
      'letter O for zero',
      digits.slice(0, 4) + ' O' + digits.slice(5),
      "invalid character 'O' (U+004F) at position 6",
    ],
    [
      'no-break space',
      digits.slice(0, 4) + '\u00a0' + digits.slice(4),
      'invalid character U+00A0 at position 5',
    ],
    [
      'en dash',
      digits.slice(0, 4) + '\u2013' + digits.slice(4),
      'invalid character U+2013 at position 5',
    ],
    ['zero-width space', '\u200b' + digits, 'invalid character U+200B at position 1'],
    [
      'emoji (one code point, two UTF-16 units)',
      '\u{1F511}' + digits,
      'invalid character U+1F511 at position 1',
    ],
    [
      'underscore',
      digits.slice(0, 8) + '_' + digits.slice(8),
      "invalid character '_' (U+005F) at position 9",
    ],
    ['full-width digit', '\uff10' + digits.slice(1), 'invalid character U+FF10 at position 1'],
  ].map(([description, input, message]) => ({
    description: description as string,
    input: input as string,
    code: 'INVALID_KEY',
    messageIncludes: message as string,
  }));
  return {
    ...header(
      'The 64-digit key: parseBackupKey(input) gives `key` (hex of 32 bytes); formatBackupKey(key) of a valid vector with description "canonical form" gives `input`. Invalid inputs fail with code INVALID_KEY and a message containing `messageIncludes` (positions count code points from 1).',
    ),
    valid,
    invalid,
  };
}
