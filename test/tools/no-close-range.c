/*
 * NO_CLOSE_RANGE_ERRNO=N NO_CLOSE_RANGE_EXEC=PROGRAM no-close-range [ARGS...]: runs PROGRAM
 * with ARGS (so it can stand in for a runtime binary) under a seccomp filter that makes
 * close_range(2) fail with errno N, as on a kernel before Linux 5.9 (ENOSYS) or under an
 * outer sandbox that refuses it (EPERM). Every other system call is allowed.
 * Needs CAP_SYS_ADMIN (no no_new_privs is set, so the runtime under it keeps its privileges).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_close_range
#define __NR_close_range 436
#endif

int main(int argc, char **argv) {
  const char *errnoText = getenv("NO_CLOSE_RANGE_ERRNO");
  const char *program = getenv("NO_CLOSE_RANGE_EXEC");
  if (!errnoText || !program) {
    fprintf(stderr, "usage: NO_CLOSE_RANGE_ERRNO=N NO_CLOSE_RANGE_EXEC=PROGRAM no-close-range [ARGS...]\n");
    return 2;
  }
  unsigned errnoRet = (unsigned)atoi(errnoText) & SECCOMP_RET_DATA;
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_close_range, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | errnoRet),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog fprog = { sizeof filter / sizeof filter[0], filter };
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) {
    perror("no-close-range: seccomp");
    return 1;
  }
  argv[0] = (char *)program;
  execvp(program, argv);
  perror("no-close-range: exec");
  return 127;
}
