// The front door: the `husk` executable. It forwards each call to the warm husk server (or,
// when there is none, to a one-shot `node dist/cli/main.js`), and clones the container's
// processes itself when the server sends it a plan (frontdoor.h), so that they are children
// of `husk` as engines expect, and never a clone of node.
//
// The order at start matters:
//  1. fds 0, 1, 2 are made to exist (as Node does), so nothing of ours ever lands there;
//  2. the door re-executes itself from a sealed memfd (CVE-2019-5736): a container process
//     that reaches /proc/PID/exe of the door or of a process cloned from it cannot rewrite
//     the husk binary on the host;
//  3. `floor` is fixed: every fd the door holds from then on is >= floor and close-on-exec,
//     because a plan keeps fds 3.. open for --preserve-fds and LISTEN_FDS, and the container
//     inherits those straight from the door.
//
// Allocation is fine here, before clone(); the children only run runChild() (child.cc) on
// memory prepared for them. libc only: no libstdc++ (operator new, exceptions, std::).
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <initializer_list>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "child.h"
#include "frontdoor.h"
#include "planwire.h"
#include "util.h"

#ifndef HUSK_NODE_PATH
#define HUSK_NODE_PATH "node"
#endif

extern char **environ;

namespace husk {
namespace {

// ---------------------------------------------------------------------------------------
// What the whole process knows.

int gFloor = 3;                  // every fd of ours is >= this (see the top)
char gHome[PATH_MAX];            // the package root: <pkg>/build/Release/frontdoor
const char *gNode;               // the node binary
bool gSubreaper = false;         // PR_SET_CHILD_SUBREAPER is set

// The door's own fds (its connections, the signal pipe, ...): a cloned stage 1 closes them,
// so that a container waiting for `start` keeps no connection to the server open.
int gOwnFds[16];
int gOwnCount = 0;

void own(int fd) {
  if (gOwnCount < 16) gOwnFds[gOwnCount++] = fd;
}

// No longer ours to close (it was closed).
void disown(int fd) {
  for (int i = 0; i < gOwnCount; i++) {
    if (gOwnFds[i] == fd) gOwnFds[i] = gOwnFds[--gOwnCount];
  }
}

void closeOwn(int fd) {
  disown(fd);
  close(fd);
}

// fd moved to >= floor, close-on-exec; the original is closed. -1 on failure (fd closed too).
int lift(int fd) {
  if (fd < 0) return -1;
  int to = fcntl(fd, F_DUPFD_CLOEXEC, gFloor);
  close(fd);
  return to;
}

void complain(const char *what, int err) {
  if (err) dprintf(2, "husk: %s: %s\n", what, strerror(err));
  else dprintf(2, "husk: %s\n", what);
}

// The door waits only for children it knows: its one-shot node child, the stage 1s it
// cloned, and the process a Foreground message names. Never waitpid(-1): a container's
// process orphaned to the door (a subreaper) but not waited for here (create, exec --detach)
// must keep its exit status for whoever adopts it when the door exits (conmon, a containerd
// shim), as it does when runc exits.
struct Watched {
  pid_t pid;
  int status;
  bool done;
};
Watched gWatched[8];

void watch(pid_t pid) {
  for (Watched &w : gWatched) {
    if (w.pid == 0) {
      w = Watched{pid, 0, false};
      return;
    }
  }
}

// Stage 1s cloned and not reaped yet: each exits right after it clones the init.
pid_t gStage1[16];

void watchStage1(pid_t pid) {
  for (pid_t &p : gStage1) {
    if (p == 0) {
      p = pid;
      return;
    }
  }
}

void reapExited() {
  for (pid_t &p : gStage1) {
    int status;
    if (p > 0 && waitpid(p, &status, WNOHANG) != 0) p = 0;
  }
}

// Stage 1 reports the init's pid and exits at once, but until its exit is complete the init
// is its child, not yet ours (we are the subreaper it is re-parented to): a waitpid(init) then
// fails with ECHILD. Foreground waits for them first, so that it never takes a process that
// is still re-parented to it for one that is gone.
void awaitStage1s() {
  for (pid_t &p : gStage1) {
    if (p <= 0) continue;
    int status;
    while (waitpid(p, &status, 0) < 0 && errno == EINTR) {
    }
    p = 0;
  }
}

// Waits for a watched child and forgets it; returns its status.
int waitWatched(pid_t pid) {
  for (Watched &w : gWatched) {
    if (w.pid != pid) continue;
    while (!w.done) {
      int status;
      pid_t got = waitpid(pid, &status, 0);
      if (got == pid) {
        w.status = status;
        w.done = true;
      } else if (errno != EINTR) {
        break;
      }
    }
    int status = w.done ? w.status : 0;
    w = Watched{};
    return status;
  }
  return 0;
}

void forget(pid_t pid) {
  for (Watched &w : gWatched) {
    if (w.pid == pid) w = Watched{};
  }
}

// A status as a shell shows it.
int shellStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// ---------------------------------------------------------------------------------------
// Signals. For `run` and `exec` the door holds the signals husk forwards from the start:
// they are recorded until the Foreground message names the process, then forwarded to it,
// and from then on forwarded as they come. A byte in a self-pipe wakes the poll loop of the
// terminal relay (no race between a check and the wait: the byte stays until read).

const int kForwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP,
                          SIGTTIN, SIGTTOU, SIGVTALRM, SIGIO, SIGPWR, SIGPIPE, SIGXCPU, SIGXFSZ, SIGURG};

volatile sig_atomic_t gPending[NSIG];   // held, not yet forwarded
volatile sig_atomic_t gForwardTo = 0;   // the Foreground pid, once known
volatile sig_atomic_t gWinch = 0;
volatile sig_atomic_t gChild = 0;
int gWake[2] = {-1, -1};                // the self-pipe (non-blocking)

void onSignal(int sig) {
  int saved = errno;
  if (sig == SIGWINCH) gWinch = 1;
  else if (sig == SIGCHLD) gChild = 1;
  else if (gForwardTo > 0) kill(gForwardTo, sig);
  else gPending[sig] = 1;
  if (gWake[1] >= 0) {
    ssize_t ignored = write(gWake[1], "", 1);
    (void)ignored;
  }
  errno = saved;
}

void holdSignals() {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
    gWake[0] = lift(p[0]);
    gWake[1] = lift(p[1]);
    own(gWake[0]);
    own(gWake[1]);
  }
  struct sigaction sa{};
  sa.sa_handler = onSignal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  for (int sig : kForwarded) sigaction(sig, &sa, nullptr);
  sigaction(SIGWINCH, &sa, nullptr);
  sigaction(SIGCHLD, &sa, nullptr);
}

