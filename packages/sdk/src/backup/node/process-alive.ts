/**
 * Whether process `pid` exists on this host (signal 0 probes without sending anything;
 * EPERM means it exists but belongs to another user). Used to tell a running restore's or
 * backup's leftovers from those of a process that died.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
