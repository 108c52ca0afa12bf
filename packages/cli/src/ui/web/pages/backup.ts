/** "Chat backup": protection in use, last backup and verification, snapshots, Back up now. */
import { api, errorView, type Job, type UiState } from '../api.js';
import { field, h, replace, svg } from '../dom.js';
import { formatBytes, formatTime, plural } from '../format.js';
import { followJob } from '../job-view.js';

interface Snapshot {
  id: string;
  seq: number;
  time: string;
  files: number;
  bytes: number;
  partial: boolean;
}

/** One snapshot's line of `backvault stats --json`. */
interface SnapshotStat {
  id: string;
  addedBytes: number;
}

/** One bar of the chart. */
interface Bar {
  seq: number;
  time: string;
  bytes: number;
}

/**
 * What the store holds after each snapshot: the running sum of what each one added
 * (`backvault stats`), so the chart shows the cloud's bill growing, not the chat's size.
 */
function storedOverTime(list: readonly Snapshot[], stats: readonly SnapshotStat[]): Bar[] {
  const added = new Map(stats.map((s) => [s.id, s.addedBytes]));
  let total = 0;
  return list.map((s) => {
    total += added.get(s.id) ?? 0;
    return { seq: s.seq, time: s.time, bytes: total };
  });
}

/** Bars over time (inline SVG, described for screen readers). */
function chart(list: readonly Bar[], what: string): Element {
  const W = 760;
  const H = 160;
  const pad = { l: 60, b: 24, t: 10, r: 10 };
  const max = Math.max(1, ...list.map((s) => s.bytes));
  // At most 60 units per bar: one snapshot is a bar, not a wall.
  const bw = Math.min(60, (W - pad.l - pad.r) / Math.max(1, list.length));
  const y = (v: number): number => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const label = `${what}, oldest first: ${list
    .map((s) => `#${s.seq} ${formatBytes(s.bytes)}`)
    .join(', ')}.`;
  return svg(
    'svg',
    { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label },
    svg('line', { class: 'axis', x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }),
    svg('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b }),
    svg('text', { x: 4, y: pad.t + 10 }, formatBytes(max)),
    svg('text', { x: 4, y: H - pad.b }, '0'),
    ...list.map((s, i) => {
      const x = pad.l + i * bw + bw * 0.15;
      return svg(
        'g',
        {},
        svg(
          'rect',
          {
            class: 'bar',
            x,
            y: y(s.bytes),
            width: Math.max(2, bw * 0.7),
            height: Math.max(1, H - pad.b - y(s.bytes)),
          },
          svg('title', {}, `#${s.seq}: ${formatBytes(s.bytes)} on ${formatTime(s.time)}`),
        ),
        svg('text', { x: x + bw * 0.35 - 6, y: H - 8 }, `#${s.seq}`),
      );
    }),
  );
}

function snapshotTable(list: readonly Snapshot[]): HTMLElement {
  return h(
    'table',
    {},
    h('caption', { class: 'visually-hidden' }, 'Snapshots, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Snapshot'),
        h('th', { scope: 'col' }, 'Made'),
        h('th', { scope: 'col', class: 'num' }, 'Files'),
        h('th', { scope: 'col', class: 'num' }, 'Size'),
      ),
    ),
    h(
      'tbody',
      {},
      ...[...list]
        .reverse()
        .map((s) =>
          h(
            'tr',
            {},
            h(
              'td',
              {},
              `#${s.seq} `,
              h('code', {}, s.id.slice(0, 8)),
              s.partial ? ' (partial)' : '',
            ),
            h('td', {}, formatTime(s.time)),
            h('td', { class: 'num' }, String(s.files)),
            h('td', { class: 'num' }, formatBytes(s.bytes)),
          ),
        ),
    ),
  );
}

