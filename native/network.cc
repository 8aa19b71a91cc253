// Network setup inside a new network namespace: only bringing the loopback up, as runc
// does. Anything more (veth, bridges) belongs to the engine or CNI, not the runtime.
#include <cstring>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "child.h"
#include "util.h"

namespace husk {

long doLinkUp(Child &, const Step &s) {
  UniqueFd sock(static_cast<int>(check(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))));
  if (!sock) return -errno;
  ifreq req{};
  strncpy(req.ifr_name, linkUp_ifname(s), IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &req) < 0) return -errno;
  req.ifr_flags |= IFF_UP;
  return check(ioctl(sock.get(), SIOCSIFFLAGS, &req));
}

}  // namespace husk
