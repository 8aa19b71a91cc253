#!/bin/sh
# test/vm/checks/cgroups-v2.sh REPO_DIR: husk's cgroup v2 driver, proven in a guest whose only
# hierarchy is cgroup v2 (test/vm/run-in-vm.sh). Runs as root; husk is `REPO/bin/husk`,
# the probe REPO/build/Release/probe. Each check builds its bundle on the guest's tmpfs, runs
# husk, looks at the container's cgroup files, and prints `ok NAME` or `not ok NAME: why`.
# Exits 1 if any check failed. Nothing is left behind: containers are deleted, loop devices
# detached, the scratch directory removed.
set -u
repo=${1:?usage: cgroups-v2.sh REPO_DIR}
probe=$repo/build/Release/probe
failed=0
scratch=$(mktemp -d /tmp/cgroups-v2.XXXXXX)
state=$scratch/state
loopdev=''

ok() { echo "ok $1"; }
not_ok() {
  echo "not ok $1: $2"
  failed=1
}

hk() { "$repo/bin/husk" --root "$state" "$@"; }

cleanup() {
  for id in $(ls "$state" 2>/dev/null); do hk delete --force "$id" >/dev/null 2>&1; done
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT

# bundle NAME ARGS_JSON RESOURCES_JSON [LINUX_EXTRA_JSON] [NAMESPACES_JSON]: $scratch/NAME with
# the probe alone in a read-only rootfs and a config like `runc spec`'s (plus a cgroup namespace).
bundle() {
  dir=$scratch/$1
  mkdir -p "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp"
  cp "$probe" "$dir/rootfs/probe"
  [ -n "${BUSYBOX:-}" ] && mkdir -p "$dir/rootfs/bin" && cp "$BUSYBOX" "$dir/rootfs/bin/busybox" && ln -sf busybox "$dir/rootfs/bin/sh"
  namespaces=${5:-'[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]'}
  cat >"$dir/config.json" <<EOF
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false, "user": {"uid": 0, "gid": 0}, "args": $2, "cwd": "/",
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "cgroups-v2",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": $3,
    "namespaces": $namespaces
    ${4:+, $4}
  }
}
EOF
  echo "$dir"
}

# The container's init pid and cgroup directory (from its /proc/PID/cgroup "0::" line).
pid_of() { hk state "$1" 2>/dev/null | sed -n 's/^ *"pid": \([0-9]*\),*$/\1/p'; }
status_of() { hk state "$1" 2>/dev/null | sed -n 's/^ *"status": "\([a-z]*\)",*$/\1/p'; }
cgroup_of() { echo "/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$1/cgroup")"; }

# detached VERB ID BUNDLE: `husk run -d` or `husk create`, the container's output (which it
# inherits) in $scratch/ID.out, never in a pipe this script would wait on.
detached() {
  hk "$1" $([ "$1" = run ] && echo -d) --bundle "$3" "$2" >"$scratch/$2.out" 2>&1
}

