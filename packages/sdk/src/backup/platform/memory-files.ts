/**
 * A file tree in memory (platform/types.ts: EngineFiles): the engine backs it up and
 * restores into it exactly as it does a disk. For tests, and for apps that hand the engine
 * bytes rather than paths (a phone app exporting its database and media). POSIX semantics
 * where the engine relies on them: `rename` replaces a file or an empty directory and fails
 * with ENOTEMPTY over a non-empty one, `mkdir` fails with EEXIST, `create` with EEXIST,
 * symlinks are never followed by `lstat`/`readdir`/`rm`. Errors carry errno codes.
 *
 * Paths are POSIX (`/`-separated); relative paths are taken from `/`.
 */
import { posixPath } from './posix-path.js';
import type {
  DirName,
  EngineFiles,
  EngineHost,
  EntryInfo,
  SourceReader,
  TargetFile,
  TargetFiles,
  TargetWriter,
} from './types.js';

interface Meta {
  mode: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}
interface FileNode extends Meta {
  kind: 'file';
  buf: Uint8Array;
  size: number;
}
interface DirNode extends Meta {
  kind: 'dir';
  children: Map<string, Node>;
}
interface LinkNode extends Meta {
  kind: 'symlink';
  target: string;
}
type Node = FileNode | DirNode | LinkNode;

