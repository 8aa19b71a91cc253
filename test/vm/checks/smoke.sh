#!/bin/sh
# test/vm/checks/smoke.sh REPO_DIR: proves the VM guest is fit for the cgroup checks. Runs as root
# inside the guest (test/vm/run-in-vm.sh); prints `ok NAME` or `not ok NAME: why` per check and
# exits 1 if any failed.
set -u
repo=${1:?usage: smoke.sh REPO_DIR}
husk="$repo/bin/husk"
probe=$repo/build/Release/probe
failed=0

ok() { echo "ok $1"; }
not_ok() {
  echo "not ok $1: $2"
  failed=1
}

scratch=$(mktemp -d /tmp/smoke.XXXXXX)
cleanup() {
  umount "$scratch/overlay/merged" 2>/dev/null
  umount "$scratch/overlay" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT

# cgroup v2 is the only hierarchy, with the controllers the limits need.
fstype=$(awk '$2 == "/sys/fs/cgroup" { print $3 }' /proc/mounts)
if [ "$fstype" = cgroup2 ] && ! awk '$3 == "cgroup" { found = 1 } END { exit !found }' /proc/mounts; then
  ok "cgroup2 alone at /sys/fs/cgroup"
else
  not_ok "cgroup2 alone at /sys/fs/cgroup" "/sys/fs/cgroup is ${fstype:-not mounted}; mounts: $(awk '$3 ~ /cgroup/ { printf "%s %s; ", $2, $3 }' /proc/mounts)"
fi
controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)
missing=''
for c in cpu cpuset io memory pids hugetlb; do
  case " $controllers " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
if [ -z "$missing" ]; then ok "cgroup controllers available"; else not_ok "cgroup controllers available" "missing:$missing (have: $controllers)"; fi

# node and husk, the host's builds over the read-only root and the repository share.
if out=$(node -e 'console.log(process.version)' 2>&1); then
  echo "node $out"
  ok "node runs"
else
  not_ok "node runs" "$out"
fi
if out=$($husk --version 2>&1); then
  echo "$out" | head -n 1
  ok "husk --version"
else
  not_ok "husk --version" "$out"
fi

# overlayfs with its upper dir on a tmpfs, a lower dir on the guest's root (itself an overlay
# over 9p): what an image-based bundle needs.
mkdir -p "$scratch/overlay"
if out=$(mount -t tmpfs tmpfs "$scratch/overlay" 2>&1 &&
  mkdir "$scratch/overlay/upper" "$scratch/overlay/work" "$scratch/overlay/merged" &&
  mount -t overlay -o "lowerdir=/etc,upperdir=$scratch/overlay/upper,workdir=$scratch/overlay/work" overlay "$scratch/overlay/merged" 2>&1 &&
  echo written >"$scratch/overlay/merged/husk-smoke" &&
  [ "$(cat "$scratch/overlay/upper/husk-smoke")" = written ] && [ -f "$scratch/overlay/merged/passwd" ] && [ ! -e /etc/husk-smoke ]); then
  ok "overlayfs with a tmpfs upper dir"
else
  not_ok "overlayfs with a tmpfs upper dir" "${out:-the merged view is wrong}"
fi
umount "$scratch/overlay/merged" 2>/dev/null
umount "$scratch/overlay" 2>/dev/null

# husk runs the probe as PID 1 of a container whose bundle is on a tmpfs (the guest's /tmp).
bundle=$scratch/bundle
mkdir -p "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/rootfs/tmp"
cp "$probe" "$bundle/rootfs/probe"
if ! out=$(cd "$bundle" && $husk spec 2>&1 && node -e '
  const fs = require("fs");
  const config = JSON.parse(fs.readFileSync("config.json", "utf8"));
  config.process.terminal = false;
  config.process.args = ["/probe", "report"];
  fs.writeFileSync("config.json", JSON.stringify(config, null, 2));' 2>&1); then
  not_ok "husk run the probe" "writing the bundle's config failed: $out"
else
  out=$($husk --root "$scratch/state" run --bundle "$bundle" "smoke-$$" 2>&1)
  code=$?
  case "$code $out" in
    '0 {"pid":1,'*) ok "husk run the probe (pid 1 in the container)" ;;
    0*) not_ok "husk run the probe" "expected a report with pid 1, got: $out" ;;
    *) not_ok "husk run the probe" "husk run exited with status $code: $out" ;;
  esac
fi
leftover=$(ls "$scratch/state" 2>/dev/null)
if [ -z "$leftover" ]; then ok "husk run leaves no state"; else not_ok "husk run leaves no state" "left: $leftover"; fi

exit $failed
