// What husk can apply of linux.resources today. Until the cgroup manager exists, every
// limit is refused with a message naming it: a limit asked for is never silently dropped.
import { HuskError } from '../errors';
import type { Spec } from '../spec/types';

/** Paths (linux.resources.memory.limit, ...) of every resource that is set. */
export function requestedResources(spec: Spec): string[] {
  const resources = (spec.linux?.resources ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  const walk = (value: unknown, at: string) => {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) {
      if (value.length) out.push(at);
    } else if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(v, `${at}.${k}`);
    } else {
      out.push(at);
    }
  };
  for (const [k, v] of Object.entries(resources)) {
    if (k === 'devices') continue;
    walk(v, `linux.resources.${k}`);
  }
  return out;
}

/** Device cgroup rules other than the default "deny everything" husk cannot enforce yet. */
export function deviceRulesBeyondDefault(spec: Spec): boolean {
  const rules = spec.linux?.resources?.devices ?? [];
  return rules.some((r) => r.allow);
}

export function checkResources(spec: Spec, warn: (msg: string) => void) {
  const asked = requestedResources(spec);
  if (asked.length) {
    throw new HuskError(`config.json: ${asked[0]}: cgroup resource limits are not supported by husk yet${asked.length > 1 ? ` (nor ${asked.slice(1).join(', ')})` : ''}`);
  }
  if (deviceRulesBeyondDefault(spec)) {
    warn('config.json: linux.resources.devices: device cgroup rules are not enforced yet; only the devices listed in linux.devices exist in the container');
  }
}
