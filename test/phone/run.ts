/**
 * `make test-phone`: build the device SDK for Hermes, run it on the hermes binary and print
 * what ran (see build.ts and hermes-main.ts). Exits 1 when anything failed.
 */
import { runPhone } from './build.js';

const r = await runPhone();
for (const line of r.lines) console.log(line);
if (r.stderr.trim()) console.error(r.stderr.trim());
if (!r.ok) {
  console.error('make test-phone: FAILED');
  process.exit(1);
}
