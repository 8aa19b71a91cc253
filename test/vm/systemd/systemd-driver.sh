#!/bin/sh
# test/vm/systemd/systemd-driver.sh REPO_DIR: husk's systemd cgroup driver (--systemd-cgroup),
# proven in a guest whose PID 1 is systemd on cgroup v2 alone (test/vm/run-in-vm.sh --systemd).
# Runs as root; husk is REPO/bin/husk, the probe REPO/build/Release/probe, busybox the host's
# (/host/bin/busybox). Prints `ok NAME` or `not ok NAME: why` per check; exits 1 if any failed.
#
# The values checked are the ones runc's systemd driver sends and writes for the same config
# (libcontainer/cgroups/systemd v2.go and common.go, then fs2.Set on the files):
#   memory.limit 64 MiB, reservation 32 MiB, swap 96 MiB  MemoryMax=67108864 MemoryLow=33554432
#                                  MemorySwapMax=33554432; memory.max, memory.low, memory.swap.max the same
#   cpu.shares 512                 CPUWeight=59 (the shares-to-weight conversion); cpu.weight 59
#   cpu.quota 33333, period 100000 CPUQuotaPerSecUSec=340ms (rounded up to 10 ms per s),
#                                  CPUQuotaPeriodUSec=100ms; cpu.max "33333 100000" (the file
#                                  gets the exact value after systemd's)
#   cpu.cpus "0", mems "0"         AllowedCPUs=0 AllowedMemoryNodes=0; cpuset.cpus, cpuset.mems 0
#   pids.limit 20                  TasksMax=20; pids.max 20
#   blockIO.weight 500             IOWeight=4950
#   devices (runc's defaults)      DevicePolicy=strict, DeviceAllow= /dev/char/1:3 rwm ...
set -u
repo=${1:?usage: systemd-driver.sh REPO_DIR}
probe=$repo/build/Release/probe
# The host's static busybox (the guest sees the host at /host); elsewhere (the Vagrant machine) its own.
BUSYBOX=${BUSYBOX:-/host/bin/busybox}
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox)
failed=0
scratch=$(mktemp -d /tmp/systemd-driver.XXXXXX)
chmod 0755 "$scratch"
state=$scratch/state

ok() { echo "ok $1"; }
not_ok() {
  echo "not ok $1: $2"
  failed=1
}

hk() { "$repo/bin/husk" --root "$state" --systemd-cgroup "$@"; }
show() { systemctl show -p "$2" --value "$1" 2>&1; }

cleanup() {
  for id in $(ls "$state" 2>/dev/null); do hk delete --force "$id" >/dev/null 2>&1; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# bundle NAME ARGS_JSON RESOURCES_JSON CGROUPS_PATH: $scratch/NAME with the probe and busybox in a
# read-only rootfs and a config like `runc spec`'s.
bundle() {
  dir=$scratch/$1
  mkdir -p "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/bin"
  cp "$probe" "$dir/rootfs/probe"
  cp "$BUSYBOX" "$dir/rootfs/bin/busybox"
  for tool in sh sleep; do ln -sf busybox "$dir/rootfs/bin/$tool"; done
  cat >"$dir/config.json" <<JSON
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false, "user": {"uid": 0, "gid": 0}, "args": $2, "cwd": "/",
    "env": ["PATH=/bin"],
    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "systemd-driver",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "cgroupsPath": "$4",
    "resources": $3,
    "namespaces": [{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]
  }
}
JSON
  echo "$dir"
}

detached() {
  hk "$1" $([ "$1" = run ] && echo -d) --bundle "$3" "$2" >"$scratch/$2.out" 2>&1
}
pid_of() { hk state "$1" 2>/dev/null | sed -n 's/^ *"pid": \([0-9]*\),*$/\1/p'; }

# expect NAME WHAT GOT WANT: one comparison of a check, remembered in $bad.
expect() {
  [ "$2" = "$3" ] || bad="$bad $1=$2 (want $3);"
}

# ------------------------------------------------------------------------------------- checks

check_guest() {
  name='systemd is PID 1, on cgroup v2 alone'
  fstype=$(awk '$2 == "/sys/fs/cgroup" { print $3 }' /proc/mounts)
  if [ "$(cat /proc/1/comm)" = systemd ] && [ "$fstype" = cgroup2 ]; then ok "$name"
  else not_ok "$name" "PID 1 is $(cat /proc/1/comm), /sys/fs/cgroup is $fstype"; fi
}

dir=/sys/fs/cgroup/husk.slice/husk-test.slice/husk-limits.scope
unit=husk-limits.scope

