/**
 * "Restore on a new device": where the backups are, which folder to restore into, then a
 * protection from METHODS gets the backup key back (in the page); the local server restores
 * with it and sets up this device. Progress, then what came back.
 */
import { api, errorView, type Job, type UiState } from '../api.js';
import { field, h, replace } from '../dom.js';
import { formatBytes, formatTime } from '../format.js';
import { followJob } from '../job-view.js';
import { METHODS } from '../methods/index.js';
import type { RestoreContext } from '../methods/types.js';

function doneView(job: Job): HTMLElement {
  const r = job.result ?? {};
  const files = Number(r.files ?? 0);
  const dirs = Number(r.dirs ?? 0);
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'done-h' },
    h('h2', { id: 'done-h', tabindex: '-1' }, 'Your chats are back'),
    h(
      'dl',
      { class: 'facts', id: 'restore-summary' },
      h('dt', {}, 'Restored into'),
      h('dd', {}, String(r.target ?? '')),
      h('dt', {}, 'Snapshot'),
      h('dd', {}, `#${String(r.seq)} (${String(r.snapshotId ?? '').slice(0, 8)})`),
      h('dt', {}, 'Files'),
      h('dd', { id: 'restored-files' }, `${files} files in ${dirs} folders`),
      h('dt', {}, 'Size'),
      h('dd', {}, `${formatBytes(Number(r.bytes ?? 0))}, every byte verified`),
      h('dt', {}, 'Finished'),
      h('dd', {}, job.finishedAt ? formatTime(job.finishedAt) : ''),
    ),
    h(
      'p',
      {},
      'This device is now set up and keeps backing up. ',
      h('a', { href: '/' }, 'Go to Chat backup'),
    ),
  );
}

/** Renders the page into `main`. */
export async function renderRestorePage(main: HTMLElement, state: UiState): Promise<void> {
  const progressHost = h('div', { 'aria-live': 'polite' });
  const follow = async (job: Job): Promise<void> => {
    replace(main, h('h1', {}, 'Restore on a new device'), progressHost);
    const done = await followJob(progressHost, job);
    if (done.state === 'done') {
      replace(main, h('h1', {}, 'Restore on a new device'), doneView(done));
      (main.querySelector('#done-h') as HTMLElement | null)?.focus();
    } else if (done.state === 'failed') {
      replace(progressHost, errorView(done.error));
    }
  };
  if (state.job?.kind === 'restore' && (state.job.state === 'running' || !state.device)) {
    if (state.job.state === 'running') return follow(state.job);
  }
  if (state.device) {
    if (state.job?.kind === 'restore' && state.job.state === 'done') {
      replace(main, h('h1', {}, 'Restore on a new device'), doneView(state.job));
      return;
    }
    replace(
      main,
      h('h1', {}, 'Restore on a new device'),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'This device is already set up'),
        h(
          'p',
          {},
          `It backs up to ${state.device.repo}. To restore on a new device, start backvault ui there with a new --device folder.`,
        ),
      ),
    );
    return;
  }
  const repo = field(
    'Where your backups are stored',
    { name: 'repo', value: state.defaults.repo ?? '', autocomplete: 'off' },
    'The same folder or s3:// address the old device backed up to.',
  );
  const folder = field(
    'Restore the chats into',
    { name: 'folder', value: state.defaults.folder ?? '', autocomplete: 'off' },
    'A new or empty folder on this computer.',
  );
  const flow = h('div', { id: 'flow' });
  const ctx: RestoreContext = {
    state,
    async recovered(backupKey, protection, extra = {}) {
      const job = await api<Job>('POST', '/api/restore', {
        ...extra,
        backupKey,
        protection,
        repo: repo.input.value,
        folder: folder.input.value,
      });
      await follow(job);
    },
    repo: () => repo.input.value,
  };
  replace(
    main,
    h('h1', {}, 'Restore on a new device'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'where-h' },
      h('h2', { id: 'where-h' }, 'From where, to where'),
      repo.wrap,
      folder.wrap,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'how-h' },
      h('h2', { id: 'how-h' }, 'How do you want to open your backup?'),
      h(
        'div',
        { class: 'choices' },
        ...METHODS.map((m) => {
          const why = m.unavailable(state);
          return h(
            'section',
            { class: 'choice', 'aria-labelledby': `restore-choice-${m.id}` },
            h('h3', { id: `restore-choice-${m.id}` }, `With your ${m.title.toLowerCase()}`),
            why ? h('p', { class: 'hint' }, why) : null,
            h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                'data-method': m.id,
                disabled: why !== undefined,
                onclick: () => {
                  replace(
                    flow,
                    h(
                      'h3',
                      { id: 'flow-h', tabindex: '-1' },
                      `Restore with your ${m.title.toLowerCase()}`,
                    ),
                  );
                  const inner = h('div');
                  flow.append(inner);
                  m.renderRestore(inner, ctx);
                  (flow.querySelector('#flow-h') as HTMLElement | null)?.focus();
                },
              },
              `Use my ${m.title.toLowerCase()}`,
            ),
          );
        }),
      ),
      flow,
    ),
  );
}