function fail(code: string, op: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${op} '${path}'`), { code });
}

/** What {@link MemoryFiles.list} gives for each entry. */
export type MemoryEntry =
  | { path: string; kind: 'file'; mode: number; mtimeNs: bigint; data: Uint8Array }
  | { path: string; kind: 'dir'; mode: number; mtimeNs: bigint }
  | { path: string; kind: 'symlink'; mode: number; mtimeNs: bigint; target: string };

/** A host for engines without processes (one app, one process): see EngineHost. */
export function memoryHost(opts: { hostname?: string; pid?: number } = {}): EngineHost {
  return {
    hostname: () => opts.hostname ?? 'app',
    pid: opts.pid ?? 1,
    // Another pid on this host is taken as alive: its leftovers are never removed.
    isProcessAlive: () => true,
  };
}

export class MemoryFiles implements EngineFiles {
  readonly path = posixPath;
  private readonly root: DirNode;
  private nextIno = 1n;
  private readonly open = new Map<number, FileNode>();
  private nextHandle = 1;
  readonly out: TargetFiles;

  constructor(private readonly clock: () => bigint = () => BigInt(Date.now()) * 1_000_000n) {
    this.root = this.dirNode(0o755);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.out = {
      path: posixPath,
      readdir: async (p) => [...this.dir(p, 'scandir').children.keys()],
      lstat: async (p) => this.lstat(p),
      async readFile(p) {
        const n = self.lookup(p, 'open');
        if (n.kind === 'dir') throw fail('EISDIR', 'read', p);
        if (n.kind !== 'file') throw fail('EINVAL', 'read', p);
        return n.buf.slice(0, n.size);
      },
      mkdir: async (p, opts) => this.mkdir(p, opts),
      writeNewFile: async (p, data) => {
        const f = this.createFile(p, 0o600);
        this.setData(f, data);
      },
      writeFileAtomic: async (p, data) => {
        const { parent, name } = this.parentOf(p, 'open');
        const old = parent.children.get(name);
        if (old?.kind === 'dir') throw fail('EISDIR', 'open', p);
        const f = this.fileNode(0o600);
        this.setData(f, data);
        parent.children.set(name, f);
      },
      create: async (p): Promise<TargetFile> => {
        const f = this.createFile(p, 0o600);
        const handle = this.nextHandle++;
        this.open.set(handle, f);
        return {
          handle,
          finish: async (mode, mtimeNs) => {
            f.mode = mode & 0o7777;
            f.mtimeNs = mtimeNs;
            this.open.delete(handle);
          },
          close: async () => {
            this.open.delete(handle);
          },
        };
      },
      symlink: async (target, p, mtimeNs) => {
        const { parent, name } = this.parentOf(p, 'symlink');
        if (parent.children.has(name)) throw fail('EEXIST', 'symlink', p);
        parent.children.set(name, { kind: 'symlink', target, ...this.meta(0o777), mtimeNs });
      },
      setMeta: async (p, mode, mtimeNs) => {
        const n = this.lookup(p, 'chmod');
        n.mode = mode & 0o7777;
        n.mtimeNs = mtimeNs;
      },
      sync: async (p) => {
        this.lookup(p, 'open');
      },
      rename: async (from, to) => this.rename(from, to),
      rmdir: async (p) => {
        const { parent, name } = this.parentOf(p, 'rmdir');
        const n = parent.children.get(name);
        if (!n) throw fail('ENOENT', 'rmdir', p);
        if (n.kind !== 'dir') throw fail('ENOTDIR', 'rmdir', p);
        if (n.children.size > 0) throw fail('ENOTEMPTY', 'rmdir', p);
        parent.children.delete(name);
      },
      rm: async (p) => {
        try {
          const { parent, name } = this.parentOf(p, 'rm');
          parent.children.delete(name);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOENT') throw e;
        }
      },
    };
  }

  private meta(mode: number): Meta {
    const now = this.clock();
    return { mode: mode & 0o7777, mtimeNs: now, ctimeNs: now, ino: this.nextIno++ };
  }
  private dirNode(mode: number): DirNode {
    return { kind: 'dir', children: new Map(), ...this.meta(mode) };
  }
  private fileNode(mode: number): FileNode {
    return { kind: 'file', buf: new Uint8Array(0), size: 0, ...this.meta(mode) };
  }
  private setData(f: FileNode, data: Uint8Array): void {
    f.buf = data.slice();
    f.size = data.length;
    f.mtimeNs = f.ctimeNs = this.clock();
  }

  private parts(p: string): string[] {
    return posixPath.resolve(p).split('/').filter(Boolean);
  }

  /**
   * The node at `p`, following symlinks on the way but not at the end (lstat's rule). Not
   * following them on the way either, a source given through a symlink (`/home/chat`, to
   * `/data/chat`) lost every entry as "vanished".
   */
  private lookup(p: string, op: string): Node {
    const segs = this.parts(p);
    const last = segs.pop();
    if (last === undefined) return this.root;
    const parent = this.follow('/' + segs.join('/'), op);
    if (parent.kind !== 'dir') throw fail('ENOTDIR', op, p);
    const c = parent.children.get(last);
    if (!c) throw fail('ENOENT', op, p);
    return c;
  }

  /** The node at `p`, following symlinks on the way and at the end. */
  private follow(p: string, op: string, hops = 0): Node {
    if (hops > 40) throw fail('ELOOP', op, p);
    let n: Node = this.root;
    const segs = this.parts(p);
    for (let i = 0; i < segs.length; i++) {
      if (n.kind !== 'dir') throw fail('ENOTDIR', op, p);
      const c: Node | undefined = n.children.get(segs[i] as string);
      if (!c) throw fail('ENOENT', op, p);
      if (c.kind === 'symlink') {
        const base = '/' + segs.slice(0, i).join('/');
        const rest = segs.slice(i + 1).join('/');
        const t = posixPath.resolve(
          c.target.startsWith('/') ? c.target : posixPath.join(base, c.target),
        );
        return this.follow(rest ? posixPath.join(t, rest) : t, op, hops + 1);
      }
      n = c;
    }
    return n;
  }

  private dir(p: string, op: string): DirNode {
    const n = this.follow(p, op);
    if (n.kind !== 'dir') throw fail('ENOTDIR', op, p);
    return n;
  }

  private parentOf(p: string, op: string): { parent: DirNode; name: string } {
    const segs = this.parts(p);
    const name = segs.pop();
    if (name === undefined) throw fail('EBUSY', op, p);
    return { parent: this.dir('/' + segs.join('/'), op), name };
  }

  private createFile(p: string, mode: number): FileNode {
    const { parent, name } = this.parentOf(p, 'open');
    if (parent.children.has(name)) throw fail('EEXIST', 'open', p);
    const f = this.fileNode(mode);
    parent.children.set(name, f);
    parent.mtimeNs = this.clock();
    return f;
  }

  private mkdir(p: string, opts: { mode: number; recursive?: boolean }): void {
    if (opts.recursive) {
      let n: DirNode = this.root;
      for (const s of this.parts(p)) {
        let c = n.children.get(s);
        if (!c) {
          c = this.dirNode(opts.mode);
          n.children.set(s, c);
        }
        if (c.kind === 'symlink') c = this.follow(posixPath.resolve(p), 'mkdir');
        if (c.kind !== 'dir') throw fail('ENOTDIR', 'mkdir', p);
        n = c;
      }
      return;
    }
    const { parent, name } = this.parentOf(p, 'mkdir');
    if (parent.children.has(name)) throw fail('EEXIST', 'mkdir', p);
    parent.children.set(name, this.dirNode(opts.mode));
    parent.mtimeNs = this.clock();
  }

  private rename(from: string, to: string): void {
    const a = this.parentOf(from, 'rename');
    const n = a.parent.children.get(a.name);
    if (!n) throw fail('ENOENT', 'rename', from);
    const b = this.parentOf(to, 'rename');
    const there = b.parent.children.get(b.name);
    if (there === n) return;
    if (n.kind === 'dir') {
      // Never into itself.
      const fp = posixPath.resolve(from);
      if ((posixPath.resolve(to) + '/').startsWith(fp + '/')) throw fail('EINVAL', 'rename', to);
    }
    if (there) {
      if (there.kind === 'dir' && n.kind !== 'dir') throw fail('EISDIR', 'rename', to);
      if (there.kind !== 'dir' && n.kind === 'dir') throw fail('ENOTDIR', 'rename', to);
      if (there.kind === 'dir' && there.children.size > 0) throw fail('ENOTEMPTY', 'rename', to);
    }
    a.parent.children.delete(a.name);
    b.parent.children.set(b.name, n);
    n.ctimeNs = this.clock();
  }

  // SourceFiles

  async readdir(p: string): Promise<DirName[]> {
    return [...this.dir(p, 'scandir').children.keys()].map((name) => ({ name }));
  }

  async lstat(p: string): Promise<EntryInfo> {
    const n = this.lookup(p, 'lstat');
    return {
      kind: n.kind,
      mode: n.mode,
      size: BigInt(n.kind === 'file' ? n.size : n.kind === 'symlink' ? n.target.length : 0),
      mtimeNs: n.mtimeNs,
      ctimeNs: n.ctimeNs,
      ino: n.ino,
    };
  }

  async readlink(p: string): Promise<string> {
    const n = this.lookup(p, 'readlink');
    if (n.kind !== 'symlink') throw fail('EINVAL', 'readlink', p);
    return n.target;
  }

  private file(p: string): FileNode {
    const n = this.follow(p, 'open');
    if (n.kind === 'dir') throw fail('EISDIR', 'read', p);
    if (n.kind !== 'file') throw fail('EINVAL', 'read', p);
    return n;
  }

  async read(p: string, position: number, length: number): Promise<Uint8Array> {
    const f = this.file(p);
    return f.buf.slice(Math.min(position, f.size), Math.min(f.size, position + length));
  }

  openRead(p: string): SourceReader {
    const f = this.file(p);
    return {
      readInto(buf, at, length, position) {
        if (position >= f.size) return 0;
        const n = Math.min(length, f.size - position);
        buf.set(f.buf.subarray(position, position + n), at);
        return n;
      },
      close() {},
    };
  }

  writer(handle: number): TargetWriter {
    const f = this.open.get(handle);
    if (!f) throw fail('EBADF', 'write', String(handle));
    return {
      writeAt: (data, position) => {
        const end = position + data.length;
        if (end > f.buf.length) {
          const grown = new Uint8Array(Math.max(end, f.buf.length * 2));
          grown.set(f.buf.subarray(0, f.size));
          f.buf = grown;
        }
        f.buf.set(data, position);
        if (end > f.size) f.size = end;
        f.mtimeNs = f.ctimeNs = this.clock();
      },
    };
  }

  // Building and reading trees (apps and tests).

  /** Create or replace the file at `path` (parents are created). */
  writeFile(path: string, data: Uint8Array, opts: { mode?: number; mtimeNs?: bigint } = {}): void {
    this.mkdir(posixPath.dirname(posixPath.resolve(path)), { mode: 0o755, recursive: true });
    const { parent, name } = this.parentOf(path, 'open');
    const old = parent.children.get(name);
    if (old?.kind === 'dir') throw fail('EISDIR', 'open', path);
    const f = this.fileNode(opts.mode ?? 0o644);
    this.setData(f, data);
    if (opts.mtimeNs !== undefined) f.mtimeNs = opts.mtimeNs;
    parent.children.set(name, f);
  }

  /** Create a directory and its parents. */
  mkdirp(path: string, mode = 0o755): void {
    this.mkdir(path, { mode, recursive: true });
  }

  /** Create a symlink (parents are created). */
  symlink(target: string, path: string): void {
    this.mkdir(posixPath.dirname(posixPath.resolve(path)), { mode: 0o755, recursive: true });
    const { parent, name } = this.parentOf(path, 'symlink');
    if (parent.children.has(name)) throw fail('EEXIST', 'symlink', path);
    parent.children.set(name, { kind: 'symlink', target, ...this.meta(0o777) });
  }

  /** The bytes of the file at `path`. */
  readFile(path: string): Uint8Array {
    const f = this.file(path);
    return f.buf.slice(0, f.size);
  }

  /** Every entry below `dir` (relative paths, sorted), for comparing trees. */
  list(dir = '/'): MemoryEntry[] {
    const out: MemoryEntry[] = [];
    const walk = (d: DirNode, rel: string): void => {
      for (const name of [...d.children.keys()].sort()) {
        const n = d.children.get(name) as Node;
        const path = rel ? `${rel}/${name}` : name;
        if (n.kind === 'file')
          out.push({
            path,
            kind: 'file',
            mode: n.mode,
            mtimeNs: n.mtimeNs,
            data: n.buf.slice(0, n.size),
          });
        else if (n.kind === 'symlink')
          out.push({ path, kind: 'symlink', mode: n.mode, mtimeNs: n.mtimeNs, target: n.target });
        else {
          out.push({ path, kind: 'dir', mode: n.mode, mtimeNs: n.mtimeNs });
          walk(n, path);
        }
      }
    };
    walk(this.dir(dir, 'scandir'), '');
    return out;
  }
}