// From now on every held signal goes to pid; the ones recorded so far go first.
void forwardSignalsTo(pid_t pid) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  for (int sig = 1; sig < NSIG; sig++) {
    if (gPending[sig]) {
      gPending[sig] = 0;
      kill(pid, sig);
    }
  }
  gForwardTo = pid;
  sigprocmask(SIG_SETMASK, &old, nullptr);
}

void drainWake() {
  char buf[64];
  while (gWake[0] >= 0 && read(gWake[0], buf, sizeof buf) > 0) {
  }
}

// ---------------------------------------------------------------------------------------
// Start-up.

// fds 0, 1 and 2 exist: /dev/null where the caller closed one.
void ensureStdio() {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int n = open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  }
}

// 1 + the highest fd open now (at least 3).
int findFloor() {
  int highest = 2;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 3;
  int own = dirfd(d);
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    if (fd != own && fd > highest) highest = fd;
  }
  closedir(d);
  return highest + 1;
}

bool runningSealed() {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int seals = fcntl(fd, F_GET_SEALS);
  close(fd);
  return seals >= 0 && (seals & F_SEAL_WRITE);
}

// Copies /proc/self/exe into a sealed memfd and executes that, with the same argv. Returns
// only on failure (then the door goes on unsealed: better a call than none).
void reexecSealed(char **argv) {
  int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (exe < 0) return;
  struct stat st;
  int mem = static_cast<int>(syscall(SYS_memfd_create, "husk", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (mem < 0 || fstat(exe, &st) < 0) {
    close(exe);
    return;
  }
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = sendfile(mem, exe, nullptr, static_cast<size_t>(left));
    if (n <= 0) break;
    left -= n;
  }
  close(exe);
  if (left == 0 && fcntl(mem, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0) {
    setenv("HUSK_DOOR_HOME", gHome, 1);
    syscall(SYS_execveat, mem, "", argv, environ, AT_EMPTY_PATH);
    unsetenv("HUSK_DOOR_HOME");
  }
  close(mem);
}

// <pkg> from <pkg>/build/Release/frontdoor.
void findHome() {
  char exe[PATH_MAX];
  if (!realpath("/proc/self/exe", exe)) {
    strcpy(gHome, ".");
    return;
  }
  char *dir = exe;
  for (int i = 0; i < 3; i++) dir = dirname(dir);
  snprintf(gHome, sizeof gHome, "%s", dir);
}

// ---------------------------------------------------------------------------------------
// runc's global flags, up to the verb.

struct Globals {
  char root[PATH_MAX];
  const char *verb;   // nullptr when there is none
};

void parseGlobals(int argc, char **argv, Globals *g) {
  const char *root = nullptr;
  g->verb = nullptr;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      g->verb = a;
      break;
    }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) g->verb = argv[i + 1];
      break;
    }
    const char *name = a + (a[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t len = eq ? static_cast<size_t>(eq - name) : strlen(name);
    bool isRoot = len == 4 && strncmp(name, "root", 4) == 0;
    bool takesValue = isRoot;
    for (const char *v : {"log", "log-format", "rootless", "criu"}) {
      if (strlen(v) == len && strncmp(name, v, len) == 0) takesValue = true;
    }
    if (!takesValue || eq) {
      if (isRoot) root = eq + 1;
      continue;
    }
    if (i + 1 < argc) {
      i++;
      if (isRoot) root = argv[i];
    }
  }
  if (root && root[0] == '/') {
    snprintf(g->root, sizeof g->root, "%s", root);
  } else if (root) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, ".");
    snprintf(g->root, sizeof g->root, "%s/%s", cwd, root);
  } else if (geteuid() == 0) {
    snprintf(g->root, sizeof g->root, "/run/husk");
  } else if (const char *xdg = getenv("XDG_RUNTIME_DIR"); xdg && *xdg) {
    snprintf(g->root, sizeof g->root, "%s/husk", xdg);
  } else {
    snprintf(g->root, sizeof g->root, "/tmp/husk-%u", static_cast<unsigned>(getuid()));
  }
}

