/**
 * The 64-digit key on screen: 16 numbered groups, copy and download buttons, and the
 * "type group N" confirmation — used when the key is created, when password protection is
 * turned off, and when the user asks to see it.
 */
import { h } from './dom.js';

/** The 16 groups of a formatted key. */
export function keyGroups(formatted: string): string[] {
  return formatted.trim().split(/\s+/);
}

/** The key as a numbered list of groups, with copy and download buttons. */
export function keyView(formatted: string): HTMLElement {
  const groups = keyGroups(formatted);
  const status = h('p', { class: 'hint', role: 'status' });
  const copy = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: () => {
        navigator.clipboard.writeText(formatted).then(
          () => (status.textContent = 'Copied to the clipboard.'),
          () => (status.textContent = 'Copying is not allowed here: select the digits instead.'),
        );
      },
    },
    'Copy the key',
  );
  const download = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: () => {
        const blob = new Blob([`backvault backup key\n${formatted}\n`], { type: 'text/plain' });
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: 'backvault-key.txt' });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
        status.textContent = 'Saved as backvault-key.txt in your downloads.';
      },
    },
    'Download as a file',
  );
  return h(
    'div',
    { class: 'key' },
    h(
      'ol',
      { class: 'key-groups', 'aria-label': 'Your 64-digit backup key, in 16 groups' },
      ...groups.map((g, i) =>
        h('li', {}, h('span', { class: 'n', 'aria-hidden': 'true' }, `${i + 1}.`), g),
      ),
    ),
    h('div', { class: 'row' }, copy, download),
    status,
  );
}

/**
 * The confirmation: "type group N". Calls `onConfirmed` when the typed group matches
 * (spaces and case ignored), else shows what is wrong.
 */
export function confirmGroup(
  formatted: string,
  onConfirmed: () => Promise<void>,
  label = 'Confirm',
): HTMLElement {
  const groups = keyGroups(formatted);
  const n = 1 + ((crypto.getRandomValues(new Uint8Array(1))[0] as number) % groups.length);
  const expected = groups[n - 1] ?? '';
  const input = h('input', {
    type: 'text',
    id: 'confirm-group',
    autocomplete: 'off',
    spellcheck: 'false',
    inputmode: 'text',
    maxlength: 9,
    'aria-describedby': 'confirm-group-hint',
  });
  const problem = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, label);
  const form = h(
    'form',
    {
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const typed = input.value.replace(/[\s-]/g, '').toLowerCase();
        if (typed !== expected) {
          problem.replaceChildren(
            h(
              'p',
              { class: 'alert error', role: 'alert' },
              `That is not group ${n}. Check the key you wrote down and type group ${n} again.`,
            ),
          );
          input.focus();
          return;
        }
        button.disabled = true;
        problem.replaceChildren();
        onConfirmed().finally(() => {
          button.disabled = false;
        });
      },
    },
    h('label', { for: 'confirm-group' }, `Type group ${n} of the key`),
    h(
      'p',
      { class: 'hint', id: 'confirm-group-hint' },
      'This shows that you wrote the key down: without it nothing can restore your backups.',
    ),
    input,
    problem,
    h('div', { class: 'row' }, button),
  );
  form.dataset.group = String(n);
  return form;
}
