/**
 * TypeBox, as the SDK loads it. The package's ESM build is ~250 small modules, and loading
 * them was most of `import 'backvault'` (issue 19: under 150 ms); `make build` and the
 * package's `prepack` replace this file's compiled output with one esbuild bundle of the same
 * exports (scripts/vendor-typebox.mjs), which loads in a tenth of the time. Only the two
 * values the SDK calls come from here; types are imported from `@sinclair/typebox` itself
 * (still a dependency), and so does every behaviour:
 * schemas carry TypeBox's global symbols, so a schema made here is checked by any copy.
 */
export { Type } from '@sinclair/typebox';
export { Value } from '@sinclair/typebox/value';
