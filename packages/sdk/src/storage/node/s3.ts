/**
 * A Storage on an S3-compatible object store (AWS S3, MinIO, Ceph RGW, GCS interop,
 * s3rver in tests) through `@aws-sdk/client-s3`.
 *
 * An S3 PUT is atomic (readers see the old or the new object, never a part) and durable
 * once it returns 200, which is exactly the Storage contract; large objects go through
 * a multipart upload, which is just as atomic: the object appears on Complete.
 *
 * This adapter does not retry: the SDK is told to make one attempt per call and failures
 * surface as UnavailableError, which {@link withRetry} (applied by `openStorage`) retries
 * with backoff. Every request has a connect timeout, an idle-socket timeout and a hard
 * deadline, so a dead or silent server fails the call instead of hanging it.
 */
import { createRequire } from 'node:module';
import type * as AwsS3 from '@aws-sdk/client-s3';
import {
  BackvaultError,
  MissingObjectError,
  NotFoundError,
  UnavailableError,
  UsageError,
} from '../../errors.js';
import {
  assertListPrefix,
  assertObjectName,
  assertRange,
  isObjectName,
  signalView,
  type Storage,
} from '../storage.js';

const MiB = 1024 * 1024;
/** S3's smallest allowed part (all but the last). */
const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part number. */
const MAX_PARTS = 10_000;

/** Static credentials. Omit them to use the AWS default chain (environment variables first). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Configuration of an {@link S3Storage}. */
export interface S3StorageOptions {
  /** The bucket; it must exist. */
  bucket: string;
  /** Key prefix of the repository inside the bucket, e.g. `backups/alice` (default none). */
  prefix?: string;
  /** Endpoint of a non-AWS service, e.g. `http://127.0.0.1:9000`. Default: AWS. */
  endpoint?: string;
  /** Region (default `AWS_REGION`, else `us-east-1`). */
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), needed by most self-hosted servers. */
  forcePathStyle?: boolean;
  /**
   * Credentials. Default: the AWS default chain, which reads `AWS_ACCESS_KEY_ID`,
   * `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` first.
   */
  credentials?: S3Credentials;
  /** Objects larger than this use a multipart upload (default 16 MiB; minimum 5 MiB). */
  multipartThreshold?: number;
  /** Part size of multipart uploads (default 8 MiB; S3 requires at least 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 4). */
  multipartConcurrency?: number;
  /** Keys asked for per ListObjectsV2 page (default 1000, the S3 maximum). */
  listPageSize?: number;
  /** Hard deadline of one request, body included, in ms (default 120 000). */
  timeoutMs?: number;
  /** Deadline to open a TCP/TLS connection, in ms (default 10 000). */
  connectTimeoutMs?: number;
  /** A socket that sends and receives nothing for this long fails, in ms (default 30 000). */
  idleTimeoutMs?: number;
}

/** Storage on an S3-compatible bucket. Keys are `<prefix>/<object name>`. */
export class S3Storage implements Storage {
  /** `s3://bucket/prefix`, plus `?endpoint=…` for a non-AWS endpoint. Never credentials. */
  readonly location: string;
  private readonly client: AwsS3.S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly pageSize: number;
  private readonly timeoutMs: number;

