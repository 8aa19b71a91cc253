// husk update: new resource limits for a container, from runc's flags or from
// `-r FILE|-` (OCI LinuxResources JSON; then the other flags are ignored, as in runc).
import { Command } from 'commander';
import { log } from '../host/log';
import { resourcesFromFlags, type UpdateFlags } from '../runtime/resources';
import type { Action, GlobalOptions } from './globals';

export function update(root: string, id: string, flags: UpdateFlags): void {
  const verbs = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
  const changes = flags.resources !== undefined ? verbs.readResourcesFile(flags.resources) : resourcesFromFlags(flags);
  verbs.update(root, id, changes, { warn: log.warn });
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('update').argument('<id>').description('update the resource limits of a container')
    .option('-r, --resources <file>', 'OCI LinuxResources JSON from this file, or - for stdin (the other options are then ignored)')
    .option('--blkio-weight <weight>', 'block IO weight, 10 to 1000')
    .option('--cpu-period <usecs>', 'CPU CFS period')
    .option('--cpu-quota <usecs>', 'CPU CFS quota per period')
    .option('--cpu-burst <usecs>', 'CPU CFS burst')
    .option('--cpu-share <shares>', 'CPU shares (relative weight)')
    .option('--cpu-shares <shares>', 'the same as --cpu-share')
    .option('--cpu-rt-period <usecs>', 'CPU realtime period')
    .option('--cpu-rt-runtime <usecs>', 'CPU realtime runtime per period')
    .option('--cpu-idle <0|1>', 'SCHED_IDLE for the cgroup')
    .option('--cpuset-cpus <cpus>', 'CPUs to use (0-3,5)')
    .option('--cpuset-mems <mems>', 'memory nodes to use')
    .option('--memory <bytes>', 'memory limit (200M, 1g; -1 for none)')
    .option('--memory-reservation <bytes>', 'memory reservation (soft limit)')
    .option('--memory-swap <bytes>', 'memory plus swap limit (-1 for unlimited swap)')
    .option('--kernel-memory <bytes>', 'ignored, as in runc')
    .option('--kernel-memory-tcp <bytes>', 'ignored, as in runc')
    .option('--pids-limit <n>', 'maximum number of processes')
    .action(action('update', (id: string, opts: any) => update(g.root, id, opts)));
}
