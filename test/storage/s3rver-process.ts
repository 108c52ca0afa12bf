/**
 * Launcher for the S3-compatible test server, run as its own process:
 *
 *   node s3rver-process.js --dir DIR [--port N] [--bucket NAME]...
 *
 * Listens on 127.0.0.1 (port 0 = ephemeral), creates the buckets, then prints one JSON
 * line `{"ready":true,"port":N}` on stdout. Exits on SIGTERM/SIGINT, and when its stdin
 * closes, so a test runner that dies cannot leave it behind.
 *
 * s3rver 3.7 is old; three of its bugs are worked around here so that tests see S3's
 * behaviour, not s3rver's:
 * - it resolves a PUT (and an UploadPart) before its file write has finished and writes
 *   objects in place, so a GET right after a PUT can read a short object: putObject and
 *   putPart are replaced by versions that wait and rename a complete temp file into place;
 * - a Range GET of a 0-byte object announces one byte and sends none (the client then
 *   waits for it): it is answered 416 InvalidRange, as S3 does;
 * - its ListObjectsV2 continuation tokens use DES, which OpenSSL 3 only offers with
 *   `node --openssl-legacy-provider` (s3-server.ts starts this script that way).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

interface StoredObject {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: Record<string, string>;
}

interface S3ObjectLike {
  size: number;
  range?: unknown;
  content: Readable | null;
}

interface FilesystemStoreLike {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(
    bucket: string,
    key: string,
    metadata: Record<string, string>,
    md5: string,
  ): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}

type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

const require = createRequire(import.meta.url);

/** Write `source` completely to `file` via a temp file; returns size and hex MD5. */
async function writeComplete(
  source: Buffer | Readable,
  file: string,
): Promise<{ size: number; md5: string }> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  const md5 = createHash('md5');
  let size = 0;
  try {
    await pipeline(
      Buffer.isBuffer(source) ? Readable.from([source]) : source,
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          md5.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      }),
      createWriteStream(temp),
    );
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  return { size, md5: md5.digest('hex') };
}

function patchStore(): void {
  const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as {
    prototype: FilesystemStoreLike & {
      putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
      putPart(
        bucket: string,
        uploadId: string,
        partNumber: number,
        content: Readable,
      ): Promise<{ size: number; md5: string }>;
      getObject(bucket: string, key: string, options?: object): Promise<S3ObjectLike | null>;
    };
  };
  const getObject = FilesystemStore.prototype.getObject;
  FilesystemStore.prototype.getObject = async function (
    this: FilesystemStoreLike,
    bucket,
    key,
    options,
  ) {
    const object = await getObject.call(this, bucket, key, options);
    if (
      object !== null &&
      object.range !== undefined &&
      object.size === 0 &&
      object.content !== null
    ) {
      object.content.destroy();
      object.content = null; // the controller answers 416 InvalidRange
    }
    return object;
  };
  FilesystemStore.prototype.putObject = async function putObject(
    this: FilesystemStoreLike,
    object: StoredObject,
  ) {
    const result = await writeComplete(
      object.content,
      this.getResourcePath(object.bucket, object.key, 'object'),
    );
    await this.putMetadata(object.bucket, object.key, object.metadata, result.md5);
    return result;
  };
  FilesystemStore.prototype.putPart = async function putPart(
    this: FilesystemStoreLike,
    bucket: string,
    uploadId: string,
    partNumber: number,
    content: Readable,
  ) {
    const partPath = path.join(
      this.getResourcePath(bucket, undefined, 'uploads'),
      uploadId,
      String(partNumber),
    );
    const result = await writeComplete(content, partPath);
    await writeFile(`${partPath}.md5`, result.md5);
    return result;
  };
}

function parseArgs(argv: string[]): { dir: string; port: number; buckets: string[] } {
  let dir: string | undefined;
  let port = 0;
  const buckets: string[] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    if (flag === '--dir') dir = value;
    else if (flag === '--port') port = Number(value);
    else if (flag === '--bucket') buckets.push(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  if (dir === undefined) throw new Error('--dir is required');
  return { dir, port, buckets };
}

async function main(): Promise<void> {
  const { dir, port, buckets } = parseArgs(process.argv.slice(2));
  patchStore();
  const S3rver = require('s3rver') as S3rverClass;
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory: dir,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const address = await server.run();
  const stop = (): void => {
    // Exit at once: open keep-alive connections would delay a graceful close.
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ ready: true, port: address.port })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`s3rver-process: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
