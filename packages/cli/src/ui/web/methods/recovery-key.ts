/** The 64-digit key as a protection: shown once in 16 groups, confirmed, typed to restore. */
import { parseBackupKey, formatBackupKey } from 'backvault/format';
import { errorView } from '../api.js';
import { h, replace } from '../dom.js';
import { confirmGroup, keyView } from '../key-view.js';
import type { ProtectionMethod } from './types.js';

/** `recovery-key` */
export const recoveryKeyMethod: ProtectionMethod = {
  id: 'recovery-key',
  title: '64-digit key',
  summary:
    'A key you write down or keep in a password manager. Nobody else holds it: if you lose it, nobody can restore your backups.',
  unavailable: () => undefined,

  renderEnable(host, ctx) {
    const out = h('div', { 'aria-live': 'polite' });
    const go = h('button', { type: 'button' }, 'Create my 64-digit key');
    go.addEventListener('click', () => {
      go.disabled = true;
      ctx.start().then(
        (p) => {
          replace(
            host,
            h('h3', { tabindex: '-1', id: 'key-heading' }, 'Your 64-digit backup key'),
            h(
              'p',
              {},
              'Write it down or save it in your password manager now. It is the only way to restore these backups.',
            ),
            keyView(p.backupKey),
            confirmGroup(
              p.backupKey,
              async () => {
                try {
                  await ctx.finish({ pendingId: p.pendingId, protection: 'recovery-key' });
                } catch (e) {
                  host.append(errorView(e));
                }
              },
              'Turn on backup',
            ),
          );
          (host.querySelector('#key-heading') as HTMLElement | null)?.focus();
        },
        (e: unknown) => {
          go.disabled = false;
          replace(out, errorView(e));
        },
      );
    });
    replace(
      host,
      h('p', {}, 'A new key is made on this computer and shown once.'),
      h('div', { class: 'row' }, go),
      out,
    );
  },

  renderRestore(host, ctx) {
    const id = 'restore-key';
    const input = h('textarea', {
      id,
      autocomplete: 'off',
      spellcheck: 'false',
      'aria-describedby': `${id}-hint`,
      rows: 3,
    });
    const out = h('div', { 'aria-live': 'polite' });
    const button = h('button', { type: 'submit' }, 'Restore with this key');
    const form = h(
      'form',
      {
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          let formatted: string;
          try {
            // The CLI's parser: spaces, dashes, line breaks and any case are fine.
            formatted = formatBackupKey(parseBackupKey(input.value));
          } catch (e) {
            replace(out, errorView(e));
            input.focus();
            return;
          }
          replace(out);
          button.disabled = true;
          ctx.recovered(formatted, 'recovery-key').catch((e: unknown) => {
            button.disabled = false;
            replace(out, errorView(e));
          });
        },
      },
      h('label', { for: id }, 'Your 64-digit backup key'),
      h(
        'p',
        { class: 'hint', id: `${id}-hint` },
        'Type or paste it as you wrote it down: spaces, dashes, line breaks and capital letters do not matter.',
      ),
      input,
      out,
      h('div', { class: 'row' }, button),
    );
    replace(host, form);
  },
};