# wait_gone PID: until the process has exited (or is a zombie), up to 120 s. Watches /proc
# rather than calling husk, which costs seconds per call in the guest.
wait_gone() {
  i=0
  while [ -n "$1" ] && [ "$1" != 0 ] && [ -e "/proc/$1/stat" ] && [ "$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
    i=$((i + 1))
    [ $i -gt 600 ] && return 1
    sleep 0.2
  done
}

ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# ------------------------------------------------------------------------------------- checks

check_memory() {
  name='memory.max OOM-kills the hog (memory.events oom_kill)'
  b=$(bundle memory '["/probe", "cat", "/sys/fs/cgroup/memory.max", "then", "hog-memory", "512"]' \
    '{"devices": [{"allow": false, "access": "rwm"}], "memory": {"limit": 33554432, "swap": 33554432}}')
  if ! detached run memory "$b"; then not_ok "$name" "run -d failed: $(cat "$scratch/memory.out")"; return; fi
  dir=/sys/fs/cgroup/memory
  wait_gone "$(pid_of memory)" || { not_ok "$name" "the hog was not killed"; return; }
  max=$(head -n 1 "$scratch/memory.out")
  oom=$(awk '$1 == "oom_kill" { print $2 }' "$dir/memory.events" 2>/dev/null)
  if [ "$max" != 33554432 ]; then not_ok "$name" "the container saw memory.max $max"
  elif [ "${oom:-0}" -lt 1 ]; then not_ok "$name" "memory.events: $(tr '\n' ' ' <"$dir/memory.events")"
  else ok "$name"; fi
  hk delete memory >/dev/null 2>&1
  if [ -d "$dir" ]; then not_ok "delete removes the cgroup" "$dir is still there"; else ok "delete removes the cgroup"; fi
}

check_pids() {
  name='pids.max stops the fork bomb'
  b=$(bundle pids '["/probe", "fork-bomb", "50"]' '{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 10}}')
  out=$(hk run --bundle "$b" pids 2>&1)
  if [ "$out" = "$(printf 'forked 9\nfailed at 9: EAGAIN')" ]; then ok "$name"; else not_ok "$name" "the probe said: $out"; fi
}

check_cpu() {
  name='cpu.max throttles the spinning process (cpu.stat nr_throttled)'
  b=$(bundle cpu '["/probe", "spin", "2"]' '{"devices": [{"allow": false, "access": "rwm"}], "cpu": {"quota": 10000, "period": 100000}}')
  if ! detached run cpu "$b"; then not_ok "$name" "run -d failed: $(cat "$scratch/cpu.out")"; return; fi
  dir=/sys/fs/cgroup/cpu
  max=$(cat "$dir/cpu.max" 2>&1)
  wait_gone "$(pid_of cpu)"
  throttled=$(awk '$1 == "nr_throttled" { print $2 }' "$dir/cpu.stat" 2>/dev/null)
  if [ "$max" != '10000 100000' ]; then not_ok "$name" "cpu.max is $max"
  elif [ "${throttled:-0}" -lt 1 ]; then not_ok "$name" "cpu.stat: $(tr '\n' ' ' <"$dir/cpu.stat")"
  else ok "$name"; fi
  hk delete cpu >/dev/null 2>&1
}

check_io() {
  name='io.max throttles reads from a loop device'
  if ! command -v losetup >/dev/null || ! dd if=/dev/zero of="$scratch/disk" bs=1M count=3 2>/dev/null || ! loopdev=$(losetup -f --show "$scratch/disk" 2>&1); then
    not_ok "$name" "no loop device: ${loopdev:-losetup missing}"
    loopdev=''
    return
  fi
  minor=$(stat -c %T "$loopdev")
  minor=$((0x$minor))
  b=$(bundle io "[\"/probe\", \"cat\", \"$loopdev\"]" \
    "{\"devices\": [{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"b\", \"major\": 7, \"minor\": $minor, \"access\": \"r\"}], \"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": 7, \"minor\": $minor, \"rate\": 1048576}]}}" \
    "\"devices\": [{\"path\": \"$loopdev\", \"type\": \"b\", \"major\": 7, \"minor\": $minor, \"fileMode\": 420}]")
  if ! detached create io "$b"; then not_ok "$name" "create failed: $(cat "$scratch/io.out")"; return; fi
  limit=$(grep "^7:$minor " /sys/fs/cgroup/io/io.max)
  pid=$(pid_of io)
  # 3 MiB at 1 MiB/s cannot take less than 2 s: a lower bound the throttle imposes (a slower
  # guest only makes it longer), not a performance measurement.
  start=$(date +%s)
  hk start io >/dev/null 2>&1
  wait_gone "$pid"
  took=$(($(date +%s) - start))
  read_bytes=$(sed -n "s/^7:$minor .*rbytes=\([0-9]*\).*/\1/p" /sys/fs/cgroup/io/io.stat)
  if [ "$limit" != "7:$minor rbps=1048576 wbps=max riops=max wiops=max" ]; then not_ok "$name" "io.max: $limit"
  elif [ "${read_bytes:-0}" -lt 3145728 ]; then not_ok "$name" "io.stat rbytes ${read_bytes:-none}: the reads did not go through the cgroup"
  elif [ "$took" -lt 2 ]; then not_ok "$name" "3 MiB were read in ${took}s despite rbps=1048576"
  else ok "$name"; fi
  hk delete io >/dev/null 2>&1
  losetup -d "$loopdev" && loopdev=''
}

check_pause() {
  name='pause freezes through cgroup.freeze, resume thaws'
  b=$(bundle pause '["/probe", "spin", "300"]' '{"devices": [{"allow": false, "access": "rwm"}]}')
  if ! detached run pause "$b"; then not_ok "$name" "run -d failed: $(cat "$scratch/pause.out")"; return; fi
  pid=$(pid_of pause)
  dir=$(cgroup_of "$pid")
  if [ "$dir" != /sys/fs/cgroup/pause ]; then not_ok "default cgroup path" "the init is in $dir, not /sys/fs/cgroup/pause"; else ok "default cgroup path"; fi
  if ! out=$(hk pause pause 2>&1); then not_ok "$name" "pause failed: $out"; hk delete -f pause >/dev/null 2>&1; return; fi
  st=$(status_of pause)
  frozen=$(sed -n 's/^frozen //p' "$dir/cgroup.events")
  t1=$(ticks "$pid"); sleep 1; t2=$(ticks "$pid")
  hk resume pause >/dev/null 2>&1
  st2=$(status_of pause)
  thawed=$(sed -n 's/^frozen //p' "$dir/cgroup.events")
  i=0
  while [ "$(ticks "$pid")" = "$t2" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
  t3=$(ticks "$pid")
  if [ "$st" != paused ] || [ "$frozen" != 1 ]; then not_ok "$name" "after pause: status $st, frozen $frozen"
  elif [ "$t1" != "$t2" ]; then not_ok "$name" "the frozen process ran ($t1 -> $t2 ticks)"
  elif [ "$st2" != running ] || [ "$thawed" != 0 ]; then not_ok "$name" "after resume: status $st2, frozen $thawed"
  elif [ "$t3" = "$t2" ]; then not_ok "$name" "the thawed process does not run"
  else ok "$name"; fi
  hk delete --force pause >/dev/null 2>&1
}

check_update() {
  name='update changes the limits of a running container'
  b=$(bundle update '["/probe", "sleep", "inf"]' '{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 20}, "memory": {"limit": 33554432}}')
  if ! detached run update "$b"; then not_ok "$name" "run -d failed: $(cat "$scratch/update.out")"; return; fi
  dir=/sys/fs/cgroup/update
  hk update --pids-limit 42 update >/dev/null 2>&1
  hk update --memory 64M update >/dev/null 2>&1
  echo '{"cpu": {"shares": 2048, "quota": 50000}}' | hk update -r - update >/dev/null 2>&1
  got="$(cat $dir/pids.max) $(cat $dir/memory.max) $(cat $dir/cpu.weight) $(cat $dir/cpu.max)"
  if [ "$got" = '42 67108864 174 50000 100000' ]; then ok "$name"; else not_ok "$name" "pids.max memory.max cpu.weight cpu.max: $got"; fi
  stats=$(hk events --stats update 2>&1)
  case "$stats" in
    '{"type":"stats","id":"update","data":{"cpu":'*'"pids":{"current":1,"limit":42}'*) ok "events --stats" ;;
    *) not_ok "events --stats" "$stats" ;;
  esac
  hk delete --force update >/dev/null 2>&1
}

