#!/bin/busybox sh
# /init of the guest's initramfs (see run-in-vm.sh, which builds it). Runs as PID 1 under static
# busybox: loads the virtio/9p/overlay modules, builds the root the command runs in, runs the
# command as root, records its exit status and powers off.
#
#   /lower     the host's root filesystem, over virtio-9p, read-only
#   /rw        a tmpfs holding the overlay's upper and work dirs (an overlay upper dir cannot
#              live on 9p, and the guest must be able to write anywhere)
#   /newroot   overlay(/lower + /rw) with the usual kernel filesystems, cgroup2 alone at
#              /sys/fs/cgroup, tmpfs /tmp and /run, the repository read-write at the same path
#              as on the host, and this run's directory at /run/husk-vm
#
# The command runs chrooted into /newroot (a mount point, so pivot_root works inside it) with
# its stdout and stderr on the second serial port; this shell stays PID 1 and reaps orphans.
# Anything that goes wrong here is printed on the console (the first serial port) and the guest
# powers off without a status file, which run-in-vm.sh reports with the console log.

/bin/busybox mkdir -p /proc /sys /dev /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

say() { echo "husk-vm: $*" >/dev/console; }
fail() {
  say "init: $*"
  poweroff -f
  sleep 10 # poweroff -f does not return; should it, PID 1 exiting panics and panic=-1 reboots
  exit 1
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"

# Modules in dependency order (run-in-vm.sh wrote the list, leaving out any built in).
for module in $(cat /modules.list); do
  insmod "/modules/$module.ko" || fail "insmod $module"
done

# The repository's path and the init (husk_vm.init=systemd: see below), from the kernel
# command line.
INIT=shell
for word in $(cat /proc/cmdline); do
  case "$word" in
    husk_vm.repo=*) REPO=${word#husk_vm.repo=} ;;
    husk_vm.init=*) INIT=${word#husk_vm.init=} ;;
  esac
done
[ -n "$REPO" ] || fail "no husk_vm.repo= on the kernel command line"

# msize: 9p's largest message; the default (8 KiB with virtio in this kernel) makes reading
# node's 100 MB binary slow. The host's root never changes under the guest's feet while it runs,
# so it may be cached freely; the repository and the run directory are written on both sides.
share_options=trans=virtio,version=9p2000.L,msize=512000

# husk_vm.init=systemd: the root is the cached Debian root (share "sysroot", read-only) under a
# tmpfs overlay, with the host's root at /host (node is bound from there), the repository at its
# host path and this run's directory at /run/husk-vm; systemd becomes PID 1 (switch_root) and
# mounts the rest itself (cgroup2 alone: the kernel was booted with cgroup_no_v1=all). The
# command runs from husk-vm.service once dbus, logind and the user manager of uid 1000 are up;
# the service records its status and powers off.
if [ "$INIT" = systemd ]; then
  r=/newroot
  mkdir -p /lower /rw $r
  mount -t 9p -o "$share_options,ro,cache=loose" sysroot /lower || fail "mount the systemd root (9p)"
  mount -t tmpfs -o mode=0755 rw /rw || fail "mount /rw"
  mkdir -p /rw/upper /rw/work
  mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay $r || fail "mount the overlay root"
  mkdir -p $r/host "$r$REPO"
  mount -t 9p -o "$share_options,ro,cache=loose" hostroot $r/host || fail "mount the host's root (9p)"
  : >$r/usr/bin/node
  mount --bind $r/host/usr/bin/node $r/usr/bin/node || fail "bind node from the host"
  mount -t 9p -o "$share_options,cache=mmap" repo "$r$REPO" || fail "mount the repository (9p) at $REPO"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $r/run || fail "mount $r/run"
  mkdir -p $r/run/husk-vm
  mount -t 9p -o "$share_options,cache=none" run $r/run/husk-vm || fail "mount the run directory (9p)"
  cat >$r/usr/local/sbin/husk-vm-command <<'EOF'
#!/bin/sh
# The command, its output raw on the second serial port, its status for run-in-vm.sh; then off.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
/bin/sh /run/husk-vm/command </dev/null >/dev/ttyS1 2>&1
echo $? >/run/husk-vm/status.tmp && mv /run/husk-vm/status.tmp /run/husk-vm/status
sync
systemctl poweroff --force --force
EOF
  chmod 0755 $r/usr/local/sbin/husk-vm-command
  cat >$r/etc/systemd/system/husk-vm.service <<'EOF'
[Unit]
Description=the husk VM command
Wants=dbus.service systemd-logind.service user@1000.service
After=dbus.service systemd-logind.service user@1000.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/husk-vm-command
EOF
  mkdir -p $r/etc/systemd/system/multi-user.target.wants
  ln -sf ../husk-vm.service $r/etc/systemd/system/multi-user.target.wants/husk-vm.service
  ip link set lo up
  say "starting systemd"
  exec switch_root $r /lib/systemd/systemd
fi
mkdir -p /lower /rw /newroot
mount -t 9p -o "$share_options,ro,cache=loose" hostroot /lower || fail "mount the host's root (9p)"
mount -t tmpfs -o mode=0755 rw /rw || fail "mount /rw"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  fail "mount the overlay root"

r=/newroot
mount -t proc proc $r/proc || fail "mount $r/proc"
mount -t sysfs sysfs $r/sys || fail "mount $r/sys"
# cgroup v2 alone (the kernel was booted with cgroup_no_v1=all), with the options systemd uses.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $r/sys/fs/cgroup || fail "mount cgroup2"
mount -t devtmpfs devtmpfs $r/dev || fail "mount $r/dev"
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts $r/dev/pts || fail "mount $r/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm $r/dev/shm || fail "mount $r/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $r/tmp || fail "mount $r/tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $r/run || fail "mount $r/run"
mkdir -p "$r$REPO" $r/run/husk-vm
mount -t 9p -o "$share_options,cache=mmap" repo "$r$REPO" || fail "mount the repository (9p) at $REPO"
mount -t 9p -o "$share_options,cache=none" run $r/run/husk-vm || fail "mount the run directory (9p)"
# Shared propagation, as systemd leaves a host: runtimes must cope with it.
mount --make-rshared $r || fail "make $r shared"
hostname husk-vm
ip link set lo up

# The command's output goes raw (no \r added) to the second serial port, which the host copies.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
say "running the command"
chroot $r /bin/sh /run/husk-vm/command </dev/null >/dev/ttyS1 2>&1
status=$?
echo "$status" >$r/run/husk-vm/status.tmp && mv $r/run/husk-vm/status.tmp $r/run/husk-vm/status
say "the command exited with status $status"
sync
poweroff -f
