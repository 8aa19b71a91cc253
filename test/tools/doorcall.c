/*
 * doorcall SOCKET HOME WORD...: plays a front door (native/frontdoor.h) against a husk server's
 * socket, for frontdoor.test.ts. It connects, sends one Call (its own pid, cwd "/", HOME as the
 * husk installation, the WORDs as argv, an empty environment, its fds 0, 1 and 2), and prints
 * one line on stderr for each
 * message the server sends back until the connection ends:
 *
 *   Accepted | Exit CODE | Fallback | Cleanup | Spawn | Foreground | message TYPE
 *   closed                  (end of the connection)
 *   connect: REASON         (exit 2)
 *
 * It answers nothing (no Spawned): use it only for verbs that start no process. Written for
 * the tests from the wire's table, not from the door's code, so that it checks the table too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct frame {
	uint32_t type;
	uint32_t length;
};

struct call_header {
	uint32_t version, pid, umask, flags, argc, envc;
};

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: doorcall SOCKET HOME WORD...\n");
		return 2;
	}
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
	if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
		fprintf(stderr, "connect: %s\n", strerror(errno));
		return 2;
	}

	static char message[1 << 16];
	struct call_header h = { .version = 3 /* kFrontDoorVersion, native/frontdoor.h */, .pid = (uint32_t)getpid(), .umask = 022, .argc = (uint32_t)(argc - 3) };
	size_t at = sizeof(struct frame);
	memcpy(message + at, &h, sizeof h);
	at += sizeof h;
	message[at++] = '/';
	message[at++] = 0;
	for (int i = 2; i < argc; i++) {  /* HOME, then the words */
		size_t n = strlen(argv[i]) + 1;
		if (at + n > sizeof message) {
			fprintf(stderr, "too long\n");
			return 2;
		}
		memcpy(message + at, argv[i], n);
		at += n;
	}
	struct frame f = { .type = 1, .length = (uint32_t)(at - sizeof f) };
	memcpy(message, &f, sizeof f);

	int fds[3] = { 0, 1, 2 };
	char control[CMSG_SPACE(sizeof fds)];
	memset(control, 0, sizeof control);
	struct iovec iov = { .iov_base = message, .iov_len = at };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof fds);
	memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
		/* A server that closed at once (a refused caller) may make the send fail. */
		fprintf(stderr, "closed\n");
		return 0;
	}

	for (;;) {
		struct iovec in = { .iov_base = message, .iov_len = sizeof message };
		char incoming[CMSG_SPACE(64 * sizeof(int))];
		struct msghdr reply = { .msg_iov = &in, .msg_iovlen = 1, .msg_control = incoming, .msg_controllen = sizeof incoming };
		ssize_t n = recvmsg(sock, &reply, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "closed\n");
			return 0;
		}
		struct frame got;
		if ((size_t)n < sizeof got) {
			fprintf(stderr, "short message\n");
			return 2;
		}
		memcpy(&got, message, sizeof got);
		switch (got.type) {
		case 2:
			fprintf(stderr, "Accepted\n");
			break;
		case 7: {
			int32_t code = 0;
			if ((size_t)n >= sizeof got + 4)
				memcpy(&code, message + sizeof got, 4);
			fprintf(stderr, "Exit %d\n", code);
			break;
		}
		case 8:
			fprintf(stderr, "Fallback\n");
			break;
		case 5:
			fprintf(stderr, "Cleanup\n");
			break;
		case 3:
			fprintf(stderr, "Spawn\n");
			break;
		case 6:
			fprintf(stderr, "Foreground\n");
			break;
		default:
			fprintf(stderr, "message %u\n", got.type);
		}
	}
}
