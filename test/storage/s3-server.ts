/**
 * A real S3-compatible server for tests: s3rver in its own process on 127.0.0.1.
 *
 * Reusable by any test that needs S3 (storage conformance, CLI backups to s3://):
 *
 *   const s3 = await startS3Server();
 *   after(() => s3.stop());
 *   const storage = await openStorage(s3.url('my-test'));       // in-process
 *   spawn('node', [cli, 'backup', dir, '--repo', s3.url('x')], { env: { ...process.env, ...s3.env } });
 *
 * s3rver accepts only its built-in key pair (S3RVER/S3RVER); `startS3Server` puts it in
 * `process.env` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) unless told not to,
 * and returns it in `env` for child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A running test S3 server. */
export interface S3TestServer {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** A bucket that exists on the server. */
  bucket: string;
  port: number;
  region: string;
  /** Where the server keeps its objects (removed by `stop` unless the caller gave it). */
  directory: string;
  /** Process id of the server. */
  pid: number;
  /** The only key pair s3rver accepts. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Environment variables for a child process that talks to this server. */
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; AWS_REGION: string };
  /** An `s3://` URL for `openStorage` / `--repo` with this endpoint and region. */
  url(prefix?: string): string;
  /** Kill the server (SIGTERM, then SIGKILL) and remove its directory if we made it. */
  stop(): Promise<void>;
}

/** Options of {@link startS3Server}. */
export interface StartS3ServerOptions {
  /** Port to listen on (default 0: ephemeral). Give the old port to "restart" a server. */
  port?: number;
  /** Data directory to reuse (e.g. across a restart); the caller then owns it. */
  directory?: string;
  /** Bucket to create (default `backvault-test`). */
  bucket?: string;
  /** Put the credentials and region in `process.env` (default true). */
  setEnv?: boolean;
  /** How long to wait for the server to be ready, in ms (default 20 000). */
  readyTimeoutMs?: number;
}

const ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';
const running = new Set<ChildProcess>();

// A test file that forgets `stop()` (or throws first) must not leave servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Start s3rver as a separate process, wait until it listens and the bucket exists.
 * @throws Error when the server exits or is not ready in time (with its stderr).
 */
/**
 * After s3rver was SIGKILLed: remove the objects whose PUT it had not finished. s3rver
 * streams an object's bytes into place and writes its metadata after, so a kill mid-PUT
 * leaves an object without (or with half) its metadata, and every later listing of that
 * prefix fails with 500. A real S3 PUT is atomic: an unfinished one is never visible, which
 * is what this restores.
 */
export async function dropUnfinishedObjects(directory: string): Promise<string[]> {
  const dropped: string[] = [];
  for (const e of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('._S3rver_object')) continue;
    const base = path.join(e.parentPath, e.name.slice(0, -'._S3rver_object'.length));
    let complete = false;
    try {
      JSON.parse(await readFile(`${base}._S3rver_metadata.json`, 'utf8'));
      complete = true;
    } catch {
      // missing or half-written metadata: the PUT never finished
    }
    if (complete) continue;
    for (const suffix of ['object', 'object.md5', 'metadata.json'])
      await rm(`${base}._S3rver_${suffix}`, { force: true });
    dropped.push(base);
  }
  return dropped;
}

export async function startS3Server(options: StartS3ServerOptions = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'backvault-test';
  const ownsDirectory = options.directory === undefined;
  const directory = options.directory ?? (await mkdtemp(path.join(os.tmpdir(), 'bv-s3rver-')));
  const script = fileURLToPath(new URL('./s3rver-process.js', import.meta.url));
  const child = spawn(
    process.execPath,
    // DES for s3rver's list continuation tokens (see s3rver-process.ts).
    [
      '--openssl-legacy-provider',
      script,
      '--dir',
      directory,
      '--port',
      String(options.port ?? 0),
      '--bucket',
      bucket,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  running.add(child);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  child.once('exit', () => running.delete(child));

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    child.stdin?.destroy();
    if (ownsDirectory) await rm(directory, { recursive: true, force: true });
  };

  let port: number;
  try {
    port = await waitReady(child, options.readyTimeoutMs ?? 20_000);
  } catch (error) {
    await stop();
    throw error;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ACCESS_KEY_ID: ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: ACCESS_KEY,
    AWS_REGION: REGION,
  };
  if (options.setEnv ?? true) Object.assign(process.env, env);
  if (child.pid === undefined) throw new Error('s3rver process has no pid');
  // A test that forgets stop() still ends; the exit hook above then kills the server.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as { unref?: () => void } | null)?.unref?.();
  }
  return {
    endpoint,
    bucket,
    port,
    region: REGION,
    directory,
    pid: child.pid,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: ACCESS_KEY },
    env,
    url: (prefix = '') => `s3://${bucket}/${prefix}?endpoint=${endpoint}&region=${REGION}`,
    stop,
  };
}

/** Resolve with the port from the launcher's ready line; reject on exit or timeout. */
function waitReady(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const fail = (why: string): void => {
      cleanup();
      reject(
        new Error(`s3rver did not start: ${why}${stderr === '' ? '' : `\n${stderr.slice(-2000)}`}`),
      );
    };
    const onStdout = (chunk: Buffer): void => {
      stdout += chunk.toString('utf8');
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined || !stdout.includes('\n')) return;
      try {
        const msg = JSON.parse(line) as { ready?: boolean; port?: number };
        if (msg.ready === true && typeof msg.port === 'number') {
          cleanup();
          resolve(msg.port);
        }
      } catch {
        fail(`unexpected output ${JSON.stringify(line)}`);
      }
    };
    const onStderr = (chunk: Buffer): void => {
      stderr += chunk.toString('utf8');
    };
    const onExit = (code: number | null, signal: string | null): void =>
      fail(`exited with ${code ?? signal}`);
    const onError = (error: Error): void => fail(error.message);
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onStdout);
      child.stdout?.resume();
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stdout?.on('data', onStdout);
    // Keep draining stderr for the server's lifetime so a chatty server never blocks.
    child.stderr?.on('data', onStderr);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/**
 * What the proxy does with a request. `hold`: pass it on once the promise settles (a slow
 * store, at a moment the test chooses).
 */
export type ProxyAction =
  'pass' | 'hang' | 'stall-body' | { status: number; code: string } | { hold: Promise<unknown> };

/**
 * A real HTTP proxy in front of the S3 server that records every request and can fail
 * or stall chosen ones: it shows which requests the adapter makes (multipart or not)
 * and produces the 5xx, throttling and silent-server failures a real store has. Stopped
 * with `close()`.
 */
export async function startS3Proxy(targetPort: number) {
  const requests: { method: string; url: string }[] = [];
  let decide: (req: { method: string; url: string }, index: number) => ProxyAction = () => 'pass';
  const server = http.createServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '' };
    const action = decide(entry, requests.length);
    requests.push(entry);
    if (action === 'hang') return; // read nothing, answer nothing
    if (typeof action === 'object' && 'hold' in action) {
      req.pause();
      void action.hold.finally(() => forward(req, res));
      return;
    }
    if (action === 'stall-body') {
      // Headers and a few bytes, then silence: the deadline must cover the body too.
      req.resume();
      res.writeHead(200, { 'content-length': '1000' });
      res.write('0123456789');
      return;
    }
    if (action !== 'pass') {
      req.resume();
      res.writeHead(action.status, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${action.code}</Code><Message>injected</Message></Error>`,
      );
      return;
    }
    forward(req, res);
  });
  function forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    set(fn: typeof decide) {
      decide = fn;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
