#!/usr/bin/env bash
# Runs one command as root inside a throw-away QEMU guest whose only cgroup hierarchy is cgroup v2,
# and exits with the command's status.
#
#   test/vm/run-in-vm.sh [--timeout SECONDS] [--verbose] [--] COMMAND [ARG...]
#   test/vm/run-in-vm.sh --prepare        only fetch and unpack the kernel into the cache
#   test/vm/run-in-vm.sh --systemd [...]  the same, in a guest whose PID 1 is systemd (see below)
#   test/vm/run-in-vm.sh --systemd --prepare   also build the systemd guest's root into the cache
#
# The guest sees the host's root filesystem read-only (virtio-9p) under a tmpfs overlay, so it can
# write anywhere and its writes vanish with it; this repository read-write at the same path as on
# the host; cgroup2 alone at /sys/fs/cgroup (booted with cgroup_no_v1=all); tmpfs /tmp and /run.
# Nothing is built in the guest: node, the addon and the probe are the host's. The command runs
# from the repository's directory with stdin on /dev/null; its stdout and stderr (together) are
# copied here as they come. The guest powers off when it ends.
#
# Exit status: the command's; 124 when it did not finish within the timeout (default 600 s; the
# guest is killed); 125 when the guest could not run it (the reason and the guest's console on
# stderr).
#
# The kernel is Debian's linux-image-amd64, fetched with `apt-get download` and unpacked with
# `dpkg -x` into the cache (the host's /boot is never touched); the initramfs is static busybox
# (busybox-static), the virtio/9p/overlay modules of that kernel and test/vm/guest-init.sh.
#
# --systemd: the guest boots Debian 12's systemd as PID 1 (cgroup v2 alone, as on a stock host)
# from a root made with debootstrap from Debian's archive and cached in $HUSK_VM_CACHE/systemd-root
# (read-only over 9p, under a tmpfs overlay). The host's root is at /host in it, and node is bound
# from there; the repository is at the same path as on the host. The command runs as root from a
# unit (husk-vm.service) once dbus, logind and the user manager of `husk` (uid 1000, lingering,
# with cpu cpuset io memory pids delegated to user@.service) are up. The root also has podman
# and docker.io (their units masked) for the engines' checks. It is built once (about 2
# minutes, 590 MB); delete $HUSK_VM_CACHE/systemd-root to build it again.
#
# Environment:
#   HUSK_VM_CACHE    the cache directory (default /var/cache/husk-vm; delete it to fetch a newer kernel)
#   HUSK_VM_ACCEL    QEMU's -accel (default tcg,thread=multi: KVM does not boot a stock kernel on a
#                    PVM host such as the one this was written on; kvm is much faster where it works)
#   HUSK_VM_MEMORY   guest memory (default 2G); HUSK_VM_CPUS  guest CPUs (default 2)
#   HUSK_VM_VERBOSE  1: also copy the guest's console to stderr, and print the boot time
#   HUSK_VM_APPEND   more kernel parameters (e.g. loglevel=7 to see the kernel's messages)
#   HUSK_VM_BOOT_TIMEOUT  seconds for the guest to start the command (default 120; it takes
#                    3-5 s): a guest that hangs while booting is killed and booted again, at most
#                    three times in all
#   HUSK_* and CI are passed on to the command in the guest.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${HUSK_VM_CACHE:-/var/cache/husk-vm}
accel=${HUSK_VM_ACCEL:-tcg,thread=multi}
memory=${HUSK_VM_MEMORY:-2G}
cpus=${HUSK_VM_CPUS:-2}
verbose=${HUSK_VM_VERBOSE:-0}
timeout=600
boot_timeout=${HUSK_VM_BOOT_TIMEOUT:-120}
boot_attempts=3
prepare_only=0
systemd=0

# The modules the initramfs loads, in this order (each needs the ones before it). loop is for
# tests that want a block device (io limits on a loop device).
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  9pnet 9pnet_virtio netfs fscache 9p overlay loop)

die() {
  echo "run-in-vm: $*" >&2
  exit 125
}

usage() { # STATUS: prints the comment above
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit "$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout=${2:?--timeout needs a number of seconds}; shift 2 ;;
    --timeout=*) timeout=${1#--timeout=}; shift ;;
    --verbose | -v) verbose=1; shift ;;
    --prepare) prepare_only=1; shift ;;
    --systemd) systemd=1; shift ;;
    --help | -h) usage 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[[ "$timeout" =~ ^[0-9]+$ && "$timeout" -gt 0 ]] || die "--timeout must be a positive number of seconds, not $timeout"
