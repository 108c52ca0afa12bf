/**
 * "Turn on end-to-end encrypted backup": choose a protection for a new device; on a set-up
 * device, the protections in use, add one, change the password, turn the password off.
 * The choices come from METHODS: a new protection appears here without touching this page.
 */
import { formatBackupKey, parseBackupKey } from 'backvault/format';
import { api, errorView, vaultClient, type UiState } from '../api.js';
import { field, h, replace } from '../dom.js';
import { plural } from '../format.js';
import { confirmGroup, keyView } from '../key-view.js';
import { METHODS } from '../methods/index.js';
import type { EnableContext, ProtectionMethod } from '../methods/types.js';
import { newPasswordForm } from '../password-form.js';

/** A key slot as `GET /api/slots` lists it (see `KeySlotSummary`). */
interface SlotView {
  readonly slotId: string;
  readonly kind: 'passkey' | 'recovery-key';
  readonly created: string;
  readonly status: string;
  readonly rpId?: string;
  readonly credentialId?: string;
}

/**
 * @param added on a set-up device: shows the page again with `done` announced (the new
 *   protection appears in the list).
 */
function enableContext(
  state: UiState,
  repoInput: () => string,
  host: HTMLElement,
  added?: (done: string) => Promise<void>,
): EnableContext {
  return {
    state,
    start: (protection) =>
      api('POST', '/api/enable/start', {
        repo: repoInput(),
        ...(protection ? { protection } : {}),
      }),
    async finish(body, done) {
      await api('POST', '/api/enable/finish', body);
      if (added && done) return added(done);
      replace(
        host,
        h(
          'div',
          { class: 'alert ok', role: 'status' },
          h('h3', { id: 'enabled-h', tabindex: '-1' }, 'End-to-end encrypted backup is on'),
          h('p', {}, 'Your chats are encrypted on this device before they are stored.'),
          h('p', {}, h('a', { href: '/' }, 'Go to Chat backup to make the first backup')),
        ),
      );
      (host.querySelector('#enabled-h') as HTMLElement | null)?.focus();
    },
  };
}

function choiceCards(
  state: UiState,
  methods: readonly ProtectionMethod[],
  verb: string,
  onChoose: (m: ProtectionMethod) => void,
): HTMLElement {
  return h(
    'div',
    { class: 'choices' },
    ...methods.map((m) => {
      const why = m.unavailable(state);
      const headingId = `choice-${m.id}`;
      return h(
        'section',
        { class: 'choice', 'aria-labelledby': headingId },
        h('h3', { id: headingId }, m.title),
        h('p', {}, m.summary),
        why ? h('p', { class: 'hint' }, why) : null,
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'data-method': m.id,
            disabled: why !== undefined,
            onclick: () => onChoose(m),
          },
          `${verb} ${m.title.toLowerCase()}`,
        ),
      );
    }),
  );
}

/** Renders the page into `main`. */
export async function renderProtectPage(main: HTMLElement, state: UiState): Promise<void> {
  if (!state.device) return renderNewDevice(main, state);
  return renderExistingDevice(main, state);
}

function renderNewDevice(main: HTMLElement, state: UiState): void {
  const flow = h('div', { id: 'flow' });
  const repo = field(
    'Where backups are stored',
    { name: 'repo', value: state.defaults.repo ?? '', autocomplete: 'off' },
    'A folder or an s3:// address. Only encrypted data is stored there.',
  );
  replace(
    main,
    h('h1', {}, 'Turn on end-to-end encrypted backup'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'where-h' },
      h('h2', { id: 'where-h' }, 'Storage'),
      repo.wrap,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'choose-h' },
      h('h2', { id: 'choose-h' }, 'Choose how to protect your backup'),
      h(
        'p',
        {},
        'Your backups are encrypted with a 256-bit key made on this device. Choose what protects that key.',
      ),
      choiceCards(state, METHODS, 'Use', (m) => {
        const ctx = enableContext(state, () => repo.input.value, flow);
        replace(
          flow,
          h('h3', { id: 'flow-h', tabindex: '-1' }, `Protect with a ${m.title.toLowerCase()}`),
        );
        const inner = h('div');
        flow.append(inner);
        m.renderEnable(inner, ctx);
        (flow.querySelector('#flow-h') as HTMLElement | null)?.focus();
      }),
      flow,
    ),
  );
}

