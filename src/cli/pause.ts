// husk pause / husk resume: freeze and thaw every process of the container (runc's verbs).
import { log } from '../host/log';

export function pause(root: string, id: string): void {
  require('../runtime/cgroupVerbs').pause(root, id, { warn: log.warn });
}
