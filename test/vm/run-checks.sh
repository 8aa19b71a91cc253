#!/bin/sh
# test/vm/run-checks.sh REPO_DIR [CHECK...]: runs check scripts one after the other (default:
# smoke.sh, then every other test/vm/checks/*.sh), each as `sh CHECK REPO_DIR` with its stderr on
# stdout and a time limit of HUSK_VM_CHECK_TIMEOUT seconds (default 1200), framing each one's
# output with
#
#   # check NAME
#   ...its `ok NAME` / `not ok NAME: why` lines and anything else it prints...
#   ...when it failed: the kernel's last messages (an OOM kill, a hung task)...
#   # exit NAME STATUS
#
# which cgroups.test.ts reads. Exits 1 if any check script did not exit 0. Meant to run inside
# the guest: test/vm/run-in-vm.sh sh test/vm/run-checks.sh "$PWD"
repo=${1:?usage: run-checks.sh REPO_DIR [CHECK...]}
shift
limit=${HUSK_VM_CHECK_TIMEOUT:-1200}
if [ $# -eq 0 ]; then
  set -- "$repo/test/vm/checks/smoke.sh"
  for check in "$repo"/test/vm/checks/*.sh; do
    [ "$check" = "$repo/test/vm/checks/smoke.sh" ] || set -- "$@" "$check"
  done
fi
status=0
for check in "$@"; do
  name=$(basename "$check")
  echo "# check $name"
  timeout -k 10 "$limit" sh "$check" "$repo" 2>&1
  code=$?
  if [ $code -ne 0 ]; then
    echo "the kernel's last messages:"
    dmesg | tail -n 15
  fi
  echo "# exit $name $code"
  [ $code -eq 0 ] || status=1
done
exit $status
