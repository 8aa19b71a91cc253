/*
 * waitall COMMAND [ARG...]: runs COMMAND as a child subreaper that, like conmon, blocks in
 * wait() until it has no child left (the ones it adopts included), then prints "done".
 * Used by test/integration/frontdoor.test.ts.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: waitall COMMAND [ARG...]\n");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    perror("waitall: PR_SET_CHILD_SUBREAPER");
    return 2;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("waitall: fork");
    return 2;
  }
  if (child == 0) {
    execvp(argv[1], argv + 1);
    perror("waitall: exec");
    _exit(127);
  }
  int status = 0, commandStatus = 0;
  for (;;) {
    pid_t pid = wait(&status);
    if (pid == child) commandStatus = status;
    if (pid < 0 && errno == ECHILD) break;
  }
  printf("done\n");
  return WIFEXITED(commandStatus) ? WEXITSTATUS(commandStatus) : 1;
}