check_scope() {
  name='create starts husk-limits.scope in husk-test.slice (inside husk.slice), Delegate=yes, the init in it'
  b=$(bundle limits '["/bin/sh", "-c", "sleep 100000"]' '{
    "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
    "cpu": {"shares": 512, "quota": 33333, "period": 100000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 20}, "blockIO": {"weight": 500}}' 'husk-test.slice:husk:limits')
  if ! detached create limits "$b"; then not_ok "$name" "create failed: $(cat "$scratch/limits.out")"; return 1; fi
  pid=$(pid_of limits)
  status=$(systemctl status --no-pager "$unit" 2>&1)
  echo "$status" | sed 's/^/  systemctl status: /'
  bad=''
  expect ActiveState "$(show $unit ActiveState)" active
  expect Slice "$(show $unit Slice)" husk-test.slice
  expect Delegate "$(show $unit Delegate)" yes
  expect cgroup "$(sed -n 's/^0:://p' "/proc/$pid/cgroup")" /husk.slice/husk-test.slice/husk-limits.scope
  echo "$status" | grep -q "$pid" || bad="$bad systemctl status does not list the init $pid;"
  if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
}

check_properties() {
  name='the limits are unit properties with runc'"'"'s values'
  bad=''
  expect MemoryMax "$(show $unit MemoryMax)" 67108864
  expect MemoryLow "$(show $unit MemoryLow)" 33554432
  expect MemorySwapMax "$(show $unit MemorySwapMax)" 33554432
  expect CPUWeight "$(show $unit CPUWeight)" 59
  expect CPUQuotaPerSecUSec "$(show $unit CPUQuotaPerSecUSec)" 340ms
  expect CPUQuotaPeriodUSec "$(show $unit CPUQuotaPeriodUSec)" 100ms
  expect AllowedCPUs "$(show $unit AllowedCPUs)" 0
  expect AllowedMemoryNodes "$(show $unit AllowedMemoryNodes)" 0
  expect TasksMax "$(show $unit TasksMax)" 20
  expect IOWeight "$(show $unit IOWeight)" 4950
  expect DevicePolicy "$(show $unit DevicePolicy)" strict
  show $unit DeviceAllow | grep -q '/dev/char/1:3 rwm' || bad="$bad DeviceAllow=$(show $unit DeviceAllow);"
  if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
}

check_files() {
  name='the delegated cgroup'"'"'s files hold what runc writes'
  bad=''
  expect memory.max "$(cat $dir/memory.max)" 67108864
  expect memory.low "$(cat $dir/memory.low)" 33554432
  expect memory.swap.max "$(cat $dir/memory.swap.max)" 33554432
  expect cpu.weight "$(cat $dir/cpu.weight)" 59
  expect cpu.max "$(cat $dir/cpu.max)" '33333 100000'
  expect cpuset.cpus "$(cat $dir/cpuset.cpus)" 0
  expect cpuset.mems "$(cat $dir/cpuset.mems)" 0
  expect pids.max "$(cat $dir/pids.max)" 20
  if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
}

check_update() {
  name='update: SetUnitProperties and the files'
  hk update --pids-limit 42 --memory 134217728 --memory-swap 134217728 limits >"$scratch/update.out" 2>&1 || { not_ok "$name" "update failed: $(cat "$scratch/update.out")"; return; }
  echo '{"cpu": {"shares": 2048, "quota": 50000}}' | hk update -r - limits >>"$scratch/update.out" 2>&1 || { not_ok "$name" "update -r failed: $(cat "$scratch/update.out")"; return; }
  bad=''
  expect TasksMax "$(show $unit TasksMax)" 42
  expect MemoryMax "$(show $unit MemoryMax)" 134217728
  expect MemorySwapMax "$(show $unit MemorySwapMax)" 0
  expect memory.swap.max "$(cat $dir/memory.swap.max)" 0
  expect CPUWeight "$(show $unit CPUWeight)" 174
  expect CPUQuotaPerSecUSec "$(show $unit CPUQuotaPerSecUSec)" 500ms
  expect pids.max "$(cat $dir/pids.max)" 42
  expect memory.max "$(cat $dir/memory.max)" 134217728
  expect cpu.weight "$(cat $dir/cpu.weight)" 174
  expect cpu.max "$(cat $dir/cpu.max)" '50000 100000'
  if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
}