  /**
   * Create the client; no request is made until the first call.
   * @throws RangeError on an impossible part size, threshold, concurrency or page size.
   */
  constructor(options: S3StorageOptions) {
    this.bucket = options.bucket;
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.keyPrefix = prefix === '' ? '' : `${prefix}/`;
    this.partSize = options.partSize ?? 8 * MiB;
    this.multipartThreshold = options.multipartThreshold ?? 16 * MiB;
    this.concurrency = options.multipartConcurrency ?? 4;
    this.pageSize = options.listPageSize ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new RangeError('S3 partSize must be at least 5 MiB');
    }
    if (!Number.isSafeInteger(this.multipartThreshold) || this.multipartThreshold < MIN_PART_SIZE) {
      throw new RangeError('S3 multipartThreshold must be at least 5 MiB');
    }
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new RangeError('S3 multipartConcurrency must be an integer >= 1');
    }
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || this.pageSize > 1000) {
      throw new RangeError('S3 listPageSize must be between 1 and 1000');
    }
    const endpoint = options.endpoint === undefined ? undefined : safeEndpoint(options.endpoint);
    this.location =
      `s3://${this.bucket}${prefix === '' ? '' : `/${prefix}`}` +
      (endpoint === undefined ? '' : `?endpoint=${endpoint}`);
    // The SDK warns on every process start under Node < 22 about its own future
    // releases; a CLI user can do nothing about it. Kept if the user set it explicitly.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    const { S3Client } = loadAwsSdk();
    this.client = new S3Client({
      region: options.region ?? process.env['AWS_REGION'] ?? 'us-east-1',
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      // Retries belong to the withRetry wrapper, so that they are visible and uniform.
      maxAttempts: 1,
      // Checksums only where S3 demands them: several S3-compatible servers reject the
      // newer default checksum headers, and the engine authenticates every byte anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? 10_000,
        socketTimeout: options.idleTimeoutMs ?? 30_000,
        // A backstop only: the AbortSignal deadline of each call fires first.
        requestTimeout: this.timeoutMs + 1000,
        throwOnRequestTimeout: true,
      },
    });
  }

  /** Aborts a view's requests; set by signalView (see {@link Storage.withSignal}). */
  private signal: AbortSignal | undefined;

  /**
   * A view sharing this client whose requests in flight are aborted when `signal` aborts
   * (they reject with `signal.reason`); see {@link Storage.withSignal}.
   */
  withSignal(signal: AbortSignal): Storage {
    return signalView(this, signal);
  }

  /**
   * Store `data` with one PutObject, or with a multipart upload above the threshold
   * (aborted on failure so no parts linger).
   * @throws UnavailableError on network errors, timeouts, 5xx, throttling.
   * @throws NotFoundError (code NOT_FOUND) when the bucket does not exist.
   * @throws BackvaultError with code FORBIDDEN when S3 refuses the credentials.
   * @throws TypeError on an invalid object name.
   */
  async put(name: string, data: Uint8Array): Promise<void> {
    assertObjectName(name);
    const Key = this.keyOf(name);
    if (data.length <= this.multipartThreshold) {
      await this.send('write', name, false, (abortSignal) =>
        this.client.send(
          new (aws().PutObjectCommand)({
            Bucket: this.bucket,
            Key,
            Body: data,
            ContentLength: data.length,
          }),
          { abortSignal },
        ),
      );
      return;
    }
    await this.putMultipart(name, Key, data);
  }

  /**
   * Read a whole object.
   * @throws MissingObjectError when there is no such key.
   * @throws UnavailableError, NotFoundError, FORBIDDEN as for {@link S3Storage.put}.
   * @throws TypeError on an invalid object name.
   */
  async get(name: string): Promise<Uint8Array> {
    assertObjectName(name);
    return this.send('read', name, true, async (abortSignal) => {
      const res = await this.client.send(
        new (aws().GetObjectCommand)({ Bucket: this.bucket, Key: this.keyOf(name) }),
        { abortSignal },
      );
      return bodyBytes(res.Body);
    });
  }

  /**
   * Read up to `length` bytes at `offset` with an HTTP Range request.
   * @throws MissingObjectError when there is no such key.
   * @throws UnavailableError, NotFoundError, FORBIDDEN as for {@link S3Storage.put}.
   * @throws TypeError on an invalid object name; RangeError on a bad offset or length.
   */
  async getRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    assertObjectName(name);
    assertRange(offset, length);
    if (length === 0) {
      // No byte range can say "zero bytes"; still report a missing object as missing.
      if ((await this.stat(name)) === undefined) throw new MissingObjectError(name);
      return new Uint8Array(0);
    }
    return this.send('read', name, true, async (abortSignal) => {
      try {
        const res = await this.client.send(
          new (aws().GetObjectCommand)({
            Bucket: this.bucket,
            Key: this.keyOf(name),
            Range: `bytes=${offset}-${offset + length - 1}`,
          }),
          { abortSignal },
        );
        const bytes = await bodyBytes(res.Body);
        // A server that ignores Range answers 200 with the whole object: cut it here.
        return res.ContentRange === undefined
          ? bytes.subarray(Math.min(offset, bytes.length), Math.min(offset + length, bytes.length))
          : bytes;
      } catch (error) {
        // 416: the range starts at or beyond the end, so the object exists and is shorter.
        if (statusOf(error) === 416 || nameOf(error) === 'InvalidRange') return new Uint8Array(0);
        throw error;
      }
    });
  }

  /**
   * Size of an object (HeadObject), or `undefined` when there is no such key.
   * @throws UnavailableError, NotFoundError, FORBIDDEN as for {@link S3Storage.put}.
   * @throws TypeError on an invalid object name.
   */
  async stat(name: string): Promise<{ size: number } | undefined> {
    assertObjectName(name);
    try {
      return await this.send('stat', name, true, async (abortSignal) => {
        const res = await this.client.send(
          new (aws().HeadObjectCommand)({ Bucket: this.bucket, Key: this.keyOf(name) }),
          { abortSignal },
        );
        return { size: res.ContentLength ?? 0 };
      });
    } catch (error) {
      if (error instanceof MissingObjectError) return undefined;
      throw error;
    }
  }

  /**
   * Keys under the repository prefix starting with `prefix`, page by page
   * (ListObjectsV2). Keys that are not valid object names are skipped.
   * @throws UnavailableError, NotFoundError, FORBIDDEN as for {@link S3Storage.put}.
   * @throws TypeError on an invalid prefix.
   */
  async *list(prefix: string): AsyncIterable<{ name: string; size: number }> {
    assertListPrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.send('list', prefix === '' ? '/' : prefix, false, (abortSignal) =>
        this.client.send(
          new (aws().ListObjectsV2Command)({
            Bucket: this.bucket,
            Prefix: this.keyPrefix + prefix,
            MaxKeys: this.pageSize,
            ContinuationToken: token,
          }),
          { abortSignal },
        ),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined || !item.Key.startsWith(this.keyPrefix)) continue;
        const name = item.Key.slice(this.keyPrefix.length);
        if (isObjectName(name)) yield { name, size: item.Size ?? 0 };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  /**
   * Delete an object; S3 deletes are idempotent already.
   * @throws UnavailableError, NotFoundError, FORBIDDEN as for {@link S3Storage.put}.
   * @throws TypeError on an invalid object name.
   */
  async delete(name: string): Promise<void> {
    assertObjectName(name);
    await this.send('delete', name, false, (abortSignal) =>
      this.client.send(
        new (aws().DeleteObjectCommand)({ Bucket: this.bucket, Key: this.keyOf(name) }),
        {
          abortSignal,
        },
      ),
    );
  }

  /**
   * Abort multipart uploads under the repository prefix that were started more than
   * `olderThanMs` ago (left by a process killed mid-upload: they cost storage until
   * aborted). A server without ListMultipartUploads has nothing to clean: 0.
   * @throws UnavailableError as for {@link S3Storage.put}.
   */
  async cleanupTemp(olderThanMs = 60 * 60 * 1000): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.send('list uploads', '/', false, (abortSignal) =>
          this.client.send(
            new (aws().ListMultipartUploadsCommand)({
              Bucket: this.bucket,
              Prefix: this.keyPrefix,
              KeyMarker: keyMarker,
              UploadIdMarker: uploadIdMarker,
            }),
            { abortSignal },
          ),
        );
      } catch (e) {
        // A server without ListMultipartUploads (s3rver answers 501 NotImplemented) can
        // hold no unfinished upload to abort; any other failure is the caller's to see.
        const cause = (e as { cause?: unknown }).cause;
        if (nameOf(cause) === 'NotImplemented' || statusOf(cause) === 501) return aborted;
        throw e;
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Key.startsWith(this.keyPrefix)) continue;
        if (u.Initiated && u.Initiated.getTime() > cutoff) continue;
        const Key = u.Key;
        const UploadId = u.UploadId;
        await this.send('abort upload', Key.slice(this.keyPrefix.length), false, (abortSignal) =>
          this.client.send(
            new (aws().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key, UploadId }),
            {
              abortSignal,
            },
          ),
        );
        aborted += 1;
      }
      keyMarker = page.IsTruncated === true ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated === true ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
    return aborted;
  }

  /** Close the HTTP connections. */
  async close(): Promise<void> {
    this.client.destroy();
  }

  private keyOf(name: string): string {
    return this.keyPrefix + name;
  }

  private async putMultipart(name: string, Key: string, data: Uint8Array): Promise<void> {
    // Grow parts for huge objects so that they fit in S3's 10,000 parts.
    const partSize = Math.max(this.partSize, Math.ceil(data.length / MAX_PARTS));
    const created = await this.send('write', name, false, (abortSignal) =>
      this.client.send(new (aws().CreateMultipartUploadCommand)({ Bucket: this.bucket, Key }), {
        abortSignal,
      }),
    );
    const UploadId = created.UploadId;
    if (UploadId === undefined) {
      throw new UnavailableError(`S3 gave no upload id for ${name} at ${this.location}`);
    }
    try {
      const count = Math.ceil(data.length / partSize);
      const etags: string[] = new Array<string>(count);
      let next = 0;
      let failure: { error: unknown } | undefined;
      const worker = async (): Promise<void> => {
        // Stop taking parts once one failed; every worker has finished before the abort,
        // so no part can land after it.
        while (failure === undefined && next < count) {
          const index = next++;
          const body = data.subarray(
            index * partSize,
            Math.min(data.length, (index + 1) * partSize),
          );
          try {
            const res = await this.send('write', name, false, (abortSignal) =>
              this.client.send(
                new (aws().UploadPartCommand)({
                  Bucket: this.bucket,
                  Key,
                  UploadId,
                  PartNumber: index + 1,
                  Body: body,
                  ContentLength: body.length,
                }),
                { abortSignal },
              ),
            );
            if (res.ETag === undefined) {
              throw new UnavailableError(
                `S3 gave no ETag for a part of ${name} at ${this.location}`,
              );
            }
            etags[index] = res.ETag;
          } catch (error) {
            failure ??= { error };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.concurrency, count) }, worker));
      if (failure !== undefined) throw failure.error;
      await this.send('write', name, false, (abortSignal) =>
        this.client.send(
          new (aws().CompleteMultipartUploadCommand)({
            Bucket: this.bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      // Best effort: parts of an abandoned upload cost money until aborted (a bucket
      // lifecycle rule for incomplete uploads is the backstop).
      await this.client
        .send(new (aws().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key, UploadId }), {
          abortSignal: AbortSignal.timeout(Math.min(this.timeoutMs, 10_000)),
        })
        .catch(() => undefined);
      throw error;
    }
  }

  /**
   * Run one SDK call under a hard deadline and translate its failure into the error
   * taxonomy. `reading` says whether a 404 means "no such object".
   */
  private async send<T>(
    action: string,
    name: string,
    reading: boolean,
    call: (abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const deadline = AbortSignal.timeout(this.timeoutMs);
    // A delete still goes out after an abort: it is how an aborted operation removes its lock.
    const stop = action === 'delete' ? undefined : this.signal;
    try {
      return await call(stop ? AbortSignal.any([deadline, stop]) : deadline);
    } catch (error) {
      if (stop?.aborted) throw stop.reason;
      if (deadline.aborted) {
        throw new UnavailableError(
          `S3 did not answer in ${this.timeoutMs} ms to ${action} ${name} at ${this.location}`,
          { cause: error },
        );
      }
      throw this.translate(action, name, reading, error);
    }
  }

  private translate(action: string, name: string, reading: boolean, error: unknown): Error {
    if (error instanceof BackvaultError) return error;
    const status = statusOf(error);
    const code = nameOf(error) ?? 'error';
    if (code === 'NoSuchBucket') {
      return new NotFoundError(
        `S3 bucket does not exist: ${this.bucket}`,
        'Create the bucket or fix the s3:// URL.',
      );
    }
    if (reading && (code === 'NoSuchKey' || code === 'NotFound' || status === 404)) {
      return new MissingObjectError(name);
    }
    if (
      status === 401 ||
      status === 403 ||
      ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken'].includes(code)
    ) {
      return new BackvaultError(
        'FORBIDDEN',
        `S3 refused to ${action} ${name} at ${this.location}: ${code}`,
        'Check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the bucket policy.',
        { cause: error },
      );
    }
    // Everything else — connection refused or reset, DNS, timeouts, 5xx, SlowDown — is
    // the store being unavailable; retrying later may help.
    return new UnavailableError(
      `S3 could not ${action} ${name} at ${this.location}: ${code}${status === undefined ? '' : ` (HTTP ${status})`}`,
      { cause: error },
    );
  }
}

/** The body of a GetObject response as bytes. */
async function bodyBytes(
  body: { transformToByteArray(): Promise<Uint8Array> } | undefined,
): Promise<Uint8Array> {
  if (body === undefined) return new Uint8Array(0);
  return body.transformToByteArray();
}

function statusOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && '$metadata' in error) {
    const meta = (error as { $metadata: unknown }).$metadata;
    if (typeof meta === 'object' && meta !== null && 'httpStatusCode' in meta) {
      const status = (meta as { httpStatusCode: unknown }).httpStatusCode;
      if (typeof status === 'number') return status;
    }
  }
  return undefined;
}