check_resources() {
  name='every resource lands in its cgroup v2 file'
  b=$(bundle resources '["/probe", "sleep", "inf"]' '{"devices": [{"allow": false, "access": "rwm"}],
    "memory": {"limit": 67108864, "reservation": 33554432},
    "cpu": {"shares": 512, "quota": 20000, "period": 50000, "cpus": "0", "mems": "0", "idle": 0},
    "pids": {"limit": 33}, "blockIO": {"weight": 100}, "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    "unified": {"memory.high": "60000000"}}')
  if ! detached create resources "$b"; then not_ok "$name" "create failed: $(cat "$scratch/resources.out")"; return; fi
  dir=/sys/fs/cgroup/resources
  io=$(cat "$dir/io.bfq.weight" 2>/dev/null | head -n 1 || true)
  [ -n "$io" ] || io=$(head -n 1 "$dir/io.weight")
  got="$(cat $dir/memory.max) $(cat $dir/memory.low) $(cat $dir/memory.high) $(cat $dir/cpu.weight) $(cat $dir/cpu.max) $(cat $dir/cpuset.cpus) $(cat $dir/cpuset.mems) $(cat $dir/pids.max) $(cat $dir/hugetlb.2MB.max) $io"
  case "$got" in
    '67108864 33554432 59998208 59 20000 50000 0 0 33 0 default 100' | '67108864 33554432 59998208 59 20000 50000 0 0 33 0 default 910') ok "$name" ;;
    *) not_ok "$name" "memory.max low high, cpu.weight max, cpuset cpus mems, pids.max, hugetlb.2MB.max, io weight: $got" ;;
  esac
  hk delete --force resources >/dev/null 2>&1
  out=$(hk run --bundle "$(bundle rt '["/probe", "exit", "0"]' '{"cpu": {"realtimeRuntime": 1000}}')" rt 2>&1)
  if [ "$out" = 'husk: run rt: config.json: linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not supported by cgroup v2' ]; then
    ok 'a v1-only resource is refused by name'
  else
    not_ok 'a v1-only resource is refused by name' "$out"
  fi
}

