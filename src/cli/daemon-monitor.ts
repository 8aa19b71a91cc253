// husk daemon-monitor CONFIG (hidden): the monitor of one container of `husk daemon`, which
// starts it (src/daemon/monitor.ts startMonitor); it runs until the container's process ends.
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function command(_g: GlobalOptions, action: Action): Command {
  return new Command('daemon-monitor').argument('<config>', 'the MonitorConfig JSON file')
    .description('run one container of the daemon to its end')
    .action(action('daemon-monitor', (config: string) => (require('../daemon/monitor') as typeof import('../daemon/monitor')).runMonitor(config)));
}
