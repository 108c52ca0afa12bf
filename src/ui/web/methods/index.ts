/**
 * The protections the pages offer, in this order. A passkey joins as one more entry
 * (`passkeyMethod` from `./passkey.js`, built on `src/client/passkey.ts`).
 */
import { passwordMethod } from './password.js';
import { recoveryKeyMethod } from './recovery-key.js';
import type { ProtectionMethod } from './types.js';

/** Every protection method, in display order. */
export const METHODS: readonly ProtectionMethod[] = [passwordMethod, recoveryKeyMethod];
