#!/bin/sh
# test/vm/systemd/docker.sh REPO_DIR: Docker with native.cgroupdriver=systemd (its default where
# systemd is PID 1 on cgroup v2) runs husk containers: dockerd asks husk for `--systemd-cgroup`
# with cgroupsPath "system.slice:docker:<id>". Runs as root in the systemd guest
# (test/vm/run-in-vm.sh --systemd, whose root has Debian's docker.io, its units masked): a
# dockerd of this script's own (its own containerd, data on the guest's tmpfs, vfs storage, no
# bridge or iptables), an image imported from a directory (the guest has no network to pull
# from), AppArmor unconfined (the guest's kernel has AppArmor, its root no apparmor_parser). Prints `ok NAME` / `not ok NAME: why`; exits 1 if any failed.
set -u
repo=${1:?usage: docker.sh REPO_DIR}
failed=0
scratch=$(mktemp -d /tmp/docker.XXXXXX)
rootfs=$scratch/rootfs
sock=unix://$scratch/docker.sock
dockerd_pid=''

ok() { echo "ok $1"; }
not_ok() {
  echo "not ok $1: $2"
  failed=1
}
dk() { timeout 300 docker -H "$sock" "$@"; }
cleanup() {
  dk rm -f c1 >/dev/null 2>&1
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null
    i=0
    while kill -0 "$dockerd_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

if ! command -v dockerd >/dev/null; then
  not_ok 'docker is installed in the guest' "no dockerd (delete \$HUSK_VM_CACHE/systemd-root to build it again)"
  exit 1
fi
dockerd -H "$sock" --data-root "$scratch/data" --exec-root "$scratch/exec" --pidfile "$scratch/dockerd.pid" \
  --exec-opt native.cgroupdriver=systemd --add-runtime "husk=$repo/bin/husk" --storage-driver vfs \
  --bridge none --iptables=false --ip6tables=false >"$scratch/dockerd.log" 2>&1 &
dockerd_pid=$!
i=0
until dk version >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 300 ] || ! kill -0 "$dockerd_pid" 2>/dev/null; then
    not_ok 'dockerd starts' "$(tail -n 5 "$scratch/dockerd.log")"
    exit 1
  fi
  sleep 0.5
done

mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/etc"
cp "$repo/build/Release/probe" "$rootfs/probe"
busybox=/host/bin/busybox
[ -x "$busybox" ] || busybox=$(command -v busybox)
cp "$busybox" "$rootfs/bin/busybox"
for tool in sh sleep cat; do ln -sf busybox "$rootfs/bin/$tool"; done
tar -C "$rootfs" -c . | dk import - husk-probe >/dev/null

name='docker run -d --runtime husk: husk starts docker-<id>.scope in system.slice with the limits'
out=$(dk run -d --runtime husk --security-opt apparmor=unconfined --name c1 --network none --memory 64m --pids-limit 20 husk-probe /bin/sleep 100000 2>&1)
if [ $? -ne 0 ]; then
  not_ok "$name" "docker run failed: $out; dockerd: $(tail -n 5 "$scratch/dockerd.log")"
  exit 1
fi
id=$(dk inspect --format '{{.Id}}' c1 2>&1)
pid=$(dk inspect --format '{{.State.Pid}}' c1 2>&1)
unit=docker-$id.scope
systemctl status --no-pager "$unit" 2>&1 | sed 's/^/  systemctl status: /'
bad=''
cgroup=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>&1)
[ "$cgroup" = "/system.slice/$unit" ] || bad="$bad cgroup=$cgroup;"
[ "$(systemctl show -p MemoryMax --value "$unit")" = 67108864 ] || bad="$bad MemoryMax=$(systemctl show -p MemoryMax --value "$unit");"
[ "$(systemctl show -p TasksMax --value "$unit")" = 20 ] || bad="$bad TasksMax=$(systemctl show -p TasksMax --value "$unit");"
[ "$(cat "/sys/fs/cgroup/system.slice/$unit/memory.max" 2>&1)" = 67108864 ] || bad="$bad memory.max=$(cat "/sys/fs/cgroup/system.slice/$unit/memory.max" 2>&1);"
if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi

name='docker rm -f: no unit and no cgroup left'
bad=''
out=$(dk rm -f c1 2>&1) || bad=" docker rm failed: $out;"
[ "$(systemctl show -p LoadState --value "$unit")" = not-found ] || bad="$bad LoadState=$(systemctl show -p LoadState --value "$unit");"
[ ! -d "/sys/fs/cgroup/system.slice/$unit" ] || bad="$bad the cgroup is still there;"
if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
exit $failed
