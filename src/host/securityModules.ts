// Which Linux security modules are enabled on this host, for `features` and for refusing an
// AppArmor profile or SELinux label that cannot be applied.
import * as fs from 'fs';

export function securityModules(): ('apparmor' | 'selinux')[] {
  const out: ('apparmor' | 'selinux')[] = [];
  try {
    if (fs.readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y') out.push('apparmor');
  } catch {
    // no AppArmor
  }
  if (fs.existsSync('/sys/fs/selinux/enforce')) out.push('selinux');
  return out;
}