async function renderExistingDevice(main: HTMLElement, state: UiState): Promise<void> {
  const d = state.device as NonNullable<UiState['device']>;
  const flow = h('div', { id: 'flow', 'aria-live': 'polite' });
  const inUse = new Set([d.mode, 'recovery-key']);
  const rerender = async (): Promise<void> => {
    const s = await api<UiState>('GET', '/api/state');
    await renderProtectPage(main, s);
  };
  /** The page again, with what just changed said in its flow area. */
  const announce = async (sentence: string): Promise<void> => {
    await rerender();
    const f = main.querySelector('#flow');
    if (!f) return;
    replace(
      f,
      h(
        'div',
        { class: 'alert ok', role: 'status' },
        h('p', { id: 'changed-msg', tabindex: '-1' }, sentence),
      ),
    );
    (f.querySelector('#changed-msg') as HTMLElement | null)?.focus();
  };

  const showKey = h('button', { type: 'button', class: 'secondary' }, 'Show the 64-digit key');
  showKey.addEventListener('click', () => {
    api<{ backupKey: string }>('POST', '/api/device-key').then(
      (k) => replace(flow, h('h3', {}, 'Your 64-digit key'), keyView(k.backupKey)),
      (e: unknown) => replace(flow, errorView(e)),
    );
  });
  const items: HTMLElement[] = [
    h(
      'li',
      { class: 'protection' },
      h('p', {}, h('strong', {}, '64-digit key'), ' — always opens your backups.'),
      h('div', { class: 'row' }, showKey),
    ),
  ];

  if (d.mode === 'password') {
    const attempts = h('span', { id: 'vault-attempts' }, 'checking attempts left…');
    void vaultClient(d.serverPublicKey ?? undefined)
      .status()
      .then(
        (s) =>
          (attempts.textContent =
            s.state === 'locked' || s.attemptsLeft <= 0
              ? 'LOCKED: the vault destroyed the key; change the password to protect it again'
              : `${plural(s.attemptsLeft, 'attempt')} of ${s.maxAttempts} left`),
        (e: unknown) => (attempts.textContent = `unknown (${(e as Error).message})`),
      );
    const change = h('button', { type: 'button', class: 'secondary' }, 'Change the password');
    change.addEventListener('click', () => {
      replace(
        flow,
        h('h3', { id: 'change-h', tabindex: '-1' }, 'Change the password'),
        newPasswordForm({
          submitLabel: 'Change the password',
          userInputs: [d.account ?? ''],
          async onSubmit(newPassword) {
            const k = await api<{ backupKey: string }>('POST', '/api/device-key');
            await vaultClient(d.serverPublicKey ?? undefined).changePassword({
              newPassword,
              backupKey: parseBackupKey(k.backupKey),
            });
            replace(
              flow,
              h(
                'div',
                { class: 'alert ok', role: 'status' },
                h(
                  'p',
                  {},
                  'Password changed: only the new password restores your backups from now on.',
                ),
              ),
            );
          },
        }),
      );
      (flow.querySelector('#change-h') as HTMLElement | null)?.focus();
    });
    const off = h('button', { type: 'button', class: 'danger' }, 'Turn off password protection');
    off.addEventListener('click', () => {
      api<{ backupKey: string }>('POST', '/api/device-key').then(
        (k) => {
          const key = formatBackupKey(parseBackupKey(k.backupKey));
          replace(
            flow,
            h('h3', { id: 'off-h', tabindex: '-1' }, 'Turn off password protection'),
            h(
              'p',
              {},
              'The vault deletes its copy of your key: a password will no longer restore these backups. They stay readable with this 64-digit key — write it down now.',
            ),
            keyView(key),
            confirmGroup(
              key,
              async () => {
                try {
                  await api('POST', '/api/disable');
                  await rerender();
                } catch (e) {
                  flow.append(errorView(e));
                }
              },
              'Turn off password protection',
            ),
          );
          (flow.querySelector('#off-h') as HTMLElement | null)?.focus();
        },
        (e: unknown) => replace(flow, errorView(e)),
      );
    });
    items.unshift(
      h(
        'li',
        { class: 'protection' },
        h(
          'p',
          {},
          h('strong', {}, 'Password'),
          ` at ${d.vault ?? ''} (account ${d.account ?? ''}): `,
          attempts,
          '.',
        ),
        h('div', { class: 'row' }, change, off),
      ),
    );
  }

  const list = h('ul', { id: 'protections', class: 'protections' }, ...items);
  const slotsNote = h('p', { role: 'status', class: 'hint' }, 'Looking for passkeys…');
  void api<{ slots: SlotView[] }>('GET', '/api/slots').then(
    (r) => {
      slotsNote.remove();
      const others =
        d.mode === 'password' ? 'your password and the 64-digit key' : 'the 64-digit key';
      for (const s of r.slots) list.append(slotItem(s, flow, others, announce));
    },
    (e: unknown) => replace(slotsNote, errorView(e)),
  );

  const addable = METHODS.filter((m) => !inUse.has(m.id));
  replace(
    main,
    h('h1', {}, 'End-to-end encrypted backup'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'inuse-h' },
      h('h2', { id: 'inuse-h' }, 'Protections in use'),
      h('p', {}, 'Any one of these restores your backups on a new device.'),
      list,
      slotsNote,
    ),
    addable.length > 0
      ? h(
          'section',
          { class: 'card', 'aria-labelledby': 'add-h' },
          h('h2', { id: 'add-h' }, 'Add a protection'),
          choiceCards(state, addable, 'Add', (m) => {
            const ctx = enableContext(state, () => d.repo, flow, announce);
            replace(
              flow,
              h('h3', { id: 'flow-h', tabindex: '-1' }, `Add a ${m.title.toLowerCase()}`),
            );
            const inner = h('div');
            flow.append(inner);
            m.renderEnable(inner, ctx);
            (flow.querySelector('#flow-h') as HTMLElement | null)?.focus();
          }),
        )
      : null,
    flow,
  );
}

