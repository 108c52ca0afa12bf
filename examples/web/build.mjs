// @ts-check
/** Bundles app.mjs and its backvault imports into dist/app.js, next to index.html. */
import { copyFile, mkdir } from 'node:fs/promises';
import { build } from 'esbuild';

await mkdir('dist', { recursive: true });
await build({
  entryPoints: ['app.mjs'],
  outfile: 'dist/app.js',
  bundle: true,
  format: 'esm',
  platform: 'browser', // a `node:` import anywhere in the graph fails the build
  target: 'es2022',
  minify: true,
  sourcemap: true,
});
await copyFile('index.html', 'dist/index.html');
console.log('built dist/index.html and dist/app.js');