bool startsContainers(const char *verb) {
  if (!verb) return false;
  for (const char *v : {"create", "run", "exec", "image", "demo"}) {
    if (strcmp(verb, v) == 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Who runs the call.

int runOneShot(int argc, char **argv);

// "<dir>/<name>" in buf, or "/proc/self/fd/N/<name>" through an O_PATH fd of dir when that
// is too long for a unix socket address (*dirFd is then to be closed by the caller).
bool socketAddress(const char *dir, const char *name, sockaddr_un *addr, int *dirFd) {
  *dirFd = -1;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen(dir) + 1 + strlen(name) < 100) {
    snprintf(addr->sun_path, sizeof addr->sun_path, "%s/%s", dir, name);
    return true;
  }
  *dirFd = lift(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (*dirFd < 0) return false;
  snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", *dirFd, name);
  return true;
}

// A connection to the server of this root, or -1.
int connectServer(const char *root) {
  sockaddr_un addr;
  int dirFd;
  if (!socketAddress(root, kServerSocket, &addr, &dirFd)) return -1;
  int sock = lift(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  int r = sock < 0 ? -1 : connect(sock, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
  if (dirFd >= 0) close(dirFd);
  if (r < 0) {
    if (sock >= 0) close(sock);
    return -1;
  }
  return sock;
}

// No server answers. This door takes the right to start one (~server.lock, unless another
// door has it), runs its own call one-shot first, and starts the server once that call has
// answered (startPendingServer): the cold call costs what husk cost before the door, and the
// server's start-up never competes with it. Returns a connection when a server came up
// meanwhile, else -1 (run the call one-shot).
struct PendingServer {
  const char *root = nullptr;
  int lock = -1;
};
PendingServer gServerToStart;

int claimServerStart(const char *root) {
  if (mkdir(root, 0700) < 0 && errno != EEXIST) return -1;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", root, kServerLock);
  int lock = lift(open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock < 0) return -1;
  if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
    close(lock);  // a server is starting (or running and about to listen)
    return -1;
  }
  int sock = connectServer(root);
  if (sock >= 0) {
    close(lock);
    return sock;
  }
  own(lock);
  gServerToStart = {root, lock};
  return -1;
}

// Starts the server this door claimed, if any: detached, holding the lock for its lifetime.
void startPendingServer() {
  if (gServerToStart.lock < 0) return;
  const char *root = gServerToStart.root;
  int lock = gServerToStart.lock;
  gServerToStart.lock = -1;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", root, kServerSocket);
  unlink(path);
  char script[PATH_MAX];
  snprintf(script, sizeof script, "%s/dist/server/main.js", gHome);
  char lockFd[16];
  snprintf(lockFd, sizeof lockFd, "%d", lock);
  pid_t pid = fork();
  if (pid == 0) {
    // A daemon: its own session, no terminal, nobody's waiting child (the first child exits
    // at once), holding the lock for its lifetime and no fd of the caller's.
    setsid();
    if (chdir("/") < 0) _exit(127);
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    if (fork() != 0) _exit(0);
    if (lock > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(lock - 1), 0u);
    syscall(SYS_close_range, static_cast<unsigned>(lock + 1), ~0u, 0u);
    fcntl(lock, F_SETFD, 0);
    setenv("HUSK_SERVER_LOCK_FD", lockFd, 1);
    // Whatever the first caller ignored (nohup's SIGHUP) or blocked is not the server's.
    resetSignals();
    execlp(gNode, gNode, script, "--root", root, static_cast<char *>(nullptr));
    _exit(127);
  }
  if (pid > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  closeOwn(lock);
}

// ---------------------------------------------------------------------------------------
// The messages of one call (frontdoor.h).

enum class Via { Server, OneShot };

struct Call {
  Via via;
  int sock;
  pid_t child;          // the one-shot node, or 0
  bool accepted;        // the server sent Accepted
  char *cleanup;        // the latest Cleanup body (u32 argc, argv...), malloc'd
  uint32_t cleanupLength;
  bool endedEarly;      // the server closed before Accepted: nothing was done
  int exited = -1;      // the Foreground process's status (as a shell shows it), once it ended
};

// argc NUL-terminated strings from body[at..length) into a malloc'd argv (nullptr-terminated).
char **readWords(char *body, uint32_t length, uint32_t at, uint32_t argc) {
  if (argc > length) return nullptr;
  char **words = static_cast<char **>(calloc(argc + 1, sizeof(char *)));
  if (!words) return nullptr;
  for (uint32_t i = 0; i < argc; i++) {
    char *end = at < length ? static_cast<char *>(memchr(body + at, 0, length - at)) : nullptr;
    if (!end) {
      free(words);
      return nullptr;
    }
    words[i] = body + at;
    at = static_cast<uint32_t>(end - body) + 1;
  }
  return words;
}

// Spawn: clone stage 1 running the plan, as addon.cc's spawn() does, and answer Spawned with
// our end of the sync socket. The server speaks sync.h with the children over it.
void onSpawn(Call &call, char *body, uint32_t length, int *fds, uint32_t nfds) {
  int32_t result = -EINVAL;
  uint32_t count = 0;
  char *block = nullptr;
  Step *steps = nullptr;
  Plan plan;
  int sv[2] = {-1, -1};
  if (length >= 4) memcpy(&count, body, 4);
  for (uint32_t i = 0; i < nfds; i++) fds[i] = lift(fds[i]);
  if (length >= 4 && count == nfds && count <= (length - 4) / 4) {
    uint32_t at = 4 + 4 * count;
    // The block's offsets assume 8-byte alignment; the body has it only by chance.
    block = static_cast<char *>(malloc(length - at + 1));
    if (!block) result = -ENOMEM;
    else {
      memcpy(block, body + at, length - at);
      result = static_cast<int32_t>(decodePlan(block, length - at, &plan, &steps));
    }
    for (uint32_t i = 0; result == 0 && i < nfds; i++) {
      uint32_t step;
      memcpy(&step, body + 4 + 4 * i, 4);
      if (step >= plan.count || fds[i] < 0) result = -EINVAL;
      else steps[step].a = static_cast<uint64_t>(fds[i]);
    }
  }
  if (result == 0 && !gSubreaper) {
    // The container's init, orphaned when stage 1 exits, becomes our child: Foreground waits for it.
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    gSubreaper = true;
  }
  if (result == 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) result = -errno;
  if (result == 0) {
    sv[0] = lift(sv[0]);
    sv[1] = lift(sv[1]);
    if (sv[0] < 0 || sv[1] < 0) result = -EMFILE;
  }
  if (result == 0) {
    // Stage 1's /proc/self/exe is our sealed memfd; it keeps none of our own fds.
    int closeFds[1 + sizeof gOwnFds / sizeof gOwnFds[0]] = {sv[0]};
    for (int i = 0; i < gOwnCount; i++) closeFds[i + 1] = gOwnFds[i];
    result = static_cast<int32_t>(cloneStage1(&plan, sv[1], closeFds, gOwnCount + 1));
  }
  if (sv[1] >= 0) close(sv[1]);
  for (uint32_t i = 0; i < nfds; i++) {
    if (fds[i] >= 0) close(fds[i]);
  }
  free(steps);
  free(block);
  if (result > 0) watchStage1(result);
  bool withFd = result > 0 && sv[0] >= 0;
  doorSend(call.sock, DoorMsg::Spawned, &result, sizeof result, withFd ? &sv[0] : nullptr, withFd ? 1 : 0);
  if (sv[0] >= 0) close(sv[0]);
  reapExited();
}

// Writes all of buf to fd (which may be non-blocking). False when fd is gone.
bool writeAll(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return false;
    buf += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void copyWindowSize(int master) {
  winsize size;
  if (ioctl(1, TIOCGWINSZ, &size) == 0) ioctl(master, TIOCSWINSZ, &size);
}

long long nowMs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

// What the door copies while a foreground process runs: from an fd to an fd. With a pty
// master: stdin -> master, master -> stdout. With pipes (as runc gives a foreground process
// without a terminal): stdin -> the process's stdin (closed at our end of input), its stdout
// and stderr pipes -> ours.
struct Copy {
  int from;
  int to;
  bool input;       // from our stdin: stops when the process has exited
  bool closeAtEnd;  // close `to` when `from` ends (the process's stdin pipe)
  bool open;
};

// Copies until pid has exited and its output is drained (every output at EOF/EIO, 2 s without
// output, or 10 s in all). Returns pid's wait status. `master` (or -1) gets our window size.
int relay(pid_t pid, Copy *copies, int count, int master, bool exited, int status) {
  termios saved;
  bool raw = master >= 0 && isatty(0) && tcgetattr(0, &saved) == 0;
  if (raw) {
    termios t = saved;
    cfmakeraw(&t);
    tcsetattr(0, TCSANOW, &t);
  }
  if (master >= 0) copyWindowSize(master);
  long long exitedAt = nowMs(), lastOutput = exitedAt;
  char buf[16384];
  for (;;) {
    if (gChild || !exited) {
      gChild = 0;
      reapExited();
      int st;
      pid_t got = exited ? 0 : waitpid(pid, &st, WNOHANG);
      if (got == pid) {
        status = st;
        exited = true;
        exitedAt = lastOutput = nowMs();
      } else if (got < 0 && errno == ECHILD) {
        // Not (or no longer) our child: nothing to wait for.
        exited = true;
        exitedAt = lastOutput = nowMs();
      }
    }
    if (gWinch) {
      gWinch = 0;
      if (master >= 0) copyWindowSize(master);
    }
    int timeout = -1;
    bool outputOpen = false;
    for (int i = 0; i < count; i++) outputOpen |= !copies[i].input && copies[i].open;
    if (exited) {
      long long now = nowMs();
      if (!outputOpen || now - lastOutput >= 2000 || now - exitedAt >= 10000) break;
      long long left = 2000 - (now - lastOutput);
      if (10000 - (now - exitedAt) < left) left = 10000 - (now - exitedAt);
      timeout = static_cast<int>(left);
    }
    pollfd p[4] = {{gWake[0], POLLIN, 0}};
    for (int i = 0; i < count; i++) {
      bool watch = copies[i].open && !(copies[i].input && exited);
      p[i + 1] = {watch ? copies[i].from : -1, POLLIN, 0};
    }
    int n = poll(p, static_cast<nfds_t>(count + 1), timeout);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (p[0].revents) drainWake();
    for (int i = 0; i < count; i++) {
      Copy &c = copies[i];
      if (!p[i + 1].revents) continue;
      ssize_t got = read(c.from, buf, sizeof buf);
      if (got > 0) {
        writeAll(c.to, buf, static_cast<size_t>(got));
        if (!c.input) lastOutput = nowMs();
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        c.open = false;  // EOF, or EIO: the container hung up its terminal
        if (c.closeAtEnd) {
          closeOwn(c.to);  // the process reads the end of its input
          c.to = -1;
        }
      }
    }
  }
  if (raw) tcsetattr(0, TCSANOW, &saved);
  if (!exited) {
    // Left the loop on an error: still wait for pid, its status is the call's.
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  return status;
}

// Foreground: the call's process runs; wait for it (forwarding signals, relaying its terminal),
// run the follow-up call, exit with its status.
// Returns pid's status as a shell shows it, or -1 when the message is bad.
int onForeground(char *body, uint32_t length, int *fds, uint32_t nfds) {
  // The call has answered: a server this door claimed may start now, while the process runs.
  startPendingServer();
  int32_t pid;
  uint32_t flags;
  if (length < 8) {
    for (uint32_t i = 0; i < nfds; i++) close(fds[i]);
    complain("bad Foreground message from the husk server", 0);
    return -1;
  }
  memcpy(&pid, body, 4);
  memcpy(&flags, body + 4, 4);
  // The pty master, or the husk ends of the process's stdio pipes (stdin's write end,
  // stdout's and stderr's read ends).
  int master = (flags & kForegroundConsole) && nfds > 0 ? lift(fds[0]) : -1;
  bool pipes = !(flags & kForegroundConsole) && (flags & kForegroundPipes) && nfds == 3;
  int ends[3] = {-1, -1, -1};
  for (uint32_t i = 0; i < nfds; i++) {
    if (pipes) ends[i] = lift(fds[i]);
    else if (!(master >= 0 && i == 0)) close(fds[i]);
  }
  if (master >= 0) own(master);
  for (int fd : ends) if (fd >= 0) own(fd);
  if (pid <= 0) {
    complain("bad Foreground message from the husk server", 0);
    if (master >= 0) closeOwn(master);
    for (int fd : ends) if (fd >= 0) closeOwn(fd);
    return -1;
  }
  // The relay needs SIGCHLD and SIGWINCH to wake it, whatever the verb.
  if (gWake[0] < 0) holdSignals();
  // A process that has exited already stays a zombie until waited for here, so its pid is
  // still its own and signals may go to it.
  int status = 0;
  bool exited = false;
  awaitStage1s();
  forwardSignalsTo(pid);
  if (master >= 0) {
    Copy copies[2] = {{0, master, true, false, true}, {master, 1, false, false, true}};
    status = relay(pid, copies, 2, master, exited, status);
    closeOwn(master);
  } else if (pipes) {
    Copy copies[3] = {{0, ends[0], true, true, true}, {ends[1], 1, false, false, true}, {ends[2], 2, false, false, true}};
    status = relay(pid, copies, 3, -1, exited, status);
    // stdin's end is closed already when our input ended
    ends[0] = copies[0].to;
    for (int fd : ends) if (fd >= 0) closeOwn(fd);
  } else {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  gForwardTo = 0;
  return shellStatus(status);
}

// The connection ended after Accepted: the server died mid-call. Undo what it half made.
void runCleanup(Call &call);

int serverDied(Call &call) {
  complain("the husk server ended during the call", 0);
  runCleanup(call);
  // A foreground process that has run: its status is still the call's.
  return call.exited >= 0 ? call.exited : 1;
}

// The Cleanup the call asked for, if any, as a one-shot call (never through a server).
void runCleanup(Call &call) {
  if (call.cleanup) {
    uint32_t argc = 0;
    if (call.cleanupLength >= 4) memcpy(&argc, call.cleanup, 4);
    char **words = readWords(call.cleanup, call.cleanupLength, 4, argc);
    if (words && argc > 0) runOneShot(static_cast<int>(argc), words);
    free(words);
  }
}

// Returns the call's exit status (see call.endedEarly).
int messageLoop(Call &call, int argc, char **argv) {
  char *body = static_cast<char *>(malloc(kFrontDoorMaxMessage));
  if (!body) {
    complain("out of memory", 0);
    return 1;
  }
  int status = 1;
  for (;;) {
    DoorMsg type;
    uint32_t length, nfds;
    int fds[kFrontDoorMaxFds];
    long r = doorReceive(call.sock, &type, body, kFrontDoorMaxMessage, &length, fds, &nfds);
    reapExited();
    if (r == 0 || r == -ECONNRESET || r == -EPIPE) {
      if (call.via == Via::OneShot) {
        // Its status is the call's, unless it died (a signal) after its process ran.
        int child = waitWatched(call.child);
        if (call.exited >= 0 && !WIFEXITED(child)) runCleanup(call);
        status = call.exited >= 0 && !WIFEXITED(child) ? call.exited : shellStatus(child);
      } else if (!call.accepted) {
        call.endedEarly = true;
      } else {
        status = serverDied(call);
      }
      break;
    }
    if (r < 0) {
      complain("receiving from the husk server", static_cast<int>(-r));
      break;
    }
    bool takesFds = type == DoorMsg::Spawn || type == DoorMsg::Foreground;
    if (!takesFds) {
      for (uint32_t i = 0; i < nfds; i++) close(fds[i]);
    }
    if (type == DoorMsg::Accepted && call.via == Via::Server && !call.accepted) {
      call.accepted = true;
    } else if (type == DoorMsg::Spawn) {
      onSpawn(call, body, length, fds, nfds);
    } else if (type == DoorMsg::Cleanup && length >= 4) {
      free(call.cleanup);
      call.cleanup = static_cast<char *>(malloc(length));
      if (call.cleanup) memcpy(call.cleanup, body, length);
      call.cleanupLength = call.cleanup ? length : 0;
    } else if (type == DoorMsg::Exit && length >= 4) {
      int32_t code;
      memcpy(&code, body, 4);
      status = code;
      break;
    } else if (type == DoorMsg::Fallback) {
      status = runOneShot(argc, argv);
      break;
    } else if (type == DoorMsg::Foreground && call.exited < 0) {
      // Wait for the process, then tell the call how it ended: the call finishes (run deletes
      // the container) and answers with Exit.
      int exited = onForeground(body, length, fds, nfds);
      if (exited < 0) {
        status = 1;
        break;
      }
      call.exited = exited;
      int32_t report = exited;
      if (doorSend(call.sock, DoorMsg::Exited, &report, sizeof report, nullptr, 0) < 0) {
        // The call's process is gone: whatever it would have done after, Cleanup does.
        if (call.via == Via::OneShot) waitWatched(call.child);
        else complain("the husk server ended during the call", 0);
        runCleanup(call);
        status = exited;
        break;
      }
    } else {
      dprintf(2, "husk: unexpected message %u from the husk server\n", static_cast<unsigned>(type));
      status = 1;
      break;
    }
  }
  free(body);
  free(call.cleanup);
  call.cleanup = nullptr;
  return status;
}

// The call in a one-shot `node dist/cli/main.js`, which gets its end of a socketpair as
// HUSK_FRONT_DOOR_FD and answers as a server would (without Accepted).
int runOneShot(int argc, char **argv) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    complain("socketpair", errno);
    return 1;
  }
  sv[0] = lift(sv[0]);
  sv[1] = lift(sv[1]);
  char script[PATH_MAX];
  snprintf(script, sizeof script, "%s/dist/cli/main.js", gHome);
  char **args = static_cast<char **>(calloc(static_cast<size_t>(argc) + 3, sizeof(char *)));
  if (sv[0] < 0 || sv[1] < 0 || !args) {
    complain("cannot start node", sv[0] < 0 || sv[1] < 0 ? EMFILE : ENOMEM);
    return 1;
  }
  args[0] = const_cast<char *>(gNode);
  args[1] = script;
  for (int i = 0; i < argc; i++) args[i + 2] = argv[i];
  pid_t door = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // The call dies with the door, as husk did when it was one process: a caller that kills
    // `husk` stops what it was doing.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != door) _exit(1);
    // When the door holds signals for a foreground process (run, exec), the terminal's ^C and
    // ^\ are the container's business: the call, which the door tells how the process ended,
    // must live on to delete it.
    if (gWake[0] >= 0) {
      for (int sig : {SIGINT, SIGQUIT, SIGTSTP}) signal(sig, SIG_IGN);
    }
    // Its end stays open across exec (>= floor: not one of the fds a container keeps).
    int fd = fcntl(sv[1], F_DUPFD, gFloor);
    char number[16];
    snprintf(number, sizeof number, "%d", fd);
    setenv("HUSK_FRONT_DOOR_FD", number, 1);
    execvp(gNode, args);
    dprintf(2, "husk: cannot run %s: %s\n", gNode, strerror(errno));
    _exit(1);
  }
  int err = errno;
  close(sv[1]);
  free(args);
  if (pid < 0) {
    close(sv[0]);
    complain("fork", err);
    return 1;
  }
  watch(pid);
  own(sv[0]);
  Call call{Via::OneShot, sv[0], pid, false, nullptr, 0, false};
  int status = messageLoop(call, argc, argv);
  closeOwn(sv[0]);
  forget(pid);
  return status;
}

// Sends Call: the header, cwd, argv, env; with fds 0, 1, 2. False when the message is too big
// or the send failed (then the call runs one-shot).
bool sendCall(int sock, int argc, char **argv) {
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
  size_t size = sizeof(CallHeader) + strlen(cwd) + 1 + strlen(gHome) + 1;
  for (int i = 0; i < argc; i++) size += strlen(argv[i]) + 1;
  uint32_t envc = 0;
  for (char **e = environ; *e; e++, envc++) size += strlen(*e) + 1;
  if (size > kFrontDoorMaxMessage - sizeof(Frame)) return false;
  char *body = static_cast<char *>(malloc(size));
  if (!body) return false;
  CallHeader h{};
  h.version = kFrontDoorVersion;
  h.pid = getpid();
  mode_t mask = umask(022);
  umask(mask);
  h.umask = mask;
  int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty >= 0) {
    h.flags |= kCallHasTty;
    close(tty);
  }
  h.argc = static_cast<uint32_t>(argc);
  h.envc = envc;
  memcpy(body, &h, sizeof h);
  char *at = body + sizeof h;
  at = stpcpy(at, cwd) + 1;
  at = stpcpy(at, gHome) + 1;
  for (int i = 0; i < argc; i++) at = stpcpy(at, argv[i]) + 1;
  for (char **e = environ; *e; e++) at = stpcpy(at, *e) + 1;
  int stdio[3] = {0, 1, 2};
  long r = doorSend(sock, DoorMsg::Call, body, static_cast<uint32_t>(size), stdio, 3);
  free(body);
  return r == 0;
}

// Runs one call (the words after the program name) and returns its exit status.
int runCall(int argc, char **argv) {
  const char *server = getenv("HUSK_SERVER");
  if (server && strcmp(server, "0") == 0) return runOneShot(argc, argv);
  Globals g;
  parseGlobals(argc, argv, &g);
  int sock = connectServer(g.root);
  if (sock < 0) sock = claimServerStart(g.root);
  if (sock < 0) {
    int status = runOneShot(argc, argv);
    startPendingServer();
    return status;
  }
  own(sock);
  Call call{Via::Server, sock, 0, false, nullptr, 0, true};
  int status = 1;
  if (sendCall(sock, argc, argv)) {
    call.endedEarly = false;
    status = messageLoop(call, argc, argv);
  }
  closeOwn(sock);
  // Before Accepted nothing was done: the call is still ours to run.
  if (call.endedEarly) status = runOneShot(argc, argv);
  return status;
}

}  // namespace
}  // namespace husk

int main(int argc, char **argv) {
  using namespace husk;
  ensureStdio();
  // The package root comes from the unsealed self through the environment (the memfd has no
  // path); no one after us sees the variable.
  const char *home = getenv("HUSK_DOOR_HOME");
  char passed[PATH_MAX] = "";
  if (home) snprintf(passed, sizeof passed, "%s", home);
  unsetenv("HUSK_DOOR_HOME");
  const char *node = getenv("HUSK_NODE");
  gNode = node && *node ? node : HUSK_NODE_PATH;

  Globals g;
  parseGlobals(argc - 1, argv + 1, &g);
  bool sealed = runningSealed();
  if (sealed && passed[0]) snprintf(gHome, sizeof gHome, "%s", passed);
  else findHome();
  if (!sealed && startsContainers(g.verb)) reexecSealed(argv);

  gFloor = findFloor();
  if (g.verb && (strcmp(g.verb, "run") == 0 || strcmp(g.verb, "exec") == 0)) holdSignals();
  exit(runCall(argc - 1, argv + 1));
}
