// `npm pack` of the device SDK (its prepack script): ship the byte-format spec and the docs
// the SDK's README links to, so the links work for an npm user. Copied, not committed: the
// repository keeps one copy at its root.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = process.cwd();
rmSync(join(pkg, 'docs'), { recursive: true, force: true });
mkdirSync(join(pkg, 'docs'));
for (const f of ['ARCHITECTURE.md', 'THREAT_MODEL.md', 'API.md']) {
  try {
    cpSync(join(root, 'docs', f), join(pkg, 'docs', f));
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
}
cpSync(join(root, 'SPEC.md'), join(pkg, 'SPEC.md'));
cpSync(join(root, 'CHANGELOG.md'), join(pkg, 'CHANGELOG.md'));
