/**
 * One place that turns a `--repo` URL into a Storage.
 *
 * Accepted forms:
 * - a plain path, relative or absolute: a local directory ({@link LocalStorage});
 * - `file:///abs/path`: the same;
 * - `s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:9000&region=us-east-1`: an S3 bucket
 *   ({@link S3Storage}), wrapped in `withRetry` (`backvault/storage`). `endpoint` implies path-style URLs
 *   (override with `forcePathStyle=false`). Credentials come from the AWS environment
 *   variables, never from the URL.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../errors.js';
import { withRetry, type RetryOptions } from '../retry.js';
import type { Storage } from '../storage.js';
import { LocalStorage } from './local.js';
// Types only: the AWS SDK (~20 MB of memory) is loaded when an s3:// URL is opened.
import type { S3StorageOptions } from './s3.js';

/** Knobs for tests and embedders; the URL alone is enough for the CLI. */
export interface OpenStorageOptions {
  /** Retry policy for S3 (default: `withRetry` (`backvault/storage`) defaults); `false` for none. */
  retry?: RetryOptions | false;
  /** Extra S3 options (timeouts, part sizes, credentials); the URL's values win. */
  s3?: Partial<S3StorageOptions>;
}

const S3_PARAMS = new Set(['endpoint', 'region', 'forcePathStyle']);
/** S3 bucket naming rules (lowercase, 3–63 chars, no leading/trailing dot or dash). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9_.-]+$/;

/**
 * Open the store named by `url` (see the module comment). Nothing is created and no
 * request is made: the first write creates a local directory; an S3 bucket must exist.
 * @throws UsageError when the URL is malformed, has an unknown scheme or parameter,
 *   carries credentials, or names a local path that exists but is not a directory.
 */
export async function openStorage(url: string, options: OpenStorageOptions = {}): Promise<Storage> {
  if (url.trim() === '') throw new UsageError('the repository location is empty');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return openLocal(url);
  if (scheme === 'file') return openLocal(filePath(url));
  if (scheme === 's3') {
    const { S3Storage } = await import('./s3.js');
    const s3 = new S3Storage({ ...options.s3, ...parseS3Url(url) });
    return options.retry === false ? s3 : withRetry(s3, options.retry);
  }
  throw new UsageError(
    `unsupported repository URL scheme "${scheme}:"`,
    'Use a directory path, file:///absolute/path or s3://BUCKET/PREFIX?endpoint=…&region=….',
  );
}

/**
 * Parse `s3://BUCKET/PREFIX?endpoint=…&region=…&forcePathStyle=true|false` into the
 * matching {@link S3StorageOptions} (without credentials).
 * @throws UsageError on any malformed part.
 */
export function parseS3Url(url: string): S3StorageOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('malformed s3:// URL', 'Use s3://BUCKET/PREFIX?endpoint=…&region=….');
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // Never echo the URL here: it holds the secret.
    throw new UsageError(
      'credentials are not allowed in an s3:// URL',
      'Put them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead.',
    );
  }
  const bucket = parsed.hostname;
  if (parsed.port !== '' || !BUCKET.test(bucket) || bucket.includes('..')) {
    throw new UsageError(
      `invalid S3 bucket name "${bucket}${parsed.port === '' ? '' : `:${parsed.port}`}"`,
      'A bucket name has 3-63 lowercase letters, digits, dots or dashes. Give a server as ?endpoint=….',
    );
  }
  if (parsed.hash !== '') throw new UsageError('an s3:// URL cannot have a #fragment');
  const prefix = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
  if (
    prefix !== '' &&
    !prefix.split('/').every((s) => PREFIX_SEGMENT.test(s) && s !== '.' && s !== '..')
  ) {
    throw new UsageError(
      `invalid prefix in s3:// URL: "${prefix}"`,
      'Use letters, digits, "-", "_", "." and "/" separators.',
    );
  }
  for (const key of parsed.searchParams.keys()) {
    if (!S3_PARAMS.has(key)) {
      throw new UsageError(
        `unknown parameter "${key}" in s3:// URL`,
        'Known parameters: endpoint, region, forcePathStyle.',
      );
    }
  }
  const options: S3StorageOptions = { bucket, prefix };
  const endpoint = parsed.searchParams.get('endpoint');
  if (endpoint !== null) {
    let e: URL;
    try {
      e = new URL(endpoint);
    } catch {
      throw new UsageError('the endpoint of an s3:// URL must be an http:// or https:// URL');
    }
    if (e.protocol !== 'http:' && e.protocol !== 'https:') {
      throw new UsageError('the endpoint of an s3:// URL must be an http:// or https:// URL');
    }
    if (e.username !== '' || e.password !== '') {
      throw new UsageError(
        'credentials are not allowed in the endpoint URL',
        'Put them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead.',
      );
    }
    options.endpoint = endpoint;
    options.forcePathStyle = true;
  }
  const region = parsed.searchParams.get('region');
  if (region !== null) {
    if (!/^[a-z0-9-]{1,64}$/.test(region)) throw new UsageError(`invalid S3 region "${region}"`);
    options.region = region;
  }
  const pathStyle = parsed.searchParams.get('forcePathStyle');
  if (pathStyle !== null) {
    if (pathStyle !== 'true' && pathStyle !== 'false') {
      throw new UsageError('forcePathStyle in an s3:// URL must be true or false');
    }
    options.forcePathStyle = pathStyle === 'true';
  }
  return options;
}

function filePath(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('malformed file:// URL', 'Use file:///absolute/path.');
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new UsageError('a file:// URL cannot have ?query or #fragment');
  }
  if (parsed.hostname !== '' && parsed.hostname !== 'localhost') {
    throw new UsageError(
      `file:// URL names another host "${parsed.hostname}"`,
      'Use file:///absolute/path (three slashes) or a plain path.',
    );
  }
  try {
    return fileURLToPath(parsed);
  } catch {
    throw new UsageError('invalid file:// URL', 'Use file:///absolute/path.');
  }
}

async function openLocal(dir: string): Promise<Storage> {
  const root = path.resolve(dir);
  try {
    const info = await stat(root);
    if (!info.isDirectory()) {
      throw new UsageError(`repository path is not a directory: ${root}`, 'Give a directory path.');
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // A file on the way (`afile/repo`) is a mistake, not an outage to retry.
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new UsageError(
        `repository path is not a directory: ${await fileOnPath(root)} is a file`,
        'Give a directory path.',
      );
    }
    // Missing is fine (the first backup creates it); other errors surface on first use
    // as UnavailableError with their cause.
  }
  return new LocalStorage(root);
}

/** The nearest ancestor of `p` that exists and is not a directory (`p` itself if none is found). */
async function fileOnPath(p: string): Promise<string> {
  for (let dir = path.dirname(p); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const info = await stat(dir).catch(() => undefined);
    if (info && !info.isDirectory()) return dir;
  }
  return p;
}
