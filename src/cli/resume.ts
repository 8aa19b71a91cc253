// husk resume: thaw a paused container.
import { log } from '../host/log';

export function resume(root: string, id: string): void {
  require('../runtime/cgroupVerbs').resume(root, id, { warn: log.warn });
}
