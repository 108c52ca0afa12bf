/**
 * A passkey as a protection (SPEC.md §18, WebAuthn PRF), with the browser SDK of
 * src/client/passkey.ts. Everything with the passkey happens here, in the page: the
 * authenticator's PRF output is turned into the key-encryption key and used in this page
 * only. The local server gives the page the backup key to seal (the device holds it anyway)
 * and stores the sealed slot; on a new device it gives the repository's public slot bytes
 * and takes back the key the passkey opened, to restore as with the 64-digit key.
 *
 * The relying-party id is the page's host name: `localhost` (`backvault ui` prints its link
 * so; WebAuthn refuses an IP address). A passkey made here opens backups wherever the
 * settings screen is reached as localhost — with a synced passkey, on a new device too.
 */
import {
  createPasskeySlot,
  fromBase64url,
  openPasskeySlot,
  passkeySupport,
  toBase64url,
} from 'backvault/client';
import { PrfUnsupportedError } from 'backvault/errors';
import { formatBackupKey, fromHex, parseBackupKey } from 'backvault/format';
import { api, errorBody, errorView } from '../api.js';
import { h, replace } from '../dom.js';
import type { ProtectionMethod } from './types.js';

/** The methods a passkey-less user is sent to (their choice buttons carry `data-method`). */
const OTHERS = [
  { id: 'password', title: 'vault password' },
  { id: 'recovery-key', title: '64-digit key' },
] as const;

/**
 * PRF_UNSUPPORTED as a sentence, with buttons that open the other choices of the same page
 * (those that are offered here).
 */
export function noPrfView(e: unknown): HTMLElement {
  const b = errorBody(e);
  const offered = OTHERS.filter((o) => {
    const button = document.querySelector<HTMLButtonElement>(`button[data-method="${o.id}"]`);
    return button !== null && !button.disabled;
  });
  return h(
    'div',
    { class: 'alert error', role: 'alert', id: 'no-prf' },
    h(
      'p',
      {},
      h('code', {}, 'PRF_UNSUPPORTED'),
      ' — this browser or passkey cannot protect a backup: passkey protection needs the WebAuthn PRF extension, which it does not offer.',
    ),
    b.code === 'PRF_UNSUPPORTED' && b.message.includes('authenticator')
      ? h('p', {}, 'If a passkey was just made for it, it protects nothing; you may delete it.')
      : null,
    h(
      'p',
      {},
      offered.length > 0
        ? 'Use one of the other protections instead:'
        : 'Use the vault password or the 64-digit key instead.',
    ),
    offered.length > 0
      ? h(
          'div',
          { class: 'row' },
          ...offered.map((o) =>
            h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                onclick: () =>
                  document
                    .querySelector<HTMLButtonElement>(`button[data-method="${o.id}"]`)
                    ?.click(),
              },
              `Use the ${o.title}`,
            ),
          ),
        )
      : null,
  );
}

function isPrfUnsupported(e: unknown): boolean {
  return e instanceof PrfUnsupportedError || errorBody(e).code === 'PRF_UNSUPPORTED';
}

/** What the browser offers, as a view when it cannot do it (undefined when it may). */
async function unsupportedView(): Promise<HTMLElement | undefined> {
  const s = await passkeySupport();
  if (s.webauthn && s.prf !== 'no') return undefined;
  return noPrfView(new PrfUnsupportedError());
}

/** `passkey` */
/**
 * The button that asks for the passkey, with what the page says before it: checks first
 * what the browser offers; runs `act` on a click; on failure shows the error and offers the
 * button again — except without PRF, where trying again cannot help and the sentence (with
 * the other choices) replaces the button.
 */
function passkeyPrompt(
  host: HTMLElement,
  label: string,
  intro: string,
  act: () => Promise<void>,
): void {
  const out = h('div', { 'aria-live': 'polite' });
  const go = h('button', { type: 'button' }, label);
  go.addEventListener('click', () => {
    go.disabled = true;
    go.textContent = 'Waiting for your passkey…';
    replace(out);
    act().catch((e: unknown) => {
      if (isPrfUnsupported(e)) return replace(host, noPrfView(e));
      go.disabled = false;
      go.textContent = label;
      replace(out, errorView(e));
    });
  });
  replace(host, h('p', { role: 'status' }, 'Checking what this browser offers…'));
  void unsupportedView().then((no) => {
    if (no) return replace(host, no);
    replace(host, h('p', {}, intro), h('div', { class: 'row' }, go), out);
  });
}

export const passkeyMethod: ProtectionMethod = {
  id: 'passkey',
  title: 'Passkey',
  summary:
    'The passkey of your phone, computer or password manager: your fingerprint, face or screen lock opens the backup. Your passkey provider syncs it to a new device.',
  unavailable: () => undefined,

  renderEnable(host, ctx) {
    const existing = ctx.state.device !== null;
    // Kept across tries: a cancelled prompt is retried for the same setup (and repository).
    let setup: { pendingId: string; backupKey: string } | undefined;
    passkeyPrompt(
      host,
      existing ? 'Add a passkey' : 'Create a passkey and turn on backup',
      `Your browser asks for a passkey for ${location.hostname}. It derives a key that seals your backup key; that key never leaves this page, and only the sealed copy is stored with your backups.`,
      async () => {
        setup ??= await ctx.start('passkey');
        const prep = await api<{ repoId: string; rpName: string; userName: string }>(
          'POST',
          '/api/slots/prepare',
          { pendingId: setup.pendingId },
        );
        const backupKey = parseBackupKey(setup.backupKey);
        const created = await createPasskeySlot({
          backupKey,
          repoId: fromHex(prep.repoId),
          rpId: location.hostname,
          rpName: prep.rpName,
          userName: prep.userName,
        });
        backupKey.fill(0);
        await ctx.finish(
          { pendingId: setup.pendingId, protection: 'passkey', slot: toBase64url(created.slot) },
          `Passkey added: it opens your backups from now on (credential ${created.credentialId.slice(0, 8)}…).`,
        );
      },
    );
  },

  renderRestore(host, ctx) {
    passkeyPrompt(
      host,
      'Restore with my passkey',
      `Use the passkey you made for ${location.hostname} when you turned on backup (a passkey synced by your phone, computer or password manager works on this device too).`,
      async () => {
        const r = await api<{
          repoId: string;
          config: string;
          manifest: string | null;
          slots: string[];
        }>('POST', '/api/repository/passkey-slots', { repo: ctx.repo() });
        const opened = await openPasskeySlot({
          slots: r.slots.map((s) => fromBase64url(s, 'slot')),
          repoId: fromHex(r.repoId),
          rpId: location.hostname,
          verify: {
            config: fromBase64url(r.config, 'config'),
            manifest: r.manifest === null ? undefined : fromBase64url(r.manifest, 'manifest'),
          },
        });
        const formatted = formatBackupKey(opened.backupKey);
        opened.backupKey.fill(0);
        await ctx.recovered(formatted, 'passkey', { slot: toBase64url(opened.slot) });
      },
    );
  },
};
