/** Small helpers shared by the bench command-line entry points. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** True when the module with this `import.meta.url` is the script Node was started with. */
export function isMain(importMetaUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(importMetaUrl));
  } catch {
    return false;
  }
}

/**
 * Parse a numeric option.
 * @throws Error when the value is present but not a finite number in range.
 */
export function numberOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min = -Infinity,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}`);
  return n;
}

/** Run an async CLI main: print one line on failure and exit 1 (exit 2 is for usage). */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  });
}
