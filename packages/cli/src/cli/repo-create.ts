/** Creating a device's repository when `enable` sets the device up (never by a backup). */
import { deviceStatePath } from '../device/profile.js';
import { loadEngine } from './command.js';

/**
 * Create the repository at `repoUrl` for a device being set up in `deviceDir`, unless one
 * exists already (then nothing happens: `enable` checked the key opens it).
 * @throws NoRepositoryError when this device's state saw a repository there that is gone;
 *   UnavailableError from the store.
 */
export async function createDeviceRepository(
  repoUrl: string,
  backupKey: Uint8Array,
  deviceDir: string,
): Promise<void> {
  const { openStorage } = await import('backvault/node');
  const storage = await openStorage(repoUrl);
  try {
    await (
      await loadEngine()
    ).initRepository({ storage, backupKey, statePath: deviceStatePath(deviceDir) });
  } finally {
    await storage.close();
  }
}