check_kill_all() {
  name='kill --all kills every process of the cgroup (cgroup.kill)'
  BUSYBOX=$(command -v busybox) || { not_ok "$name" 'no busybox'; return; }
  # No pid namespace: killing the shell alone would leave the probes running.
  b=$(BUSYBOX=$BUSYBOX bundle killall '["/bin/sh", "-c", "/probe sleep inf & /probe sleep inf & wait"]' '{"devices": [{"allow": false, "access": "rwm"}]}' '' \
    '[{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]')
  if ! detached run killall "$b"; then not_ok "$name" "run -d failed: $(cat "$scratch/killall.out")"; return; fi
  dir=/sys/fs/cgroup/killall
  i=0
  while [ "$(wc -l <"$dir/cgroup.procs")" -lt 3 ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
  before=$(wc -l <"$dir/cgroup.procs")
  ps=$(hk ps --format json killall 2>&1)
  hk kill --all killall KILL >/dev/null 2>&1
  i=0
  while [ -s "$dir/cgroup.procs" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
  if [ "$before" != 3 ]; then not_ok "$name" "expected 3 processes in the cgroup, found $before"
  elif [ "$(echo "$ps" | tr ',' '\n' | wc -l)" != 3 ]; then not_ok "$name" "ps --format json: $ps"
  elif [ -s "$dir/cgroup.procs" ]; then not_ok "$name" "left: $(tr '\n' ' ' <"$dir/cgroup.procs")"
  else ok "$name"; fi
  hk delete --force killall >/dev/null 2>&1
}

check_devices() {
  name='the device program denies an unlisted device'
  kmsg='"devices": [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420}]'
  b=$(bundle denied '["/probe", "write", "/dev/kmsg", "husk cgroups-v2 check: denied\n"]' '{"devices": [{"allow": false, "access": "rwm"}]}' "$kmsg")
  denied=$(hk run --bundle "$b" denied 2>&1)
  b=$(bundle allowed '["/probe", "write", "/dev/kmsg", "husk cgroups-v2 check: allowed\n"]' \
    '{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]}' "$kmsg")
  allowed=$(hk run --bundle "$b" allowed 2>&1)
  case "$denied" in
    *'write /dev/kmsg: EPERM'*)
      if [ -z "$allowed" ]; then ok "$name"; else not_ok "$name" "the listed device was refused too: $allowed"; fi ;;
    *) not_ok "$name" "writing the unlisted /dev/kmsg gave: ${denied:-success}" ;;
  esac
}

check_memory
check_pids
check_cpu
check_io
check_pause
check_update
check_resources
check_kill_all
check_devices

left=$(ls "$state" 2>/dev/null)
if [ -z "$left" ]; then ok 'no container left'; else not_ok 'no container left' "$left"; fi
exit $failed
