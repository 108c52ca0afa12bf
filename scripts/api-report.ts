/**
 * The device SDK's public API, as reviewers see it: one API Extractor report per entry
 * point of package.json `exports` (docs/api/*.api.md, checked in), made from the compiled
 * .d.ts in packages/sdk/dist. A change to the public API changes a report, so it shows in review.
 *
 *   node dist/scripts/api-report.js           check: fails if a report is out of date
 *   node dist/scripts/api-report.js --update  rewrite the reports (`make api-report`)
 *
 * Also the API reference (docs/api/reference/*.md, checked in), rendered from API
 * Extractor's doc model (.tmp/api/*.api.json) by scripts/api-docs.ts. TSDoc and "forgotten export" findings are printed and fail
 * the check: a type the public API names but no entry point exports is a bug.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Extractor,
  ExtractorConfig,
  ExtractorLogLevel,
  type ExtractorMessage,
} from '@microsoft/api-extractor';
import { renderReference } from './api-docs.js';

/** The repository root (tests point it at a copy with BACKVAULT_API_ROOT). */
const ROOT = process.env.BACKVAULT_API_ROOT ?? fileURLToPath(new URL('../../', import.meta.url));
/** The device SDK's package (its package.json and compiled dist/). */
const PKG = join(ROOT, 'packages/sdk');
/** Exports that are not code. */
const NOT_CODE = new Set(['./package.json']);

/** An entry point of the device SDK: its subpath, report name and compiled .d.ts. */
export interface EntryPoint {
  readonly subpath: string;
  /** `backvault`, `backvault-format`, … (file names under docs/api/). */
  readonly name: string;
  /** What an app imports: `backvault`, `backvault/client`, … */
  readonly importPath: string;
  readonly dts: string;
}

/** The device SDK's entry points, from package.json `exports`. */
export async function entryPoints(): Promise<EntryPoint[]> {
  const pkg = JSON.parse(await readFile(join(PKG, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, string>;
  };
  return Object.entries(pkg.exports)
    .filter(([subpath]) => !NOT_CODE.has(subpath))
    .map(([subpath, js]) => ({
      subpath,
      name: subpath === '.' ? pkg.name : `${pkg.name}-${subpath.slice(2).replaceAll('/', '-')}`,
      importPath: subpath === '.' ? pkg.name : `${pkg.name}${subpath.slice(1)}`,
      dts: join(PKG, js.replace(/\.js$/, '.d.ts')),
    }));
}

function configFor(entry: EntryPoint): ExtractorConfig {
  return ExtractorConfig.prepare({
    configObjectFullPath: join(PKG, 'api-extractor.json'),
    packageJsonFullPath: join(PKG, 'package.json'),
    configObject: {
      projectFolder: PKG,
      mainEntryPointFilePath: entry.dts,
      compiler: {
        overrideTsconfig: {
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            lib: ['ES2023', 'DOM'],
            types: ['node'],
            strict: true,
            skipLibCheck: true,
          },
          files: [entry.dts],
        },
      },
      apiReport: {
        enabled: true,
        reportFileName: `${entry.name}.api.md`,
        reportFolder: join(ROOT, 'docs/api'),
        reportTempFolder: join(ROOT, '.tmp/api'),
      },
      docModel: { enabled: true, apiJsonFilePath: join(ROOT, `.tmp/api/${entry.name}.api.json`) },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      newlineKind: 'lf',
      messages: {
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
        extractorMessageReporting: {
          default: { logLevel: ExtractorLogLevel.Warning },
          // No @public/@beta tags in this project: everything exported is public.
          'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None },
          // Completeness (every member documented) is not enforced; wrong TSDoc is.
          'ae-undocumented': { logLevel: ExtractorLogLevel.None },
          'ae-forgotten-export': { logLevel: ExtractorLogLevel.Warning, addToApiReportFile: false },
        },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
      },
    },
  });
}

async function main(): Promise<void> {
  const update = process.argv.includes('--update');
  // `--entry ./errors`: only that entry point (tests).
  const only = process.argv.includes('--entry')
    ? process.argv[process.argv.indexOf('--entry') + 1]
    : undefined;
  await mkdir(join(ROOT, '.tmp/api'), { recursive: true });
  await mkdir(join(ROOT, 'docs/api/reference'), { recursive: true });
  const stale: string[] = [];
  let findings = 0;
  for (const entry of await entryPoints()) {
    if (only !== undefined && entry.subpath !== only) continue;
    const result = Extractor.invoke(configFor(entry), {
      localBuild: update,
      messageCallback: (m: ExtractorMessage) => {
        m.handled = true;
        if (m.logLevel === ExtractorLogLevel.None || m.logLevel === ExtractorLogLevel.Verbose)
          return;
        if (m.messageId.startsWith('console-')) {
          // API Extractor's own progress lines; its warnings (a missing folder) still show,
          // except "the report changed" (said below, with the make target).
          if (m.messageId === 'console-api-report-changed') return;
          if (m.logLevel === ExtractorLogLevel.Warning || m.logLevel === ExtractorLogLevel.Error)
            console.error(`${entry.name}: ${m.text}`);
          return;
        }
        findings++;
        const where = m.sourceFilePath
          ? `${m.sourceFilePath.replace(PKG, '')}:${m.sourceFileLine ?? 0}`
          : '';
        console.error(`${entry.name}: ${m.messageId} ${where} ${m.text}`);
      },
    });
    if (result.apiReportChanged) stale.push(`docs/api/${entry.name}.api.md`);
    if (result.errorCount > 0 && !result.apiReportChanged) findings++;
    // The reference page, from the doc model just written.
    const page = `docs/api/reference/${entry.name}.md`;
    const text = renderReference(join(ROOT, `.tmp/api/${entry.name}.api.json`), entry.importPath);
    const old = await readFile(join(ROOT, page), 'utf8').catch(() => undefined);
    if (old !== text) {
      stale.push(page);
      if (update) await writeFile(join(ROOT, page), text);
    }
  }
  if (update) {
    console.log(
      stale.length ? `updated ${stale.join(', ')}` : 'API reports are up to date (docs/api/)',
    );
  } else if (stale.length) {
    console.error(
      `The public API changed: ${stale.join(', ')} ${stale.length === 1 ? 'is' : 'are'} out of date.\n` +
        'If the change is intended, run `make api-report` and commit docs/api/ with it ' +
        '(reviewers see the API change in the diff; the reference follows the TSDoc).',
    );
    process.exitCode = 1;
  }
  if (findings > 0) {
    console.error(`${findings} API finding(s) above: fix the TSDoc or export the named type.`);
    process.exitCode = 1;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
