#!/bin/sh
# test/vm/systemd/podman.sh REPO_DIR: Podman with its systemd cgroup manager (the default where
# systemd is PID 1) runs husk containers: Podman asks husk for `--systemd-cgroup` with
# cgroupsPath "machine.slice:libpod:<id>". Runs as root in the systemd guest
# (test/vm/run-in-vm.sh --systemd, whose root has Debian's podman); the container's rootfs is a
# directory (--rootfs: the guest has no network to pull from), Podman's storage vfs on the
# guest's tmpfs. Prints `ok NAME` / `not ok NAME: why`; exits 1 if any failed.
set -u
repo=${1:?usage: podman.sh REPO_DIR}
failed=0
scratch=$(mktemp -d /tmp/podman.XXXXXX)
rootfs=$scratch/rootfs

ok() { echo "ok $1"; }
not_ok() {
  echo "not ok $1: $2"
  failed=1
}
pm() {
  timeout 300 podman --runtime "$repo/bin/husk" --cgroup-manager systemd --storage-driver vfs \
    --root "$scratch/storage" --runroot "$scratch/run" --events-backend file "$@"
}
cleanup() {
  pm rm -f -a >/dev/null 2>&1
  rm -rf "$scratch"
}
trap cleanup EXIT

if ! command -v podman >/dev/null; then
  not_ok 'podman is installed in the guest' "no podman (delete \$HUSK_VM_CACHE/systemd-root to build it again)"
  exit 1
fi
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/etc"
cp "$repo/build/Release/probe" "$rootfs/probe"
busybox=/host/bin/busybox
[ -x "$busybox" ] || busybox=$(command -v busybox)
cp "$busybox" "$rootfs/bin/busybox"
for tool in sh sleep cat; do ln -sf busybox "$rootfs/bin/$tool"; done

name='podman run -d: husk starts libpod-<id>.scope in machine.slice with the limits'
out=$(pm run -d --name c1 --network none --memory 64m --pids-limit 20 --rootfs "$rootfs" /bin/sleep 100000 2>&1)
if [ $? -ne 0 ]; then
  not_ok "$name" "podman run failed: $out"
  exit 1
fi
id=$(pm inspect --format '{{.Id}}' c1 2>&1)
pid=$(pm inspect --format '{{.State.Pid}}' c1 2>&1)
unit=libpod-$id.scope
systemctl status --no-pager "$unit" 2>&1 | sed 's/^/  systemctl status: /'
bad=''
cgroup=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>&1)
[ "$cgroup" = "/machine.slice/$unit" ] || bad="$bad cgroup=$cgroup;"
[ "$(systemctl show -p MemoryMax --value "$unit")" = 67108864 ] || bad="$bad MemoryMax=$(systemctl show -p MemoryMax --value "$unit");"
[ "$(systemctl show -p TasksMax --value "$unit")" = 20 ] || bad="$bad TasksMax=$(systemctl show -p TasksMax --value "$unit");"
[ "$(cat "/sys/fs/cgroup/machine.slice/$unit/memory.max" 2>&1)" = 67108864 ] || bad="$bad memory.max=$(cat "/sys/fs/cgroup/machine.slice/$unit/memory.max" 2>&1);"
if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi

name='podman rm -f: no unit and no cgroup left'
bad=''
out=$(pm rm -f c1 2>&1) || bad=" podman rm failed: $out;"
[ "$(systemctl show -p LoadState --value "$unit")" = not-found ] || bad="$bad LoadState=$(systemctl show -p LoadState --value "$unit");"
[ ! -d "/sys/fs/cgroup/machine.slice/$unit" ] || bad="$bad the cgroup is still there;"
if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
exit $failed
