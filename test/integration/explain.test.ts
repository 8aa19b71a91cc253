// husk --explain: the steps of `run` in words, grouped in the phases of `docker run`, each kind
// explained once; and --trace, machine-exact, unchanged beside it.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, expectStatus, isRunc, makeBundle, newId, rt, stateRoot, tempDir } from './harness';
import { buildImage, probeLayer, writeLayout } from './image-fixtures';

afterEach(cleanup);

/** What varies between runs and hosts, replaced by names: the bundle, state root, id, pids, fds. */
function normalise(text: string, o: { bundle: string; root: string; id: string }): string {
  return text
    .split(o.bundle).join('BUNDLE')
    .split(o.root).join('ROOT')
    .split(o.id).join('ID')
    .replace(/\b(pid|process|fd) \d+/g, '$1 N');
}

/**
 * The cgroup steps depend on the host's cgroup layout (a directory per v1 controller and
 * devices.allow rules, or one v2 directory and a BPF device program), and so does the mount of
 * /sys/fs/cgroup: those lines are checked apart, and left out of the transcript.
 */
const hostDependent = (line: string) => line.includes('/sys/fs/cgroup')
  || /^ {4}husk +the init started inside its cgroup/.test(line)
  || /^ {2}(A cgroup is|Writing a cgroup's|clone3 with CLONE_INTO_CGROUP|The container's cgroup is removed|On cgroup v2 the device rules)/.test(line);