/** The S3 error code (`NoSuchKey`), else the Node error code (`ECONNREFUSED`), else the name. */
function nameOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { name?: unknown; code?: unknown; Code?: unknown };
  for (const candidate of [e.Code, e.code, e.name]) {
    if (typeof candidate === 'string' && candidate !== '' && candidate !== 'Error')
      return candidate;
  }
  return undefined;
}

/** The endpoint for messages: scheme, host, port and path, never user info or query. */
function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(invalid endpoint)';
  }
}

let awsSdk: typeof AwsS3 | undefined;

/**
 * The AWS SDK, loaded on the first S3 store (`import 'backvault'` must not pay ~300 ms and
 * ~20 MB for it). It is an optional peer dependency of the device SDK: an app that stores
 * in S3 installs it.
 */
function loadAwsSdk(): typeof AwsS3 {
  if (awsSdk) return awsSdk;
  try {
    awsSdk = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof AwsS3;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'MODULE_NOT_FOUND') throw error;
    throw new UsageError(
      'An S3 store needs the AWS SDK, an optional dependency of backvault: install @aws-sdk/client-s3 in the app.',
    );
  }
  return awsSdk;
}

/** The loaded AWS SDK (an S3Storage exists only after {@link loadAwsSdk} succeeded). */
function aws(): typeof AwsS3 {
  return awsSdk ?? loadAwsSdk();
}
