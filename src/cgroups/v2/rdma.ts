// rdma (the same file on cgroup v1 and v2): rdma.max, one line per device,
// "<device> hca_handle=<n> hca_object=<n>" with what is set.
import type { CgroupDir } from '../fs';

export function apply(dir: CgroupDir, rdma: Record<string, { hcaHandles?: number; hcaObjects?: number }> | undefined): void {
  for (const [device, limits] of Object.entries(rdma ?? {})) {
    const parts = [device];
    if (limits.hcaHandles !== undefined) parts.push(`hca_handle=${limits.hcaHandles}`);
    if (limits.hcaObjects !== undefined) parts.push(`hca_object=${limits.hcaObjects}`);
    if (parts.length > 1) dir.write('rdma.max', parts.join(' '), `linux.resources.rdma[${JSON.stringify(device)}]`);
  }
}
