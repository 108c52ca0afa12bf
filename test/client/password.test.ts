/** Password rules (refusals) and the strength estimate (warnings). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MIN_PASSWORD_LENGTH,
  STRONG_PASSWORD_BITS,
  checkPassword,
  normalizePassword,
} from '#sdk/client/password.js';
import { WeakPasswordError } from '#sdk/errors.js';

function refused(password: string): WeakPasswordError {
  let caught: unknown;
  try {
    checkPassword(password);
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught instanceof WeakPasswordError,
    `expected a refusal for a ${password.length}-char password`,
  );
  assert.equal(caught.code, 'WEAK_PASSWORD');
  if (password !== '') {
    assert.ok(!caught.message.includes(password), 'the message never contains the password');
  }
  return caught;
}

test('at least 6 characters with at least one letter, as WhatsApp', () => {
  assert.equal(MIN_PASSWORD_LENGTH, 6);
  assert.match(refused('ab1').message, /too short/);
  assert.match(refused('abcd5').message, /too short/);
  assert.match(refused('123456789').message, /letter/);
  assert.match(refused('!!!!????').message, /letter/);
  refused('');
  assert.doesNotThrow(() => checkPassword('zq7Lp2'));
  assert.doesNotThrow(() => checkPassword('1234a6'));
});

test('letters and lengths are Unicode-aware (code points after NFC)', () => {
  assert.doesNotThrow(() => checkPassword('пароль'));
  assert.doesNotThrow(() => checkPassword('密码密码密码'));
  // Five emoji and a letter: six code points although `.length` is 11.
  assert.doesNotThrow(() => checkPassword('😀😀😀😀😀a'));
  refused('😀😀😀😀😀😀');
  // "é" typed as one code point or as e + combining accent is the same password.
  const composed = 'caf\u00e9s1';
  const decomposed = 'cafe\u0301s1';
  assert.equal(normalizePassword(composed), normalizePassword(decomposed));
  assert.equal(checkPassword(decomposed).estimatedBits, checkPassword(composed).estimatedBits);
});

test('common and patterned passwords pass the rule but get a warning', () => {
  for (const weak of [
    'password',
    'Password1!',
    'qwerty123',
    'abcdef',
    'iloveyou',
    'aaaaaa1',
    'abcdefgh12',
  ]) {
    const r = checkPassword(weak);
    assert.ok(r.warning, `${weak} should warn`);
    // (`password` itself is a word of every warning.)
    if (weak !== 'password') assert.ok(!r.warning.includes(weak), 'the warning never quotes it');
    assert.ok(r.estimatedBits < STRONG_PASSWORD_BITS);
  }
  assert.match(checkPassword('password').warning ?? '', /most common/);
});

test('long or varied passwords get no warning, and the estimate grows with length', () => {
  for (const strong of [
    'correct horse battery staple',
    'Tr0ub4dor&3-Kx9!mQ',
    'vnzq8t-rpw2xk-lb4mh',
  ]) {
    const r = checkPassword(strong);
    assert.equal(r.warning, undefined, `${strong} should not warn (${r.estimatedBits} bits)`);
    assert.ok(r.estimatedBits >= STRONG_PASSWORD_BITS);
  }
  assert.ok(checkPassword('xq7vbm').estimatedBits < checkPassword('xq7vbmkw3zpr').estimatedBits);
});
