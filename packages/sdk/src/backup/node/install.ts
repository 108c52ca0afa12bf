/**
 * Side-effect import: install the Node platform (node/platform.ts) unless one is installed.
 * For code that uses the engine's rooms directly (tests, scripts) without `backvault/backup`.
 */
import { installNodePlatform } from './platform.js';

installNodePlatform();
