/**
 * The vault password as a protection. Everything with the password happens here, in the
 * page, with the SDK's OPAQUE client: the server sees OPAQUE messages (relayed by the local
 * server), never the password.
 */
import { formatBackupKey, parseBackupKey } from 'backvault/format';
import { LockedError, NotFoundError, WrongPasswordError } from 'backvault/errors';
import { errorView, vaultClient } from '../api.js';
import { h, replace } from '../dom.js';
import { plural } from '../format.js';
import { newPasswordForm } from '../password-form.js';
import type { ProtectionMethod } from './types.js';

/** The lockout screen: the key is gone from the vault; only the 64-digit key restores. */
export function lockoutView(account: string): HTMLElement {
  return h(
    'section',
    { class: 'lockout', role: 'alert', 'aria-labelledby': 'lockout-heading' },
    h('h3', { id: 'lockout-heading', tabindex: '-1' }, 'Password restore is locked'),
    h(
      'p',
      {},
      h('code', {}, 'LOCKED'),
      ` — too many wrong passwords for account ${account}: the vault destroyed the backup key for good.`,
    ),
    h('p', {}, 'Your backups can still be restored with the 64-digit key, if you wrote it down.'),
  );
}

/** `password` */
export const passwordMethod: ProtectionMethod = {
  id: 'password',
  title: 'Password',
  summary:
    'A password you can remember. The backup key is kept at the vault, sealed so that only your password opens it; too many wrong tries destroy it.',
  unavailable: (state) =>
    state.vault
      ? undefined
      : 'No vault is configured: start backvault ui with --vault URL and --account ID.',

  renderEnable(host, ctx) {
    const account = ctx.state.vault?.account ?? '';
    replace(
      host,
      h(
        'p',
        {},
        `The password protects the key at ${ctx.state.vault?.url ?? 'the vault'} (account ${account}). It never leaves this page.`,
      ),
      newPasswordForm({
        submitLabel: 'Turn on backup with this password',
        userInputs: [account],
        async onSubmit(password) {
          const p = await ctx.start();
          const first = vaultClient(ctx.state.device?.serverPublicKey ?? undefined);
          const info = await first.info();
          const vault = vaultClient(info.serverPublicKey);
          const r = await vault.enable({ password, backupKey: parseBackupKey(p.backupKey) });
          await ctx.finish({
            pendingId: p.pendingId,
            protection: 'password',
            serverPublicKey: r.serverPublicKey,
          });
        },
      }),
    );
  },

  renderRestore(host, ctx) {
    const account = ctx.state.vault?.account ?? '';
    const status = h('p', { class: 'attempts', id: 'attempts-left', 'aria-live': 'polite' });
    const out = h('div', { 'aria-live': 'assertive' });
    const input = h('input', {
      type: 'password',
      id: 'restore-password',
      autocomplete: 'current-password',
      'aria-describedby': 'attempts-left',
    });
    const button = h('button', { type: 'submit' }, 'Restore with my password');
    let pinned: string | undefined;
    let left = 0;

    const showLeft = (): void => {
      status.textContent = `${plural(left, 'attempt')} left.`;
      status.className = left === 1 ? 'attempts alert warn' : 'attempts';
      if (left === 1) {
        status.append(
          ' This is the last one: if it is wrong, the vault destroys the backup key for good.',
        );
      }
    };
    const locked = (): void => {
      replace(host, lockoutView(account));
      (host.querySelector('#lockout-heading') as HTMLElement | null)?.focus();
    };

    const form = h(
      'form',
      {
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void (async () => {
            replace(out);
            button.disabled = true;
            button.textContent = 'Checking…';
            try {
              const vault = vaultClient(pinned);
              const got = await vault.recoverWithHead({ password: input.value });
              input.value = '';
              // The vault's snapshot head goes along: the server refuses an older repository.
              await ctx.recovered(formatBackupKey(got.backupKey), 'password', {
                serverPublicKey: pinned,
                head: got.head,
              });
            } catch (e) {
              if (e instanceof WrongPasswordError) {
                left = e.attemptsLeft;
                if (left <= 0) return locked();
                showLeft();
                replace(
                  out,
                  h(
                    'div',
                    { class: 'alert error', role: 'alert' },
                    h(
                      'p',
                      {},
                      h('code', {}, 'WRONG_PASSWORD'),
                      ` — wrong password. ${plural(left, 'attempt')} left; each try counts.`,
                    ),
                  ),
                );
                input.select();
                input.focus();
              } else if (e instanceof LockedError) {
                return locked();
              } else {
                replace(out, errorView(e));
              }
            } finally {
              button.disabled = false;
              button.textContent = 'Restore with my password';
            }
          })();
        },
      },
      status,
      h('label', { for: 'restore-password' }, `Vault password for ${account}`),
      input,
      out,
      h('div', { class: 'row' }, button),
    );

    replace(host, h('p', { role: 'status' }, 'Asking the vault how many attempts are left…'));
    void (async () => {
      try {
        // Not a guess: the record's state and attempts left, before anything is typed.
        const info = await vaultClient().info();
        pinned = info.serverPublicKey;
        const s = await vaultClient(pinned).status();
        if (s.state === 'locked' || s.attemptsLeft <= 0) return locked();
        left = s.attemptsLeft;
        showLeft();
        replace(host, form);
      } catch (e) {
        if (e instanceof NotFoundError) {
          replace(
            host,
            errorView({
              code: 'NOT_FOUND',
              message: `the vault has no password-protected key for account ${account}`,
              hint: 'If password protection was turned off, restore with the 64-digit key.',
            }),
          );
        } else replace(host, errorView(e));
      }
    })();
  },
};
