// husk features: what this husk supports, as the OCI features JSON. Whether AppArmor and
// SELinux are enabled is the host's fact, read by the one reader the planner uses too (host/securityModules).
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function command(_g: GlobalOptions, action: Action): Command {
  return new Command('features').description('print what this husk supports (the OCI features JSON)')
    .action(action('features', () => {
      const { securityModules: read } = require('../host/securityModules') as typeof import('../host/securityModules');
      const securityModules = read();
      const out = require('../runtime/features').features({
        cgroupV1: true,
        cgroupV2: true,
        apparmor: securityModules.includes('apparmor'),
        selinux: securityModules.includes('selinux'),
      });
      process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    }));
}
