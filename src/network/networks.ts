// The networks husk writes: the default `husk` bridge on first use, and `husk network create`
// (skeleton: a helper is writing it).
import type { NetworkList } from './cni';
import { loadNetwork } from './cni';

/** The network NAME of configDir; the default network `husk` is written first if missing. */
export function ensureNetwork(configDir: string, name: string): NetworkList {
  return loadNetwork(configDir, name);
}