[[ "$boot_timeout" =~ ^[0-9]+$ && "$boot_timeout" -gt 0 ]] || die "HUSK_VM_BOOT_TIMEOUT must be a positive number of seconds, not $boot_timeout"
[ $prepare_only = 1 ] || [ $# -gt 0 ] || usage 125
[ "$(id -u)" -eq 0 ] || die "must run as root (the guest shares the host's whole root filesystem)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing (apt-get install qemu-system-x86)"

# Whatever this run started or made goes when it ends, however it ends.
qemu_pid='' tail_pids=() work='' run=''
cleanup() {
  # $qemu_pid is `timeout`, which passes a TERM on to QEMU, waits for it and reaps it (and
  # KILLs it after 5 s).
  if [ -n "$qemu_pid" ]; then
    kill -TERM "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  for pid in "${tail_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work" "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------------ the kernel

# Writes the uncompressed kernel (an ELF vmlinux) inside the bzImage IMAGE to OUT: finds where a
# compressed payload starts by its magic bytes and decompresses from there, as the kernel's
# scripts/extract-vmlinux does. Booting it saves the guest from decompressing itself, which takes
# seconds under TCG. Decompressors complain about the bytes after the payload; the ELF header of
# the result is what tells success.
extract_vmlinux() {
  local image=$1 out=$2 format tool magic offset
  for format in 'xz \xfd7zXZ\x00' 'zstd \x28\xb5\x2f\xfd' 'gzip \x1f\x8b\x08' 'lz4 \x02\x21\x4c\x18' \
    'bzip2 BZh' 'lzma \x5d\x00\x00\x00'; do
    tool=${format%% *} magic=${format#* }
    command -v "$tool" >/dev/null || continue
    for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
      tail -c "+$((offset + 1))" "$image" | "$tool" -dcq >"$out" 2>/dev/null || true
      [ "$(head -c 4 "$out")" = $'\x7fELF' ] && return 0
    done
  done
  rm -f "$out"
  return 1
}

# Fills $cache/kernel with vmlinux, config, version and modules/<name>.ko (uncompressed) for the
# modules above that are not built in. Done once; concurrent runs wait on the cache's lock.
prepare_kernel() {
  mkdir -p "$cache"
  exec 9>"$cache/lock"
  flock 9
  if [ -f "$cache/kernel/version" ]; then
    exec 9>&-
    return
  fi
  local package version tree module file
  work=$(mktemp -d "$cache/prepare.XXXXXX")
  package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  if [ -z "$package" ] || ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$package" >/dev/null 2>&1); then
    apt-get update -q >/dev/null
    package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$package" ] || die "apt knows no linux-image-amd64"
    # -o APT::Sandbox::User=root: the cache directory is not the _apt user's to write.
    (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$package" >/dev/null) ||
      die "apt-get download $package failed"
  fi
  dpkg -x "$work"/*.deb "$work/root"
  version=$(ls "$work/root/lib/modules")
  tree=$work/root/lib/modules/$version
  mkdir -p "$work/kernel/modules"
  extract_vmlinux "$work/root/boot/vmlinuz-$version" "$work/kernel/vmlinux" ||
    die "found no compressed kernel that decompresses in $work/root/boot/vmlinuz-$version"
  cp "$work/root/boot/config-$version" "$work/kernel/config"
  : >"$work/kernel/modules.list"
  for module in "${modules[@]}"; do
    if grep -q "/$module\.ko$" "$tree/modules.builtin"; then continue; fi
    file=$(find "$tree/kernel" -name "$module.ko" -o -name "$module.ko.*" | head -n 1)
    [ -n "$file" ] || die "kernel $version has no module $module, built in or not"
    case "$file" in
      *.ko) cp "$file" "$work/kernel/modules/$module.ko" ;;
      *.ko.xz) xz -dc "$file" >"$work/kernel/modules/$module.ko" ;;
      *.ko.zst) zstd -dcq "$file" >"$work/kernel/modules/$module.ko" ;;
      *.ko.gz) gzip -dc "$file" >"$work/kernel/modules/$module.ko" ;;
      *) die "cannot decompress $file" ;;
    esac
    echo "$module" >>"$work/kernel/modules.list"
  done
  echo "$version" >"$work/kernel/version"
  rm -rf "$cache/kernel"
  mv "$work/kernel" "$cache/kernel"
  rm -rf "$work"
  work=''
  exec 9>&-
}

# The Debian packages of the systemd guest's root, and what is done to it once it is unpacked.
# Bump systemd_root_recipe when either changes: a cached root of another recipe is built again.
systemd_root_recipe=3
systemd_root_packages=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,uidmap,procps,kmod
# Installed after, with apt in the new root: debootstrap's own resolver fails on podman's.
systemd_root_apt_packages=(podman docker.io)
prepare_systemd_root() {
  mkdir -p "$cache"
  exec 9>"$cache/lock"
  flock 9
  if [ "$(cat "$cache/systemd-root/etc/husk-vm-recipe" 2>/dev/null)" = "$systemd_root_recipe" ]; then
    exec 9>&-
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  work=$(mktemp -d "$cache/prepare.XXXXXX")
  local root=$work/root
  debootstrap --variant=minbase --include="$systemd_root_packages" bookworm "$root" http://deb.debian.org/debian \
    >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  mount -t proc proc "$root/proc"
  if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${systemd_root_apt_packages[@]}" \
    >>"$work/debootstrap.log" 2>&1; then
    umount "$root/proc"
    tail -n 20 "$work/debootstrap.log" >&2
    die "apt-get install ${systemd_root_apt_packages[*]} in the systemd root failed"
  fi
  umount "$root/proc"
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
  echo husk-vm >"$root/etc/hostname"
  : >"$root/etc/machine-id"
  # The rootless checks' user: its manager runs from boot (linger) and gets every controller
  # (Debian's user@.service delegates only memory and pids), as rootless Podman's docs ask.
  chroot "$root" useradd --create-home --uid 1000 --shell /bin/sh husk
  echo 'husk:100000:65536' >"$root/etc/subuid"
  echo 'husk:100000:65536' >"$root/etc/subgid"
  mkdir -p "$root/var/lib/systemd/linger" "$root/etc/systemd/system/user@.service.d"
  : >"$root/var/lib/systemd/linger/husk"
  printf '[Service]\nDelegate=cpu cpuset io memory pids\n' >"$root/etc/systemd/system/user@.service.d/delegate.conf"
  # Nothing to log in on, nothing to wait for: only what the checks need starts.
  for unit in getty@.service serial-getty@.service console-getty.service systemd-timesyncd.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-networkd-wait-online.service \
    systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    docker.service docker.socket containerd.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  echo "$systemd_root_recipe" >"$root/etc/husk-vm-recipe"
  rm -rf "$cache/systemd-root"
  mv "$root" "$cache/systemd-root"
  rm -rf "$work"
  work=''
  exec 9>&-
}

prepare_kernel
[ $systemd = 0 ] || prepare_systemd_root
[ $prepare_only = 0 ] || exit 0

# ------------------------------------------------------------------------------------- the run

# 9p shares are named on QEMU's command line (a comma must be doubled there) and the repository's
# path goes on the kernel's command line, which splits at spaces.
case "$repo" in *[[:space:]]*) die "the repository's path must not contain spaces: $repo" ;; esac
busybox=$(command -v busybox) || die "busybox is missing (apt-get install busybox-static)"
if head -c 4096 "$busybox" | grep -qa ld-linux; then die "$busybox is dynamically linked (apt-get install busybox-static)"; fi

run=$(mktemp -d /tmp/husk-vm.XXXXXX)
# The initramfs: uncompressed (the guest would spend longer decompressing it than QEMU loading it).
initramfs=$run/initramfs
mkdir -p "$initramfs/bin" "$initramfs/modules"
cp "$busybox" "$initramfs/bin/busybox"
cp "$here/guest-init.sh" "$initramfs/init"
chmod 0755 "$initramfs/init"
cp "$cache/kernel/modules/"*.ko "$initramfs/modules/"
cp "$cache/kernel/modules.list" "$initramfs/modules.list"
(cd "$initramfs" && find . | busybox cpio -o -H newc 2>/dev/null) >"$run/initramfs.cpio"
rm -rf "$initramfs"

# The command as a script, /run/husk-vm/command in the guest, run there by the host's /bin/sh
# (dash on Debian): the environment, then the command from the repository's directory.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8'
  for name in $(compgen -e); do
    case "$name" in HUSK_* | CI) echo "export $name=$(quote "${!name}")" ;; esac
  done
  echo 'cut -d" " -f1 /proc/uptime >/run/husk-vm/started'
  echo "cd $(quote "$repo") || exit 125"
  printf 'exec'
  for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
  echo
} >"$run/command"

share() { # TAG PATH [OPTIONS]: a virtio-9p share of a host directory
  echo "-fsdev local,id=$1,path=${2//,/,,},security_model=none,multidevs=remap${3:+,$3}"
  echo "-device virtio-9p-pci,fsdev=$1,mount_tag=$1"
}
# --systemd: the cached root as one more share, and the initramfs hands over to its systemd.
init_append='' sysroot_share=''
if [ $systemd = 1 ]; then
  init_append='husk_vm.init=systemd systemd.show_status=0 '
  sysroot_share=$(share sysroot "$cache/systemd-root" readonly=on)
fi
# cryptomgr.notests: the kernel's crypto self-tests are of no use here, and one of them is where a
# guest was seen to hang while booting under load.
# The repository's path has no spaces (checked above), so $(share ...) splits into words safely.
# shellcheck disable=SC2046
qemu=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
  -accel "$accel" -cpu max -smp "$cpus" -m "$memory"
  -kernel "$cache/kernel/vmlinux" -initrd "$run/initramfs.cpio"
  -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 cryptomgr.notests husk_vm.repo=$repo $init_append${HUSK_VM_APPEND:-}"
  -serial "file:$run/console" -serial "file:$run/output"
  $(share hostroot / readonly=on) $(share repo "$repo") $(share run "$run") $sysroot_share)

# Boots the guest and waits for it to end. A guest whose command has not started after
# $boot_timeout s hung while booting (seen under load: a soft lockup in the kernel's own start-up
# under TCG): it is killed, and boot returns 2 so that another is booted.
boot() {
  : >"$run/output"
  : >"$run/console"
  rm -f "$run/started"
  start=$(date +%s.%N)
  timeout --kill-after=5 "$timeout" "${qemu[@]}" </dev/null >"$run/qemu.log" 2>&1 &
  qemu_pid=$!
  tail -s 0.2 -n +1 -f --pid="$qemu_pid" "$run/output" &
  tail_pids+=($!)
  if [ "$verbose" = 1 ]; then
    tail -s 0.2 -n +1 -f --pid="$qemu_pid" "$run/console" >&2 &
    tail_pids+=($!)
  fi
  local waited=0 hung=0
  while [ ! -f "$run/started" ] && kill -0 "$qemu_pid" 2>/dev/null; do
    if [ "$waited" -ge $((boot_timeout * 5)) ]; then
      hung=1
      kill -TERM "$qemu_pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  qemu_status=0
  wait "$qemu_pid" || qemu_status=$?
  qemu_pid=''
  end=$(date +%s.%N)
  for pid in "${tail_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  tail_pids=()
  if [ "$hung" = 1 ]; then
    echo "run-in-vm: the guest did not start the command within $boot_timeout s; its console's last lines:" >&2
    tail -n 5 "$run/console" | sed 's/^/console: /' >&2
    return 2
  fi
  return 0
}

for attempt in $(seq 1 "$boot_attempts"); do
  if boot; then break; fi
  if [ "$attempt" -eq "$boot_attempts" ]; then
    echo "run-in-vm: the guest hung while booting $boot_attempts times" >&2
    exit 125
  fi
  echo "run-in-vm: booting it again ($((attempt + 1)) of $boot_attempts)" >&2
done

[ "$verbose" != 1 ] || sed 's/^/qemu: /' "$run/qemu.log" >&2
if [ "$verbose" = 1 ] && [ -f "$run/started" ]; then
  awk -v start="$start" -v end="$end" -v up="$(cat "$run/started")" 'BEGIN {
    printf "run-in-vm: the command started %.1f s after the kernel; the guest ran %.1f s in all\n", up, end - start }' >&2
fi
if [ -f "$run/status" ]; then
  exit "$(cat "$run/status")"
fi
{
  if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    echo "run-in-vm: the command did not finish within $timeout s; the guest was killed"
  else
    echo "run-in-vm: the guest did not run the command (qemu exited with status $qemu_status)"
  fi
  sed 's/^/qemu: /' "$run/qemu.log"
  echo "run-in-vm: the guest's console (last 60 lines):"
  tail -n 60 "$run/console" | sed 's/^/console: /'
} >&2
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then exit 124; fi
exit 125
