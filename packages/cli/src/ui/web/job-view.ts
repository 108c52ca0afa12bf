/**
 * A running backup or restore, followed by polling `GET /api/job`. The job runs in the local
 * server, so a reloaded page simply finds it again and re-attaches.
 */
import { api, type Job, type JobProgress } from './api.js';
import { h } from './dom.js';
import { formatBytes, formatSeconds } from './format.js';

const POLL_MS = 300;

function describe(p: JobProgress | undefined, kind: string): { pct?: number; text: string } {
  if (!p) return { text: `Starting the ${kind}…` };
  if (p.phase === 'scan') {
    return {
      text: `Looking at the folder: ${p.filesDone} files, ${formatBytes(p.bytesDone)} so far…`,
    };
  }
  const total = p.bytesTotal;
  const pct =
    total && total > 0 ? Math.min(100, Math.floor((p.bytesDone * 100) / total)) : undefined;
  const parts = [
    pct !== undefined ? `${pct} %` : undefined,
    total !== undefined
      ? `${formatBytes(p.bytesDone)} of ${formatBytes(total)}`
      : formatBytes(p.bytesDone),
    p.rate !== undefined ? `${formatBytes(p.rate)}/s` : undefined,
    p.etaSeconds !== undefined ? `about ${formatSeconds(p.etaSeconds)} left` : undefined,
  ].filter((x): x is string => x !== undefined);
  return { ...(pct !== undefined ? { pct } : {}), text: parts.join(' · ') };
}

/**
 * A progress bar bound to the server's job; resolves with the finished job.
 * @param job the job as last seen (from `/api/state` or the start call).
 */
export function followJob(host: HTMLElement, job: Job): Promise<Job> {
  const label = job.kind === 'backup' ? 'Backing up' : 'Restoring';
  const bar = h('progress', { id: 'job-progress', max: 100, 'aria-labelledby': 'job-label' });
  const text = h('p', { id: 'job-text', class: 'hint' });
  host.replaceChildren(
    h(
      'div',
      { class: 'job', 'data-job-id': job.id },
      h('p', { id: 'job-label' }, h('strong', {}, `${label}…`)),
      bar,
      text,
    ),
  );
  const paint = (j: Job): void => {
    const d = describe(j.progress, j.kind);
    if (d.pct !== undefined) bar.value = d.pct;
    else bar.removeAttribute('value');
    text.textContent = d.text;
  };
  paint(job);
  return new Promise((resolve) => {
    const tick = (): void => {
      api<{ job: Job | null }>('GET', '/api/job').then(
        ({ job: j }) => {
          if (!j || j.id !== job.id) return resolve(job);
          paint(j);
          if (j.state === 'running') setTimeout(tick, POLL_MS);
          else resolve(j);
        },
        () => setTimeout(tick, POLL_MS * 3),
      );
    };
    setTimeout(tick, POLL_MS);
  });
}
