/**
 * Playwright (playwright-core) driving Debian's headless Chromium for the settings-screen
 * tests: the same binary and flags as test/browser/chromium.ts; axe-core for the
 * accessibility scan; screenshots under `.tmp/ui-screens/`.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { findChromium } from '../browser/chromium.js';
import type { UiProcess } from './ui-process.js';

/** Where the screenshots go (test artifacts; `make clean` removes them). */
export const SCREEN_DIR = fileURLToPath(new URL('../../../.tmp/ui-screens/', import.meta.url));

/** Headless Chromium as in test/browser/chromium.ts (root in CI, hence --no-sandbox). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
}

/** Everything a page said that a test may want to print on failure. */
export interface PageLog {
  readonly lines: string[];
}

/** A fresh context (no cookies, no storage: a new browser profile) and one page in it. */
export async function freshPage(
  browser: Browser,
): Promise<{ context: BrowserContext; page: Page; log: PageLog }> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  const log: PageLog = { lines: [] };
  page.on('console', (m) => log.lines.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.lines.push(`pageerror: ${e.message}`));
  return { context, page, log };
}

/** Opens the printed URL (token → cookie), then `path`; waits until the page has rendered. */
export async function openUi(page: Page, ui: UiProcess, path = '/'): Promise<void> {
  await page.goto(ui.url);
  if (path !== '/') await page.goto(`${ui.origin}${path}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
}

/** Navigates within the UI (the cookie is set) and waits for the render. */
export async function go(page: Page, ui: UiProcess, path: string): Promise<void> {
  await page.goto(`${ui.origin}${path}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
}

const AXE_SOURCE = readFileSync(fileURLToPath(import.meta.resolve('axe-core/axe.min.js')), 'utf8');

/** A violation as the test reports it. */
export interface A11yViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly targets: string[];
}

/**
 * Runs axe-core on the page as it is now (injected through DevTools, so the page's CSP is
 * untouched) and returns the serious and critical violations.
 */
export async function seriousViolations(page: Page): Promise<A11yViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const all = await page.evaluate(async () => {
    interface AxeResult {
      violations: {
        id: string;
        impact: string | null;
        help: string;
        nodes: { target: unknown[] }[];
      }[];
    }
    const axe = (window as unknown as { axe: { run(ctx: Document): Promise<AxeResult> } }).axe;
    const r = await axe.run(document);
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.map(String).join(' ')),
    }));
  });
  return all.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Saves a full-page screenshot as `.tmp/ui-screens/NAME.png`. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREEN_DIR, { recursive: true });
  const path = join(SCREEN_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
