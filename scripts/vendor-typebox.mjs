// Replace the device SDK's compiled vendor/typebox.js (a re-export of ~250 modules) with one
// esbuild bundle of the same exports: `import 'backvault'` loads one file instead of 250
// (packages/sdk/src/vendor/typebox.ts says why). Run after `tsc -b` (make build) and by the
// SDK's prepack, so the published tarball carries the bundle.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'packages/sdk/src/vendor/typebox.ts')],
  outfile: join(root, 'packages/sdk/dist/vendor/typebox.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  target: 'es2022',
  legalComments: 'inline',
  logLevel: 'warning',
  allowOverwrite: true,
});
// tsc's source map described the re-export, not the bundle.
await rm(join(root, 'packages/sdk/dist/vendor/typebox.js.map'), { force: true });
