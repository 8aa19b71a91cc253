// husk update: new resource limits for a container, from runc's flags or from
// `-r FILE|-` (OCI LinuxResources JSON; then the other flags are ignored, as in runc).
import { log } from '../host/log';
import { resourcesFromFlags, type UpdateFlags } from '../runtime/resources';

export function update(root: string, id: string, flags: UpdateFlags): void {
  const verbs = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
  const changes = flags.resources !== undefined ? verbs.readResourcesFile(flags.resources) : resourcesFromFlags(flags);
  verbs.update(root, id, changes, { warn: log.warn });
}
