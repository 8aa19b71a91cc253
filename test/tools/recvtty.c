/*
 * recvtty: the receiving end of --console-socket, for tests.
 *
 *   recvtty [--once] [--input TEXT] [--wait-exit] SOCKET_PATH
 *
 * Listens on SOCKET_PATH, prints "listening" on stdout once it can accept,
 * takes one connection and the one pty master fd it carries (SCM_RIGHTS),
 * then copies everything the container writes to its terminal to stdout
 * until the terminal hangs up (every slave fd closed), and exits 0.
 *
 * stdout carries only "listening\n" followed by the terminal's bytes, as the
 * line discipline produced them ("\n" arrives as "\r\n", typed input is
 * echoed).  Everything recvtty says about itself goes to stderr:
 *   recvtty: got a tty
 *   {"isatty":true,"ptsName":"/dev/pts/0","name":"<payload>"}
 *
 * --input TEXT  write TEXT and "\n" to the master right after receiving it.
 * --once        accepted for clarity: one connection is always the behaviour.
 * --wait-exit   accepted for clarity: copying until the hangup is always the
 *               behaviour, so recvtty exits when the container's terminal
 *               users have all exited.
 *
 * Exit status: 0 after the hangup, 1 on a socket or I/O error, 2 on bad
 * usage, 3 when the fd received is not a terminal, 4 when nobody connects
 * within 30 seconds, 5 when the message carries no fd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define ACCEPT_TIMEOUT_MS (30 * 1000)
#define MAX_FDS 8

static int usage(void)
{
	fprintf(stderr, "usage: recvtty [--once] [--input TEXT] [--wait-exit] SOCKET_PATH\n");
	return 2;
}

static int die(const char *what, const char *detail, int err, int status)
{
	if (detail)
		fprintf(stderr, "recvtty: %s %s: %s\n", what, detail, strerror(err));
	else
		fprintf(stderr, "recvtty: %s: %s\n", what, strerror(err));
	return status;
}

static int write_all(int fd, const char *data, size_t length)
{
	while (length > 0) {
		ssize_t n = write(fd, data, length);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		length -= (size_t)n;
	}
	return 0;
}

/* Writes s as a JSON string to stderr; control bytes are escaped. */
static void json_string(const char *s)
{
	if (!s) {
		fputs("null", stderr);
		return;
	}
	fputc('"', stderr);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(stderr, "\\%c", c);
		else if (c < 0x20 || c == 0x7f || c >= 0x80)
			fprintf(stderr, "\\u%04x", c); /* the payload is a name: ASCII expected */
		else
			fputc(c, stderr);
	}
	fputc('"', stderr);
}

/* Creates the listening socket; returns the fd or -1 with errno set. */
static int listen_at(const char *path)
{
	struct sockaddr_un address;
	int fd;

	memset(&address, 0, sizeof(address));
	address.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(address.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(address.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if ((unlink(path) < 0 && errno != ENOENT) ||
	    bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0 || listen(fd, 1) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * Receives one message; returns the first fd it carries (others are closed)
 * or -1.  The payload, the console's name, is copied into name.
 */
static int receive_fd(int connection, char *name, size_t name_size)
{
	char control[CMSG_SPACE(MAX_FDS * sizeof(int))];
	struct iovec iov = { name, name_size - 1 };
	struct msghdr message;
	struct cmsghdr *header;
	int received = -1;
	ssize_t n;

	memset(&message, 0, sizeof(message));
	memset(control, 0, sizeof(control));
	message.msg_iov = &iov;
	message.msg_iovlen = 1;
	message.msg_control = control;
	message.msg_controllen = sizeof(control);
	do
		n = recvmsg(connection, &message, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	name[n] = '\0';
	for (header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
		if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[MAX_FDS];

		memcpy(fds, CMSG_DATA(header), count * sizeof(int));
		for (size_t i = 0; i < count; i++) {
			if (received < 0)
				received = fds[i];
			else
				close(fds[i]);
		}
	}
	if (received < 0)
		errno = (message.msg_flags & MSG_CTRUNC) ? EMSGSIZE : ENOMSG;
	return received;
}

/* Copies master to stdout until the slave side hangs up (EIO) or EOF. */
static int relay(int master)
{
	char buffer[65536];

	for (;;) {
		ssize_t n = read(master, buffer, sizeof(buffer));

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == EIO))
			return 0;
		if (n < 0)
			return die("read", "console", errno, 1);
		if (write_all(1, buffer, (size_t)n) < 0)
			return die("write", "stdout", errno, 1);
	}
}

int main(int argc, char **argv)
{
	const char *input = NULL, *path = NULL;
	char name[4096];
	char pts_name[32];
	unsigned int pts_number;
	struct pollfd waiting;
	int listener, connection, master, ready;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0 || strcmp(argv[i], "--wait-exit") == 0)
			continue;
		if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
			input = argv[++i];
		else if (argv[i][0] == '-' || path)
			return usage();
		else
			path = argv[i];
	}
	if (!path)
		return usage();
	signal(SIGPIPE, SIG_IGN);

	listener = listen_at(path);
	if (listener < 0)
		return die("listen", path, errno, 1);
	printf("listening\n");
	fflush(stdout);

	waiting.fd = listener;
	waiting.events = POLLIN;
	do
		ready = poll(&waiting, 1, ACCEPT_TIMEOUT_MS);
	while (ready < 0 && errno == EINTR);
	if (ready == 0) {
		unlink(path);
		fprintf(stderr, "recvtty: nobody connected to %s within %d seconds\n", path,
			ACCEPT_TIMEOUT_MS / 1000);
		return 4;
	}
	if (ready < 0) {
		unlink(path);
		return die("poll", path, errno, 1);
	}
	connection = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	close(listener);
	unlink(path);
	if (connection < 0)
		return die("accept", path, errno, 1);
	master = receive_fd(connection, name, sizeof(name));
	close(connection);
	if (master < 0 && errno == ENOMSG) {
		fprintf(stderr, "recvtty: the message on %s carried no fd\n", path);
		return 5;
	}
	if (master < 0)
		return die("receive", path, errno, 1);

	bool is_tty = isatty(master);
	/* TIOCGPTN rather than ptsname(): the number is in the container's
	 * devpts, so glibc's check of the path on this side would be wrong. */
	bool have_pts = ioctl(master, TIOCGPTN, &pts_number) == 0;

	if (have_pts)
		snprintf(pts_name, sizeof(pts_name), "/dev/pts/%u", pts_number);
	fprintf(stderr, "recvtty: %s\n", is_tty ? "got a tty" : "not a tty");
	fprintf(stderr, "{\"isatty\":%s,\"ptsName\":", is_tty ? "true" : "false");
	json_string(have_pts ? pts_name : NULL);
	fputs(",\"name\":", stderr);
	json_string(name);
	fputs("}\n", stderr);
	fflush(stderr);
	if (!is_tty)
		return 3;

	if (input) {
		if (write_all(master, input, strlen(input)) < 0 || write_all(master, "\n", 1) < 0)
			return die("write", "console", errno, 1);
	}
	return relay(master);
}
