// The systemd unit a container's cgroup becomes with --systemd-cgroup, as runc names it
// (libcontainer/specconv CreateCgroupConfig, cgroups/systemd common.go and v2.go):
//
//   linux.cgroupsPath "slice:prefix:name"  ->  the transient unit "prefix-name.scope", with
//                                              Slice=slice; a name ending in ".slice" is a
//                                              slice unit of that name instead (prefix unused)
//   slice ""                               ->  system.slice (root), user.slice (rootless)
//   cgroupsPath absent or ""               ->  ":husk:<id>", as runc's is ":runc:<id>"
//
// A slice's cgroup is where systemd puts it: "a-b.slice" is /a.slice/a-b.slice, "-.slice" is
// the root. For a user manager (rootless) everything is below the manager's own cgroup,
// /user.slice/user-1000.slice/user@1000.service.
import * as path from 'path';
import { HuskError } from '../../errors';

export interface SystemdUnit {
  /** The unit systemd is asked to start: "docker-abc.scope", or a ".slice". */
  name: string;
  /** The slice it is placed in ("system.slice"). */
  slice: string;
  /** true: the user's manager on the session bus (rootless husk); false: PID 1 on the system bus. */
  user: boolean;
}

/** The prefix of the default unit name, as runc's is "runc". */
export const DEFAULT_PREFIX = 'husk';

/** The unit for linux.cgroupsPath (or the default for the container `id`). */
export function unitFor(cgroupsPath: string | undefined, id: string, user: boolean): SystemdUnit {
  const text = cgroupsPath ? cgroupsPath : `:${DEFAULT_PREFIX}:${id}`;
  const parts = text.split(':');
  if (parts.length !== 3) {
    throw new HuskError(`config.json: linux.cgroupsPath ${JSON.stringify(text)}: expected "slice:prefix:name" for systemd cgroups`);
  }
  const [slice, prefix, name] = parts;
  if (name === '') throw new HuskError(`config.json: linux.cgroupsPath ${JSON.stringify(text)}: the unit's name (after the second ":") is empty`);
  const parent = slice === '' ? (user ? 'user.slice' : 'system.slice') : slice;
  expandSlice(parent); // refuses a malformed slice before anything is asked of systemd
  let unit: string;
  if (name.endsWith('.slice')) {
    expandSlice(name);
    unit = name;
  } else {
    unit = prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`;
  }
  checkUnitName(unit, text);
  return { name: unit, slice: parent, user };
}

/** systemd's rules for a unit name (unit_name_is_valid): at most 255 bytes, and these characters. */
function checkUnitName(unit: string, cgroupsPath: string): void {
  const valid = /^[A-Za-z0-9:_.\\@-]+$/.test(unit) && Buffer.byteLength(unit) <= 255 && !unit.startsWith('.');
  if (!valid) throw new HuskError(`config.json: linux.cgroupsPath ${JSON.stringify(cgroupsPath)}: ${JSON.stringify(unit)} is not a valid systemd unit name`);
}

/**
 * A slice's cgroup path, as systemd makes it: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice",
 * "-.slice" -> "/". Empty components ("a--b.slice", "-a.slice") and slashes are refused.
 */
export function expandSlice(slice: string): string {
  const invalid = () => new HuskError(`invalid slice name: ${slice}`);
  if (!slice.endsWith('.slice') || slice.length <= '.slice'.length || slice.includes('/')) throw invalid();
  const base = slice.slice(0, -'.slice'.length);
  if (base === '-') return '/';
  let out = '';
  let prefix = '';
  for (const component of base.split('-')) {
    if (component === '') throw invalid();
    out += `/${prefix}${component}.slice`;
    prefix += `${component}-`;
  }
  return out;
}

/**
 * The unit's cgroup, relative to the hierarchy's root: the manager's own cgroup ("/" for PID 1,
 * "/user.slice/user-1000.slice/user@1000.service" for a user's manager), the slice, the unit.
 * A slice unit is itself expanded ("a-b.slice" inside "a.slice").
 */
export function unitCgroup(unit: SystemdUnit, managerCgroup: string): string {
  const own = unit.name.endsWith('.slice') ? expandSlice(unit.name) : path.posix.join(expandSlice(unit.slice), unit.name);
  return path.posix.join('/', managerCgroup || '/', own);
}

/** The D-Bus object path of a unit, as sd_bus_path_encode makes it ("-" -> "_2d"). */
export function unitObjectPath(unit: string): string {
  let out = '';
  for (const byte of Buffer.from(unit)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9]/.test(c) ? c : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return `/org/freedesktop/systemd1/unit/${out}`;
}