/** Renders the page into `main`. */
export async function renderBackupPage(main: HTMLElement, state: UiState): Promise<void> {
  const d = state.device;
  if (!d) {
    replace(
      main,
      h('h1', {}, 'Chat backup'),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'setup-h' },
        h('h2', { id: 'setup-h' }, 'This device is not set up'),
        h(
          'p',
          {},
          'Backups are off. Choose how to protect them, or bring back a backup made on another device.',
        ),
        h(
          'div',
          { class: 'row' },
          h('a', { class: 'button', href: '/protect' }, 'Turn on end-to-end encrypted backup'),
          h('a', { href: '/restore' }, 'Restore on this device'),
        ),
      ),
    );
    return;
  }
  const protection =
    d.mode === 'password'
      ? `Password at ${d.vault ?? 'the vault'} (account ${d.account ?? ''}), and the 64-digit key`
      : '64-digit key';
  const jobHost = h('div', { 'aria-live': 'polite' });
  const snapsHost = h('div', {}, h('p', { role: 'status' }, 'Reading the snapshots…'));
  const folder = field('Chat folder to back up', {
    name: 'folder',
    value: state.defaults.folder ?? '',
    autocomplete: 'off',
  });
  const backupButton = h('button', { type: 'submit', id: 'backup-now' }, 'Back up now');

  const loadSnapshots = async (): Promise<void> => {
    try {
      const r = await api<{ snapshots: Snapshot[] }>('GET', '/api/snapshots');
      if (r.snapshots.length === 0) {
        replace(snapsHost, h('p', {}, 'No snapshots yet.'));
        return;
      }
      // The store's size needs every snapshot's trees read: a failure there costs the chart
      // its meaning, not the list.
      const stats = await api<{ snapshots: SnapshotStat[] }>('GET', '/api/stats').catch(
        () => undefined,
      );
      replace(
        snapsHost,
        ...(stats
          ? [
              h('h3', {}, 'Stored in the cloud over time'),
              chart(
                storedOverTime(r.snapshots, stats.snapshots),
                'Stored in the cloud after each snapshot',
              ),
            ]
          : [h('h3', {}, 'Size over time'), chart(r.snapshots, 'Size of each snapshot')]),
        h('h3', {}, plural(r.snapshots.length, 'snapshot')),
        snapshotTable(r.snapshots),
      );
    } catch (e) {
      replace(snapsHost, errorView(e));
    }
  };

  const showOutcome = async (done: Job): Promise<void> => {
    if (done.state === 'failed') replace(jobHost, errorView(done.error));
    else if (done.state === 'done') {
      const r = done.result ?? {};
      replace(
        jobHost,
        h(
          'div',
          { class: 'alert ok', role: 'status', 'data-job-id': done.id },
          h(
            'p',
            {},
            `Backed up: snapshot #${String(r.seq)} saved, ${formatBytes(Number(r.bytesRead ?? 0))} read, ${formatBytes(Number(r.bytesStoredNew ?? 0))} new data stored.`,
          ),
        ),
      );
    }
  };

  // The job runs in the server: after a reload the page finds it again (or its outcome).
  const attach = async (job: Job): Promise<void> => {
    backupButton.disabled = true;
    const done = job.state === 'running' ? await followJob(jobHost, job) : job;
    backupButton.disabled = false;
    await showOutcome(done);
    if (job.state === 'running' && done.state === 'done') {
      const s = await api<UiState>('GET', '/api/state');
      if (s.device) replace(facts, ...factRows(s.device, protection));
      await loadSnapshots();
    }
  };

  const facts = h('dl', { class: 'facts' }, ...factRows(d, protection));
  replace(
    main,
    h('h1', {}, 'Chat backup'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'status-h' },
      h('h2', { id: 'status-h' }, 'Status'),
      facts,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'now-h' },
      h('h2', { id: 'now-h' }, 'Back up now'),
      h(
        'form',
        {
          onsubmit: (ev: Event) => {
            ev.preventDefault();
            replace(jobHost);
            api<Job>('POST', '/api/backup', { folder: folder.input.value }).then(
              (job) => attach(job),
              (e: unknown) => replace(jobHost, errorView(e)),
            );
          },
        },
        folder.wrap,
        h('div', { class: 'row' }, backupButton),
      ),
      jobHost,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'snaps-h' },
      h('h2', { id: 'snaps-h' }, 'Snapshots'),
      snapsHost,
    ),
  );
  if (state.job?.kind === 'backup') void attach(state.job);
  await loadSnapshots();
}

function factRows(d: NonNullable<UiState['device']>, protection: string): HTMLElement[] {
  const lb = d.lastBackup;
  const lv = d.lastVerified;
  return [
    h('dt', {}, 'Protection'),
    h('dd', { id: 'fact-protection' }, protection),
    h('dt', {}, 'Stored at'),
    h('dd', {}, d.repo),
    h('dt', {}, 'Last backup'),
    h(
      'dd',
      { id: 'fact-last-backup' },
      lb ? `${formatTime(lb.time)} (snapshot #${lb.seq})` : 'None yet',
    ),
    h('dt', {}, 'Last verified'),
    h(
      'dd',
      {},
      lv
        ? `${formatTime(lv.time)} (snapshot #${lv.seq}): ${lv.ok ? 'restores, databases sound' : 'FAILED'}`
        : 'Never (run backvault verify --device DIR)',
    ),
  ];
}