check_verbs() {
  name='start, pause, resume, events --stats and ps work through the cgroup'
  bad=''
  hk start limits >/dev/null 2>&1 || bad="$bad start failed;"
  hk pause limits >/dev/null 2>&1 || bad="$bad pause failed;"
  expect cgroup.freeze "$(cat $dir/cgroup.freeze)" 1
  hk resume limits >/dev/null 2>&1 || bad="$bad resume failed;"
  expect cgroup.freeze "$(cat $dir/cgroup.freeze)" 0
  hk events --stats limits 2>&1 | grep -q '"pids":{"current":' || bad="$bad events --stats: $(hk events --stats limits 2>&1 | head -c 200);"
  [ "$(hk ps limits 2>/dev/null | wc -l)" -ge 2 ] || bad="$bad ps: $(hk ps limits 2>&1);"
  if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
}

check_delete() {
  name='delete leaves no unit and no cgroup'
  hk kill --all limits KILL >/dev/null 2>&1
  out=$(hk delete --force limits 2>&1) || { not_ok "$name" "delete failed: $out"; return; }
  bad=''
  load=$(show $unit LoadState)
  [ "$load" = not-found ] || bad="$bad LoadState=$load ActiveState=$(show $unit ActiveState);"
  [ ! -d "$dir" ] || bad="$bad $dir is still there;"
  if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad"; fi
}

check_enforced() {
  name='memory.max OOM-kills the hog (memory.events oom_kill)'
  b=$(bundle memory '["/bin/sh", "-c", "/probe hog-memory 512; sleep 100000"]' '{"memory": {"limit": 33554432, "swap": 33554432}}' ':husk:memory')
  if ! detached run memory "$b"; then not_ok "$name" "run -d failed: $(cat "$scratch/memory.out")"
  else
    d=/sys/fs/cgroup/system.slice/husk-memory.scope
    i=0
    while [ "$(awk '$1 == "oom_kill" { print $2 }' $d/memory.events 2>/dev/null)" = 0 ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
    oom=$(awk '$1 == "oom_kill" { print $2 }' $d/memory.events 2>/dev/null)
    if [ "${oom:-0}" -ge 1 ]; then ok "$name"; else not_ok "$name" "memory.events: $(tr '\n' ' ' <$d/memory.events 2>&1)"; fi
    hk delete --force memory >/dev/null 2>&1
  fi

  name='TasksMax stops the fork bomb'
  b=$(bundle pids '["/probe", "fork-bomb", "50"]' '{"pids": {"limit": 10}}' 'system.slice:husk:pids')
  out=$(hk run --bundle "$b" pids 2>&1)
  if [ "$out" = "$(printf 'forked 9\nfailed at 9: EAGAIN')" ]; then ok "$name"; else not_ok "$name" "the probe said: $out"; fi

  name='the CPU quota throttles a spinning process (cpu.stat nr_throttled)'
  b=$(bundle cpu '["/bin/sh", "-c", "/probe spin 2; sleep 100000"]' '{"cpu": {"quota": 10000, "period": 100000}}' ':husk:cpu')
  if ! detached run cpu "$b"; then not_ok "$name" "run -d failed: $(cat "$scratch/cpu.out")"
  else
    d=/sys/fs/cgroup/system.slice/husk-cpu.scope
    sleep 3
    throttled=$(awk '$1 == "nr_throttled" { print $2 }' $d/cpu.stat 2>/dev/null)
    if [ "${throttled:-0}" -ge 1 ]; then ok "$name"; else not_ok "$name" "cpu.stat: $(tr '\n' ' ' <$d/cpu.stat 2>&1)"; fi
    hk delete --force cpu >/dev/null 2>&1
  fi

  name='DevicePolicy=strict with runc'"'"'s default list lets the container use /dev/null'
  b=$(bundle devices '["/probe", "write", "/dev/null", "x"]' '{}' ':husk:devices')
  out=$(hk run --bundle "$b" devices 2>&1)
  status=$?
  if [ $status -eq 0 ]; then ok "$name"; else not_ok "$name" "status $status: $out"; fi
}

check_errors() {
  name='a second container for a unit that holds processes is refused in one line; the first is untouched'
  b=$(bundle dup '["/bin/sh", "-c", "sleep 100000"]' '{}' 'system.slice:husk:dup')
  detached run dup "$b" || { not_ok "$name" "run -d failed: $(cat "$scratch/dup.out")"; return; }
  out=$(hk run -d --bundle "$b" dup2 2>&1)
  status=$?
  echo "  second run: $out"
  if [ $status -ne 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && [ ! -d "$state/dup2" ] && [ "$(show husk-dup.scope ActiveState)" = active ]; then ok "$name"
  else not_ok "$name" "status $status, out: $out"; fi
  hk delete --force dup >/dev/null 2>&1
}

check_guest
if check_scope; then
  check_properties
  check_files
  check_update
  check_verbs
  check_delete
fi
check_enforced
check_errors
exit $failed
