/** The protections the pages offer, in this order. */
import { passkeyMethod } from './passkey.js';
import { passwordMethod } from './password.js';
import { recoveryKeyMethod } from './recovery-key.js';
import type { ProtectionMethod } from './types.js';

/** Every protection method, in display order. */
export const METHODS: readonly ProtectionMethod[] = [
  passwordMethod,
  passkeyMethod,
  recoveryKeyMethod,
];
