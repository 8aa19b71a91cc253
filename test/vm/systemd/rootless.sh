#!/bin/sh
# test/vm/systemd/rootless.sh REPO_DIR: rootless husk with --systemd-cgroup gets its limits from
# the user's own manager (user@1000.service, to which the guest's root delegates cpu, cpuset,
# io, memory and pids), as rootless Podman's runc does. Runs as root in the systemd guest
# (test/vm/run-in-vm.sh --systemd) and runs husk as `husk` (uid 1000) inside that user's
# manager (systemd-run --user -M husk@), so husk and the container start where a logged-in
# user's processes are. Prints `ok NAME` / `not ok NAME: why`; exits 1 if any failed.
set -u
repo=${1:?usage: rootless.sh REPO_DIR}
failed=0
scratch=$(mktemp -d /tmp/rootless.XXXXXX)
chmod 0755 "$scratch"
unit=husk-rootless.scope
dir=/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/$unit

ok() { echo "ok $1"; }
not_ok() {
  echo "not ok $1: $2"
  failed=1
}
# as_user COMMAND...: in a transient service of husk's user manager, its output here. The
# output goes through a file: a detached container keeps what it inherited open, and
# systemd-run --pipe would wait for it. Each call in a process of its own (HUSK_SERVER=0): the
# service's leftovers are killed when it ends.
as_user() {
  : >"$scratch/as_user.out"
  chown husk: "$scratch/as_user.out"
  systemd-run --quiet --user -M husk@ --wait --collect -E HUSK_SERVER=0 -- sh -c '"$0" "$@" >>'"$scratch/as_user.out"' 2>&1' "$@" </dev/null
  code=$?
  cat "$scratch/as_user.out"
  return $code
}
hk() { as_user "$repo/bin/husk" --root "$scratch/state" --systemd-cgroup "$@"; }
show() { systemctl --user -M husk@ show -p "$1" --value $unit 2>&1; }
expect() { [ "$2" = "$3" ] || bad="$bad $1=$2 (want $3);"; }

cleanup() {
  hk delete --force rootless >/dev/null 2>&1
  rm -rf "$scratch"
}
trap cleanup EXIT

b=$scratch/bundle
mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
cp "$repo/build/Release/probe" "$b/rootfs/probe"
busybox=/host/bin/busybox
[ -x "$busybox" ] || busybox=$(command -v busybox)
cp "$busybox" "$b/rootfs/bin/busybox"
for tool in sh sleep; do ln -sf busybox "$b/rootfs/bin/$tool"; done
"$repo/bin/husk" spec --rootless --bundle "$b"
node -e '
  const fs = require("fs"), f = process.argv[1], c = JSON.parse(fs.readFileSync(f, "utf8"));
  c.process.terminal = false;
  c.process.args = ["/bin/sh", "-c", "sleep 100000"];
  c.linux.cgroupsPath = ":husk:rootless";
  // `spec --rootless` maps the uid that ran it (root here) to 0: the user'"'"'s, as it would be.
  c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  // No cgroup2 mount inside: it fails with EBUSY for this rootless container (with or without
  // a cgroup namespace), which is not the driver'"'"'s business; the checks read the cgroup from outside.
  c.mounts = c.mounts.filter((m) => m.destination !== "/sys/fs/cgroup");
  c.linux.resources = { memory: { limit: 67108864 }, pids: { limit: 20 }, cpu: { shares: 512 } };
  fs.writeFileSync(f, JSON.stringify(c, null, 2));
' "$b/config.json"
chown -R husk: "$scratch"

name='a rootless container gets husk-rootless.scope in the user manager'"'"'s user.slice, with its limits'
out=$(hk run -d --bundle "$b" rootless 2>&1)
if [ $? -ne 0 ]; then
  not_ok "$name" "run -d failed: $out"
  exit 1
fi
systemctl --user -M husk@ status --no-pager $unit 2>&1 | sed 's/^/  systemctl --user status: /'
bad=''
expect ActiveState "$(show ActiveState)" active
expect Delegate "$(show Delegate)" yes
expect MemoryMax "$(show MemoryMax)" 67108864
expect TasksMax "$(show TasksMax)" 20
expect CPUWeight "$(show CPUWeight)" 59
expect memory.max "$(cat $dir/memory.max 2>&1)" 67108864
expect pids.max "$(cat $dir/pids.max 2>&1)" 20
expect cpu.weight "$(cat $dir/cpu.weight 2>&1)" 59
if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi

name='rootless update: SetUnitProperties on the user manager and the files'
bad=''
out=$(hk update --pids-limit 30 rootless 2>&1) || bad=" update failed: $out;"
expect TasksMax "$(show TasksMax)" 30
expect pids.max "$(cat $dir/pids.max 2>&1)" 30
if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi

name='rootless delete leaves no unit and no cgroup'
bad=''
out=$(hk delete --force rootless 2>&1) || bad=" delete failed: $out;"
expect LoadState "$(show LoadState)" not-found
[ ! -d "$dir" ] || bad="$bad $dir is still there;"
if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
exit $failed