// The output on this test's default bundle, host-dependent lines left out.
const TRANSCRIPT = `
== Bundle: the container's directory, its state and its exec fifo ==
  The exec fifo splits \`create\` from \`start\`: the init blocks opening it until \`husk start\` opens the other end; without it the program would run as soon as the container was made. [man mkfifo(3), fifo(7)]
    husk    make the exec fifo "ROOT/ID/exec.fifo" in the container's state directory
  The state file records the container (its pid, with the pid's start time, its bundle, its status) so that later calls (\`state\`, \`kill\`, \`delete\`) find it; without it husk would forget the container as soon as it returned. [man runtime-spec runtime.md#state]
    husk    record the container in "ROOT/ID/state.json": status creating, init pid N
  The init keeps a handle on the exec fifo before pivot_root hides the host's files; without it the init could not wait for \`husk start\`. [man fifo(7)]
    init    keep the exec fifo open (fd N) to wait on later

== Cgroup: a group of processes the kernel counts and limits ==

== Namespaces: the container's own view of processes, network, hostname and mounts ==
  A first child (stage 1) prepares what must happen before the container's namespaces exist (joining namespaces by path, a new user namespace) and clones the init; it makes itself non-dumpable first, so no process of the container can read its memory. [man clone(2), prctl(2) PR_SET_DUMPABLE]
    husk    clone the first child (stage 1) from husk's front door
  The container's first process is cloned with new namespaces, so from its first instruction it sees its own process tree (with a pid namespace, it is PID 1 there), hostname, IPC and mounts; without them it would see and touch everything on the host. [man clone(2), namespaces(7)]
    stage 1 start the container's init in new pid, network, ipc, uts and mount namespaces, straight into its cgroup (pid N on the host)
  Some namespaces are made after the clone, when the process is already in place (the cgroup namespace after it joined its cgroup, so that its own cgroup looks like the root); made earlier it would show the host's cgroup paths. [man unshare(2)]
    init    create a new cgroup namespace
  A new network namespace starts with only a loopback interface, and that one is down; without bringing it up, even 127.0.0.1 would not answer inside the container. [man network_namespaces(7), netdevice(7)]
    init    bring up the network interface "lo"
  The container has its own UTS namespace, so it can have its own hostname without renaming the host. [man sethostname(2), uts_namespaces(7)]
    init    set the hostname to "husk-test"

== Root filesystem: mounts, then pivot_root into the image ==
  Mounts build the container's file tree in its own mount namespace: /proc for its processes, /dev, /sys, and the bind mounts the config asks for; without them the programs in the container would find no /proc and no /dev, and none of it would be hidden from the host. [man mount(2), mount_namespaces(7)]
    init    make every mount under "/" a slave: mounts made on the host still appear here, none made here go back
    init    make the mount at "/" private: no mount or unmount crosses between here and the host
    init    a recursive bind mount of "BUNDLE/rootfs" on "BUNDLE/rootfs" (itself: now a mount point of its own)
  The root filesystem is opened once and every later path is resolved inside it (openat2 RESOLVE_IN_ROOT); without it a symbolic link planted in the image could send a mount to the host's /etc. [man openat2(2)]
    init    open the root filesystem "BUNDLE/rootfs"; later paths are resolved inside it
    init    a new proc filesystem on "/proc"
    init    a new tmpfs filesystem on "/dev" (set-user-ID bits ignored; access times always written; options mode=755, size=65536k)
    init    a new devpts filesystem on "/dev/pts" (set-user-ID bits ignored; no programs run from it; options newinstance, ptmxmode=0666, mode=0620, gid=5)
    init    a new tmpfs filesystem named "shm" on "/dev/shm" (set-user-ID bits ignored; device files unusable; no programs run from it; options mode=1777, size=65536k)
    init    a new mqueue filesystem on "/dev/mqueue" (set-user-ID bits ignored; device files unusable; no programs run from it)
    init    a new sysfs filesystem on "/sys" (read-only; set-user-ID bits ignored; device files unusable; no programs run from it)
  Directories the config needs (a mount point, the working directory) are made inside the root filesystem when the image lacks them; without them the mount or chdir would fail. [man mkdir(2)]
    init    create the directory "/" inside the root filesystem
  pivot_root makes the image's root filesystem "/" and detaches the host's old root entirely; without it (a plain chroot) the host's files would still be mounted in the namespace and a process could escape back to them. [man pivot_root(2)]
    init    make "BUNDLE/rootfs" the root "/" and detach the host's old root
    init    a recursive bind mount of "/proc/bus" on "/proc/bus" (itself: now a mount point of its own)
  Remounting read-only keeps the container from writing where the config says it must not (a read-only root, /proc/sys); without it a process in the container could change those files. [man mount(2)]
    init    make "/proc/bus" and every mount under it read-only
    init    a recursive bind mount of "/proc/fs" on "/proc/fs" (itself: now a mount point of its own)
    init    make "/proc/fs" and every mount under it read-only
    init    a recursive bind mount of "/proc/irq" on "/proc/irq" (itself: now a mount point of its own)
    init    make "/proc/irq" and every mount under it read-only
    init    a recursive bind mount of "/proc/sys" on "/proc/sys" (itself: now a mount point of its own)
    init    make "/proc/sys" and every mount under it read-only
    init    a recursive bind mount of "/proc/sysrq-trigger" on "/proc/sysrq-trigger" (itself: now a mount point of its own)
    init    make "/proc/sysrq-trigger" and every mount under it read-only
    init    make "/" read-only

== Devices: the few device files the container may use ==
  Only a short list of device files is created in the container's own /dev, so it can use the null device or a terminal but not the host's disks; without them many programs fail, with the host's /dev it could reach the hardware. [man mknod(2), devices in the runtime-spec]
    init    create the character device "/dev/null" (number 1, 3: the null device), readable and writable by everyone
    init    create the character device "/dev/zero" (number 1, 5: the zero device), readable and writable by everyone
    init    create the character device "/dev/full" (number 1, 7: the full device), readable and writable by everyone
    init    create the character device "/dev/random" (number 1, 8: the random device), readable and writable by everyone
    init    create the character device "/dev/urandom" (number 1, 9: the urandom device), readable and writable by everyone
    init    create the character device "/dev/tty" (number 5, 0: the controlling terminal), readable and writable by everyone
  The usual links of /dev (/dev/fd, /dev/stdin, /dev/ptmx...) point into /proc and /dev/pts; without them shells and programs that open /dev/stdin or a new terminal fail. [man symlink(2)]
    init    link "/dev/fd" to "/proc/self/fd"
    init    link "/dev/stdin" to "/proc/self/fd/0"
    init    link "/dev/stdout" to "/proc/self/fd/1"
    init    link "/dev/stderr" to "/proc/self/fd/2"
    init    link "/dev/ptmx" to "pts/ptmx"

== Security: capabilities, seccomp and no_new_privs ==
  A keyring of its own keeps the kernel keys of the host (and of other containers) out of the container's reach; without it the container would share the session keyring of whoever started husk. [man keyrings(7)]
    init    join a new session keyring named "ID"
  Masking hides files of /proc and /sys that tell about or control the host (kernel memory, keys, timers) behind an empty read-only mount; without it the container could read host secrets there. [man proc(5)]
    init    hide "/proc/acpi" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/asound" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/kcore" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/keys" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/latency_stats" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/timer_list" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/timer_stats" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/sched_debug" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/sys/firmware" (an empty read-only directory over a directory, /dev/null over a file)
    init    hide "/proc/scsi" (an empty read-only directory over a directory, /dev/null over a file)
  prctl sets process attributes: no_new_privs makes sure no set-user-ID program can ever give the process more privileges, and keepcaps keeps its capabilities while it changes to the container's user (it would lose them all otherwise). [man prctl(2)]
    init    set no_new_privs: nothing it executes can gain privileges
  Every file husk had open beyond the standard ones is closed on exec; without it a leaked fd of the host (a directory, CVE-2024-21626) would let the container reach host files. [man close_range(2)]
    init    close every file descriptor from 3 up when the program starts
  The bounding set is the most capabilities the process and anything it runs can ever get; dropping all but the config's list means even root in the container, or a set-user-ID program, cannot get CAP_SYS_ADMIN back. [man capabilities(7)]
    init    keep only 3 capabilities (CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE) in the bounding set, drop every other
  Root's power is split into capabilities; the process keeps only the few the config lists (killing its own processes, binding low ports...), so root in the container cannot load kernel modules or mount filesystems. [man capset(2), capabilities(7)]
    init    set the capabilities: effective, permitted and ambient: 3 capabilities (CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE); inheritable: no capabilities

== User: become the container's user ==
    init    turn keeping capabilities across a change of user on
  The supplementary groups are replaced by the config's (process.user.additionalGids); without it the process would keep husk's groups, root's included. [man setgroups(2)]
    init    drop every supplementary group
  The process takes the group the config names (process.user.gid) before its user, while it still may; without it it would keep husk's group. [man setresgid(2)]
    init    take the group root (gid 0)
  The process becomes the user the config names (process.user.uid); without it, it would stay whoever started husk, root on most hosts. [man setresuid(2), credentials(7)]
    init    become the user root (uid 0)
    init    turn keeping capabilities across a change of user off

== Exec: start the container's program ==
  A new session makes the init the leader of its own session, detached from the terminal husk was called from; without it a Ctrl-C or hang-up meant for husk's terminal would reach the container. [man setsid(2)]
    init    start a new session led by the init
  Resource limits (process.rlimits) cap what one process may take, open files for example; without them it would inherit husk's. [man setrlimit(2)]
    init    limit open files to 1024 (at most 1024)
  The container's standard input, output and error are set to what husk was given (pipes or files); without it the process would write into the wrong place. [man dup2(2)]
    init    make fd N its standard input
    init    make fd N its standard output
    init    make fd N its standard error
  The process starts in the working directory the config names (process.cwd); without it it would start wherever the init happened to be. [man chdir(2)]
    init    change to the working directory "/"
  The program is looked up in the container's PATH, inside its own root filesystem, as a shell would; without it a bare name like "sh" could not be run. [man execvp(3)]
    init    check that "/probe" can be executed: found "/probe"
  \`husk start\` opens the exec fifo: the init, blocked on it, wakes and calls execve, which replaces it with the container's program (keeping its pid, PID 1 in its own pid namespace, its namespaces, cgroup and restrictions). [man fifo(7), execve(2)]
    husk    open the exec fifo "ROOT/ID/exec.fifo": the init executes the container's program

== Cleanup: remove what the container left behind ==
`;

