// cgroup v1 pids: the same files as v2 (pids.max, pids.current).
export { apply, stats } from '../v2/pids';
