/**
 * The settings screen's entry module: reads the state from the local server and renders the
 * page named by the path. Runs in the browser only (no `node:` imports; see eslint.config.js).
 */
import { api, errorView, type UiState } from './api.js';
import { h, replace } from './dom.js';
import { renderBackupPage } from './pages/backup.js';
import { renderProtectPage } from './pages/protect.js';
import { renderRestorePage } from './pages/restore.js';

type Page = (main: HTMLElement, state: UiState) => Promise<void>;

/** Path → page. */
const PAGES: Readonly<Record<string, { title: string; render: Page }>> = {
  '/': { title: 'Chat backup', render: renderBackupPage },
  '/protect': { title: 'End-to-end encrypted backup', render: renderProtectPage },
  '/restore': { title: 'Restore on a new device', render: renderRestorePage },
};

async function main(): Promise<void> {
  const root = document.getElementById('main') as HTMLElement;
  const path = location.pathname;
  const page = PAGES[path] ?? PAGES['/'];
  if (!page) return;
  document.title = `${page.title} — backvault`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (a.getAttribute('href') === path) a.setAttribute('aria-current', 'page');
  }
  try {
    const state = await api<UiState>('GET', '/api/state');
    await page.render(root, state);
  } catch (e) {
    replace(root, h('h1', {}, page.title), errorView(e));
  }
  document.body.dataset.ready = 'true';
}

void main();
