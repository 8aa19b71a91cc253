// husk features: what this husk supports, as the OCI features JSON. Whether AppArmor and
// SELinux are enabled is the host's fact, read where the planner reads it (hostView).
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function command(_g: GlobalOptions, action: Action): Command {
  return new Command('features').description('print what this husk supports (the OCI features JSON)')
    .action(action('features', () => {
      const { hostView } = require('../linux/hostInfo') as typeof import('../linux/hostInfo');
      const securityModules = hostView().securityModules;
      const out = require('../spec/features').features({
        cgroupV1: true,
        cgroupV2: true,
        apparmor: securityModules.includes('apparmor'),
        selinux: securityModules.includes('selinux'),
      });
      process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    }));
}
