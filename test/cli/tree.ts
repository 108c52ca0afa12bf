/** Small source trees for CLI tests, and a byte-for-byte comparison of two trees. */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** Write a small chat-like tree: a "database", photos of random bytes, nested folders, an empty file. */
export async function makeTree(root: string, photoBytes = 256 * 1024): Promise<void> {
  await mkdir(join(root, 'Databases'), { recursive: true });
  await mkdir(join(root, 'Media', 'Images'), { recursive: true });
  await mkdir(join(root, 'Media', 'Empty'), { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 4000; i++) lines.push(`message ${i}: see you at the station at ${i % 24}:00`);
  await writeFile(join(root, 'Databases', 'msgstore.db'), lines.join('\n'));
  for (let i = 0; i < 3; i++) {
    await writeFile(join(root, 'Media', 'Images', `IMG-${i}.jpg`), randomBytes(photoBytes));
  }
  await writeFile(join(root, 'settings.json'), '{"theme":"dark"}\n', { mode: 0o600 });
  await writeFile(join(root, 'empty.txt'), '');
}

/** Path → `size:sha256:mode` of every file, and every directory, below root. */
export async function treeDigest(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    const full = join(e.parentPath, e.name);
    const rel = relative(root, full).split(sep).join('/');
    const st = await lstat(full);
    if (e.isDirectory()) out.set(rel, 'dir');
    else if (e.isFile()) {
      const hash = createHash('sha256')
        .update(await readFile(full))
        .digest('hex');
      out.set(rel, `${st.size}:${hash}:${(st.mode & 0o777).toString(8)}`);
    } else out.set(rel, 'other');
  }
  return out;
}

/** Every regular file below root with its size, largest first. */
export async function filesBySize(root: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.push({ path, size: (await lstat(path)).size });
  }
  return out.sort((a, b) => b.size - a.size);
}