function shortDate(iso: string): string {
  return new Date(iso).toLocaleDateString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
  });
}

/**
 * One key slot in the list: a passkey (short credential id, site, date) with its Remove
 * flow, or a recovery key added with `backvault key add`.
 */
function slotItem(
  s: SlotView,
  flow: HTMLElement,
  others: string,
  announce: (sentence: string) => Promise<void>,
): HTMLElement {
  const id = s.slotId.slice(0, 8);
  const broken =
    s.status === 'ok'
      ? null
      : h('span', { class: 'warn' }, ` (${s.status.toUpperCase()}: it does not open your backups)`);
  const cred = (s.credentialId ?? '').slice(0, 8);
  const passkey = s.kind === 'passkey';
  const name = passkey ? `passkey ${cred}… for ${s.rpId ?? ''}` : `added 64-digit key ${id}`;
  const remove = h(
    'button',
    { type: 'button', class: 'secondary', 'aria-label': `Remove ${name}` },
    'Remove',
  );
  remove.addEventListener('click', () => {
    const yes = h(
      'button',
      { type: 'button', class: 'danger' },
      passkey ? 'Remove this passkey' : 'Remove this key',
    );
    yes.addEventListener('click', () => {
      yes.disabled = true;
      api('POST', '/api/slots/remove', { slotId: s.slotId }).then(
        () =>
          announce(
            passkey
              ? `Passkey ${cred}… removed: it no longer opens your backups.`
              : `Added 64-digit key ${id} removed: it no longer opens your backups.`,
          ),
        (e: unknown) => {
          yes.disabled = false;
          flow.append(errorView(e));
        },
      );
    });
    replace(
      flow,
      h('h3', { id: 'remove-h', tabindex: '-1' }, `Remove ${name}`),
      h(
        'p',
        {},
        passkey
          ? `This passkey will no longer open your backups. They stay readable with ${others}. The passkey itself stays in your passkey manager; you may delete it there.`
          : `This key will no longer open your backups from now on. They stay readable with ${others}. Whoever used it before already learned the backup key: to lock them out for good, start a new backup with a new key.`,
      ),
      h(
        'div',
        { class: 'row' },
        yes,
        h(
          'button',
          { type: 'button', class: 'secondary', onclick: () => replace(flow) },
          'Keep it',
        ),
      ),
    );
    (flow.querySelector('#remove-h') as HTMLElement | null)?.focus();
  });
  return h(
    'li',
    { class: 'protection', 'data-slot': s.slotId },
    h(
      'p',
      {},
      ...(passkey
        ? [
            h('strong', {}, 'Passkey'),
            ` ${cred}… for ${s.rpId ?? ''}, added ${shortDate(s.created)}.`,
          ]
        : [
            h('strong', {}, 'Added 64-digit key'),
            ` — slot ${id}, added ${shortDate(s.created)} with backvault key add.`,
          ]),
      broken,
    ),
    h('div', { class: 'row' }, remove),
  );
}
