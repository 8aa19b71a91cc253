// The container's terminal: a pty from the container's own devpts instance. The master
// goes to the parent (which passes it to --console-socket or relays it); the slave becomes
// stdin/stdout/stderr and the controlling terminal of the init, which leads its own
// session (Setsid runs first).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <termios.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

long doConsole(Child &c, const Step &s) {
  UniqueFd master(static_cast<int>(check(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC))));
  if (!master) return -errno;
  int unlock = 0;
  if (ioctl(master.get(), TIOCSPTLCK, &unlock) < 0) return -errno;
  UniqueFd slave(static_cast<int>(check(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY))));
  if (!slave) return -errno;
  if (console_rows(s) || console_cols(s)) {
    winsize size{};
    size.ws_row = static_cast<unsigned short>(console_rows(s));
    size.ws_col = static_cast<unsigned short>(console_cols(s));
    if (ioctl(master.get(), TIOCSWINSZ, &size) < 0) return -errno;
  }
  if (fchown(slave.get(), static_cast<uid_t>(console_uid(s)), static_cast<gid_t>(console_gid(s))) < 0) return -errno;
  if (console_path(s)) {
    int number;
    if (ioctl(master.get(), TIOCGPTN, &number) < 0) return -errno;
    char pts[64];
    appendNumber(appendString(pts, pts + sizeof pts, "/dev/pts/"), pts + sizeof pts, number);
    long made = check(open(console_path(s), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (made < 0 && made != -EEXIST) return made;
    if (made >= 0) close(static_cast<int>(made));
    if (mount(pts, console_path(s), nullptr, MS_BIND, nullptr) < 0) return -errno;
  }
  long r = sendMessage(c.sock, Msg::Console, c.current, 0, master.get());
  if (r < 0) return r;
  for (int fd = 0; fd < 3; fd++) {
    if (dup3(slave.get(), fd, 0) < 0) return -errno;
  }
  return check(ioctl(0, TIOCSCTTY, 0));
}

}  // namespace husk