describe('husk --explain', () => {
  it.skipIf(isRunc)('prints the steps of run in words, in the phases of docker run, each kind explained once', () => {
    const bundle = makeBundle({ args: ['echo', 'explained'] });
    const id = newId();
    const res = expectStatus(rt(['--explain', 'run', '--bundle', bundle.dir, id]), 0);
    expect(res.stdout).toBe('explained\n');
    const out = normalise(res.stderr, { bundle: bundle.dir, root: stateRoot(), id });
    const lines = out.split('\n');

    // The phases, in the order of docker run, each once.
    const headings = lines.filter((l) => l.startsWith('== '));
    expect(headings).toEqual([
      '== Bundle: the container\'s directory, its state and its exec fifo ==',
      '== Cgroup: a group of processes the kernel counts and limits ==',
      '== Namespaces: the container\'s own view of processes, network, hostname and mounts ==',
      '== Root filesystem: mounts, then pivot_root into the image ==',
      '== Devices: the few device files the container may use ==',
      '== Security: capabilities, seccomp and no_new_privs ==',
      '== User: become the container\'s user ==',
      '== Exec: start the container\'s program ==',
      '== Cleanup: remove what the container left behind ==',
    ]);
    // Each explanation once, each with its man page.
    const whys = lines.filter((l) => /^ {2}\S/.test(l));
    expect(new Set(whys).size).toBe(whys.length);
    for (const why of whys) expect(why).toMatch(/\[man [^\]]+\]$/);
    // Steps in words: no system call syntax, no flag names.
    const steps = lines.filter((l) => /^ {4}\S/.test(l));
    for (const step of steps) {
      expect(step).not.toMatch(/\b[a-z_0-9]+\(|\b(MS|CLONE|O|PR|SCM|RLIMIT|S)_[A-Z]+/);
      expect(step).not.toMatch(/another step/);
    }
    // No colour: stderr is a file.
    expect(res.stderr).not.toContain('\x1b[');
    // The host's cgroup steps are there, in their phases.
    const phaseOf = (pattern: RegExp) => {
      const at = lines.findIndex((l) => pattern.test(l));
      return lines.slice(0, at).reverse().find((l) => l.startsWith('== '));
    };
    expect(phaseOf(/create the cgroup directory/)).toMatch(/^== Cgroup/);
    expect(phaseOf(/move process N into the cgroup|the init started inside its cgroup/)).toMatch(/^== Cgroup/);
    expect(phaseOf(/remove the cgroup directory/)).toMatch(/^== Cleanup/);
    expect(phaseOf(/device rule|device rules as a BPF program|deny every device/)).toMatch(/^== Devices/);

    expect(lines.filter((l) => !hostDependent(l)).join('\n').trim()).toBe(TRANSCRIPT.trim());
  });

  it.skipIf(isRunc)('leaves --trace machine-exact: one [who] system-call line per step, no words', () => {
    const bundle = makeBundle({ args: ['echo', 'traced'] });
    const id = newId();
    const res = expectStatus(rt(['--trace', 'run', '--bundle', bundle.dir, id]), 0);
    const lines = normalise(res.stderr, { bundle: bundle.dir, root: stateRoot(), id }).trim().split('\n');
    for (const line of lines) expect(line).toMatch(/^\[(husk|door|stage1|init)\] \S/);
    expect(lines).toContain('[init] pivot_root(".", ".") in "BUNDLE/rootfs"; umount2(".", MNT_DETACH) = 0');
    expect(lines).toContain('[init] mount("proc", "/proc", "proc", 0, NULL) = 0');
    expect(lines).toContain('[init] prctl(PR_SET_NO_NEW_PRIVS, 1) = 0');
    expect(lines).toContain('[husk] mkfifo("ROOT/ID/exec.fifo", 0622) = 0');
    expect(lines).toContain('[husk] open("ROOT/ID/exec.fifo", O_RDONLY) and read 1 byte: the init execs');
    expect(res.stderr).not.toMatch(/^== /m);
  });

  it.skipIf(isRunc)('explains each call on its own: create, then start, then delete', () => {
    const bundle = makeBundle({ args: ['echo', 'hi'] });
    const id = newId();
    const created = expectStatus(rt(['--explain', 'create', '--bundle', bundle.dir, id]), 0);
    expect(created.stderr).toMatch(/^== Bundle/m);
    expect(created.stderr).toMatch(/pivot_root makes the image's root filesystem/);
    expect(created.stderr).not.toMatch(/open the exec fifo/);
    const started = expectStatus(rt(['--explain', 'start', id]), 0);
    expect(started.stderr).toMatch(/^== Exec: start the container's program ==\n {2}`husk start` opens the exec fifo.*\n {4}husk +open the exec fifo/m);
    const deleted = expectStatus(rt(['--explain', 'delete', '--force', id]), 0);
    expect(deleted.stderr).toMatch(/^== Cleanup/m);
    expect(deleted.stderr).toMatch(/remove the cgroup directory/);
  });
});

describe('husk --explain image run', () => {
  it.skipIf(isRunc)('adds the image: blobs checked by digest, layers unpacked, the overlay mounted and removed', async () => {
    const image = await buildImage({ layers: [probeLayer()], config: { Entrypoint: ['/probe'], Cmd: ['echo', 'from the image'] } });
    const layout = tempDir('layout-');
    writeLayout(layout, [{ tag: 'v1', image }]);
    const store = tempDir('store-');
    const res = expectStatus(rt(['--explain', 'image', 'run', '--store', store, '--rm', '-q', `oci:${layout}:v1`]), 0);
    expect(res.stdout).toBe('from the image\n');
    const lines = res.stderr.split('\n');
    const headings = lines.filter((l) => l.startsWith('== ')).map((l) => l.replace(/:.*/, ''));
    expect(headings.slice(0, 2)).toEqual(['== Image', '== Bundle']);
    expect(headings).toContain('== Cleanup');
    expect(res.stderr).toMatch(/^ {4}husk +check and keep sha256:[0-9a-f]{64} \(\d+ bytes\): its SHA-256 is the one the manifest names$/m);
    expect(res.stderr).toMatch(/^ {4}husk +unpack the layer sha256:[0-9a-f]{64} \(\d+ entries\)$/m);
    expect(res.stderr).toMatch(/^ {4}husk +mount an overlay of 1 layer on ".*\/rootfs", writes going to ".*"$/m);
    expect(res.stderr).toMatch(/^ {4}husk +unmount ".*\/rootfs"$/m);
    expect(res.stderr).toMatch(/whiteouts \(\.wh\. files\)/);
    expect(res.stderr).not.toMatch(/another step/);
  });
});
