/*
 * probe: the only program in a test container's rootfs.
 *
 * It reports what a process inside the container sees (ids, capabilities,
 * namespaces, mounts, network, limits, fds, terminal) and performs small
 * actions (write a file, call one syscall, kill itself, use memory) whose
 * outcome an integration test asserts.
 *
 *   probe CMD [ARGS] [then CMD [ARGS]]...
 *
 * Commands run in order; the first one that fails stops the run and its
 * status is the exit status, otherwise the status of the last one is.
 * README.md next to this file is the contract the tests rely on.
 *
 * The probe runs with no shell, and maybe without /proc, /sys, /dev or /tmp:
 * every read that can fail reports null instead of stopping.  It is linked
 * statically and calls nothing that needs NSS.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/reboot.h>

extern char **environ;

/* ---------------------------------------------------------------- names */

struct name_value {
	int value;
	const char *name;
};

#define ENTRY(x) { x, #x }

/* Where two names share a value (EAGAIN/EWOULDBLOCK, EOPNOTSUPP/ENOTSUP),
 * the first one listed is the one printed. */
static const struct name_value errno_names[] = {
	ENTRY(EPERM), ENTRY(ENOENT), ENTRY(ESRCH), ENTRY(EINTR), ENTRY(EIO),
	ENTRY(ENXIO), ENTRY(E2BIG), ENTRY(ENOEXEC), ENTRY(EBADF),
	ENTRY(ECHILD), ENTRY(EAGAIN), ENTRY(ENOMEM), ENTRY(EACCES),
	ENTRY(EFAULT), ENTRY(ENOTBLK), ENTRY(EBUSY), ENTRY(EEXIST),
	ENTRY(EXDEV), ENTRY(ENODEV), ENTRY(ENOTDIR), ENTRY(EISDIR),
	ENTRY(EINVAL), ENTRY(ENFILE), ENTRY(EMFILE), ENTRY(ENOTTY),
	ENTRY(ETXTBSY), ENTRY(EFBIG), ENTRY(ENOSPC), ENTRY(ESPIPE),
	ENTRY(EROFS), ENTRY(EMLINK), ENTRY(EPIPE), ENTRY(EDOM),
	ENTRY(ERANGE), ENTRY(EDEADLK), ENTRY(ENAMETOOLONG), ENTRY(ENOLCK),
	ENTRY(ENOSYS), ENTRY(ENOTEMPTY), ENTRY(ELOOP), ENTRY(ENOMSG),
	ENTRY(EIDRM), ENTRY(ENOSTR), ENTRY(ENODATA), ENTRY(ETIME),
	ENTRY(ENOSR), ENTRY(ENOLINK), ENTRY(EPROTO), ENTRY(EBADMSG),
	ENTRY(EOVERFLOW), ENTRY(EILSEQ), ENTRY(EUSERS), ENTRY(ENOTSOCK),
	ENTRY(EDESTADDRREQ), ENTRY(EMSGSIZE), ENTRY(EPROTOTYPE),
	ENTRY(ENOPROTOOPT), ENTRY(EPROTONOSUPPORT), ENTRY(ESOCKTNOSUPPORT),
	ENTRY(EOPNOTSUPP), ENTRY(ENOTSUP), ENTRY(EPFNOSUPPORT),
	ENTRY(EAFNOSUPPORT), ENTRY(EADDRINUSE), ENTRY(EADDRNOTAVAIL),
	ENTRY(ENETDOWN), ENTRY(ENETUNREACH), ENTRY(ENETRESET),
	ENTRY(ECONNABORTED), ENTRY(ECONNRESET), ENTRY(ENOBUFS),
	ENTRY(EISCONN), ENTRY(ENOTCONN), ENTRY(ESHUTDOWN), ENTRY(ETIMEDOUT),
	ENTRY(ECONNREFUSED), ENTRY(EHOSTDOWN), ENTRY(EHOSTUNREACH),
	ENTRY(EALREADY), ENTRY(EINPROGRESS), ENTRY(ESTALE), ENTRY(EDQUOT),
	ENTRY(ECANCELED), ENTRY(ENOKEY), ENTRY(EKEYEXPIRED),
	ENTRY(EKEYREVOKED), ENTRY(EKEYREJECTED), ENTRY(EOWNERDEAD),
	ENTRY(ENOTRECOVERABLE), ENTRY(ERFKILL), ENTRY(EHWPOISON),
	ENTRY(ENOMEDIUM), ENTRY(EMEDIUMTYPE),
};

static const char *errno_name(int err)
{
	static char unknown[24];

	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].value == err)
			return errno_names[i].name;
	snprintf(unknown, sizeof(unknown), "E%d", err);
	return unknown;
}

/* Signal names without the SIG prefix, as `kill -l` prints them. */
static const struct name_value signal_names[] = {
	{ SIGHUP, "HUP" }, { SIGINT, "INT" }, { SIGQUIT, "QUIT" },
	{ SIGILL, "ILL" }, { SIGTRAP, "TRAP" }, { SIGABRT, "ABRT" },
	{ SIGBUS, "BUS" }, { SIGFPE, "FPE" }, { SIGKILL, "KILL" },
	{ SIGUSR1, "USR1" }, { SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" }, { SIGALRM, "ALRM" }, { SIGTERM, "TERM" },
	{ SIGSTKFLT, "STKFLT" }, { SIGCHLD, "CHLD" }, { SIGCONT, "CONT" },
	{ SIGSTOP, "STOP" }, { SIGTSTP, "TSTP" }, { SIGTTIN, "TTIN" },
	{ SIGTTOU, "TTOU" }, { SIGURG, "URG" }, { SIGXCPU, "XCPU" },
	{ SIGXFSZ, "XFSZ" }, { SIGVTALRM, "VTALRM" }, { SIGPROF, "PROF" },
	{ SIGWINCH, "WINCH" }, { SIGIO, "IO" }, { SIGPWR, "PWR" },
	{ SIGSYS, "SYS" },
};

static const char *signal_name(int sig)
{
	static char unknown[24];

	for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
		if (signal_names[i].value == sig)
			return signal_names[i].name;
	snprintf(unknown, sizeof(unknown), "%d", sig);
	return unknown;
}

/* Accepts "15", "TERM", "SIGTERM", "sigterm"; returns -1 when unknown. */
static int parse_signal(const char *text)
{
	char *end;
	long number = strtol(text, &end, 10);

	if (*text && *end == '\0')
		return number > 0 && number < NSIG ? (int)number : -1;
	if (strncasecmp(text, "SIG", 3) == 0)
		text += 3;
	for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
		if (strcasecmp(signal_names[i].name, text) == 0)
			return signal_names[i].value;
	return -1;
}

/* Capability names indexed by number, as in linux/capability.h. */
static const char *const capability_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

#define CAPABILITY_COUNT ((int)(sizeof(capability_names) / sizeof(capability_names[0])))

/* Accepts "CAP_SYS_ADMIN", "sys_admin" or "21"; returns -1 when unknown. */
static int parse_capability(const char *text)
{
	char *end;
	long number = strtol(text, &end, 10);

	if (*text && *end == '\0')
		return number >= 0 && number < 64 ? (int)number : -1;
	if (strncasecmp(text, "CAP_", 4) == 0)
		text += 4;
	for (int i = 0; i < CAPABILITY_COUNT; i++)
		if (strcasecmp(capability_names[i] + 4, text) == 0)
			return i;
	return -1;
}

/* ------------------------------------------------------------- helpers */

/*
 * Prints "WHAT PATH: ENAME message" (or "WHAT: ENAME message" without a
 * path) on stderr and returns the failing status 1.  stdout is flushed first
 * so both streams read in order when they share a terminal.
 */
static int fail(const char *what, const char *path, int err)
{
	fflush(stdout);
	if (path && *path)
		fprintf(stderr, "%s %s: %s %s\n", what, path, errno_name(err), strerror(err));
	else
		fprintf(stderr, "%s: %s %s\n", what, errno_name(err), strerror(err));
	return 1;
}

/* Usage errors exit with 2, like an unknown command. */
static int usage_error(const char *what, const char *message)
{
	fflush(stdout);
	fprintf(stderr, "probe: %s: %s\n", what, message);
	return 2;
}

static bool parse_long(const char *text, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(text, &end, 0);
	return *text && *end == '\0' && errno == 0;
}

static bool parse_ulong(const char *text, unsigned long *out)
{
	char *end;

	if (*text == '-')
		return false;
	errno = 0;
	*out = strtoul(text, &end, 0);
	return *text && *end == '\0' && errno == 0;
}

/* Reads a whole file (procfs files need a read loop); NULL with errno set on
 * failure.  The result is NUL-terminated and owned by the caller. */
static char *read_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t size = 0, capacity = 4096;
	char *buffer;

	if (fd < 0)
		return NULL;
	buffer = malloc(capacity);
	while (buffer) {
		ssize_t n;

		if (capacity - size < 2) {
			char *grown = realloc(buffer, capacity * 2);

			if (!grown) {
				free(buffer);
				buffer = NULL;
				errno = ENOMEM;
				break;
			}
			buffer = grown;
			capacity *= 2;
		}
		n = read(fd, buffer + size, capacity - size - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			free(buffer);
			buffer = NULL;
			errno = err;
			break;
		}
		if (n == 0) {
			buffer[size] = '\0';
			break;
		}
		size += (size_t)n;
	}
	close(fd);
	return buffer;
}

/* read_text without the trailing newline(s). */
static char *read_line(const char *path)
{
	char *text = read_text(path);
	size_t length;

	if (!text)
		return NULL;
	length = strlen(text);
	while (length > 0 && text[length - 1] == '\n')
		text[--length] = '\0';
	return text;
}

/* readlink into a new string; NULL with errno set on failure. */
static char *read_link(const char *path)
{
	char buffer[PATH_MAX + 1];
	ssize_t n = readlink(path, buffer, sizeof(buffer) - 1);

	if (n < 0)
		return NULL;
	buffer[n] = '\0';
	return strdup(buffer);
}

static char *read_link_at(int dirfd, const char *name)
{
	char buffer[PATH_MAX + 1];
	ssize_t n = readlinkat(dirfd, name, buffer, sizeof(buffer) - 1);

	if (n < 0)
		return NULL;
	buffer[n] = '\0';
	return strdup(buffer);
}

/* The value of a "Name:\tvalue" line of /proc/self/status, or NULL. */
static char *status_field(const char *status, const char *name)
{
	size_t name_length = strlen(name);

	for (const char *line = status; line && *line;) {
		const char *end = strchr(line, '\n');

		if (strncmp(line, name, name_length) == 0 && line[name_length] == ':') {
			const char *value = line + name_length + 1;

			while (*value == ' ' || *value == '\t')
				value++;
			return strndup(value, end ? (size_t)(end - value) : strlen(value));
		}
		line = end ? end + 1 : NULL;
	}
	return NULL;
}

/* --------------------------------------------------------------- JSON */

/*
 * A tiny streaming JSON writer on stdout.  Each value call writes the comma
 * it needs, so callers list keys and values in order and never track commas.
 */
static int json_depth;
static bool json_first[64];
static bool json_after_key;

static void json_separator(void)
{
	if (json_after_key) {
		json_after_key = false;
		return;
	}
	if (json_depth > 0) {
		if (!json_first[json_depth])
			putchar(',');
		json_first[json_depth] = false;
	}
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static int utf8_sequence_length(const unsigned char *s)
{
	int length;
	unsigned char low = 0x80, high = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		length = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		length = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		length = 4;
	else
		return 0;
	/* Reject overlong forms, surrogates and code points past U+10FFFF. */
	if (s[0] == 0xe0)
		low = 0xa0;
	else if (s[0] == 0xed)
		high = 0x9f;
	else if (s[0] == 0xf0)
		low = 0x90;
	else if (s[0] == 0xf4)
		high = 0x8f;
	if (s[1] < low || s[1] > high)
		return 0;
	for (int i = 2; i < length; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return length;
}

/* Writes s as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static void json_escape(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	putchar('"');
	while (*s) {
		int length;

		switch (*s) {
		case '"': fputs("\\\"", stdout); s++; continue;
		case '\\': fputs("\\\\", stdout); s++; continue;
		case '\n': fputs("\\n", stdout); s++; continue;
		case '\r': fputs("\\r", stdout); s++; continue;
		case '\t': fputs("\\t", stdout); s++; continue;
		case '\b': fputs("\\b", stdout); s++; continue;
		case '\f': fputs("\\f", stdout); s++; continue;
		}
		if (*s < 0x20) {
			printf("\\u%04x", *s);
			s++;
			continue;
		}
		length = utf8_sequence_length(s);
		if (length == 0) {
			fputs("\\ufffd", stdout);
			s++;
			continue;
		}
		fwrite(s, 1, (size_t)length, stdout);
		s += length;
	}
	putchar('"');
}

static void json_key(const char *key)
{
	json_separator();
	json_escape(key);
	putchar(':');
	json_after_key = true;
}

static void json_open(char bracket)
{
	json_separator();
	putchar(bracket);
	json_depth++;
	json_first[json_depth] = true;
}

static void json_close(char bracket)
{
	json_depth--;
	putchar(bracket);
}

static void json_null(void)
{
	json_separator();
	fputs("null", stdout);
}

/* A string, or null for NULL. */
static void json_string(const char *value)
{
	if (!value) {
		json_null();
		return;
	}
	json_separator();
	json_escape(value);
}

static void json_number(long long value)
{
	json_separator();
	printf("%lld", value);
}

static void json_bool(bool value)
{
	json_separator();
	fputs(value ? "true" : "false", stdout);
}

/* Ends a top-level value: one object per line. */
static void json_end_line(void)
{
	putchar('\n');
	json_depth = 0;
	json_after_key = false;
}

/* ------------------------------------------------------- capabilities */

static bool capget_sets(uint64_t *effective, uint64_t *permitted, uint64_t *inheritable)
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &header, data) < 0)
		return false;
	*effective = (uint64_t)data[1].effective << 32 | data[0].effective;
	*permitted = (uint64_t)data[1].permitted << 32 | data[0].permitted;
	*inheritable = (uint64_t)data[1].inheritable << 32 | data[0].inheritable;
	return true;
}

/*
 * Without /proc the sets come from capget and prctl, printed the way
 * /proc/self/status prints them (16 hex digits).  index: 0 bounding,
 * 1 effective, 2 permitted, 3 inheritable, 4 ambient.
 */
static char *capability_set_from_syscalls(int index)
{
	uint64_t effective, permitted, inheritable, value = 0;
	char text[17];

	if (index == 0 || index == 4) {
		for (int cap = 0; cap < 64; cap++) {
			int set = index == 0 ? prctl(PR_CAPBSET_READ, cap, 0, 0, 0)
					     : prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);

			if (set < 0 && errno == EINVAL && cap > 0)
				break; /* past the last capability the kernel knows */
			if (set < 0)
				return NULL;
			if (set > 0)
				value |= (uint64_t)1 << cap;
		}
	} else {
		if (!capget_sets(&effective, &permitted, &inheritable))
			return NULL;
		value = index == 1 ? effective : index == 2 ? permitted : inheritable;
	}
	snprintf(text, sizeof(text), "%016llx", (unsigned long long)value);
	return strdup(text);
}

/* ------------------------------------------------------------- report */

static const char *const namespace_names[] = {
	"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts",
};

static void report_ids(void)
{
	int count = getgroups(0, NULL);
	gid_t *groups = count > 0 ? calloc((size_t)count, sizeof(gid_t)) : NULL;

	json_key("pid"); json_number(getpid());
	json_key("ppid"); json_number(getppid());
	json_key("uid"); json_number(getuid());
	json_key("gid"); json_number(getgid());
	json_key("euid"); json_number(geteuid());
	json_key("egid"); json_number(getegid());
	json_key("groups");
	if (count < 0) {
		json_null();
	} else {
		if (groups)
			count = getgroups(count, groups);
		json_open('[');
		for (int i = 0; groups && i < count; i++)
			json_number(groups[i]);
		json_close(']');
	}
	free(groups);
	json_key("sid"); json_number(getsid(0));
	json_key("pgrp"); json_number(getpgrp());
}

static void report_uname_umask_cwd(void)
{
	struct utsname names;
	bool have_names = uname(&names) == 0;
	mode_t mask = umask(0);
	char *cwd;

	umask(mask);
	json_key("hostname"); json_string(have_names ? names.nodename : NULL);
	json_key("domainname"); json_string(have_names ? names.domainname : NULL);
	json_key("umask"); json_number(mask);
	cwd = getcwd(NULL, 0);
	json_key("cwd"); json_string(cwd);
	free(cwd);
}

static void report_capabilities(void)
{
	static const char *const keys[][2] = {
		{ "bounding", "CapBnd" }, { "effective", "CapEff" },
		{ "permitted", "CapPrm" }, { "inheritable", "CapInh" },
		{ "ambient", "CapAmb" },
	};
	char *status = read_text("/proc/self/status");
	char *value;
	int number;

	json_key("caps");
	json_open('{');
	for (int i = 0; i < 5; i++) {
		value = status ? status_field(status, keys[i][1]) : NULL;
		if (!value)
			value = capability_set_from_syscalls(i);
		json_key(keys[i][0]);
		json_string(value);
		free(value);
	}
	json_close('}');

	value = status ? status_field(status, "NoNewPrivs") : NULL;
	number = value ? atoi(value) : prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	json_key("noNewPrivs");
	if (number < 0)
		json_null();
	else
		json_number(number);
	free(value);

	value = status ? status_field(status, "Seccomp") : NULL;
	number = value ? atoi(value) : prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
	json_key("seccomp");
	if (number < 0)
		json_null();
	else
		json_number(number);
	free(value);
	free(status);
}

static void report_namespaces(void)
{
	json_key("namespaces");
	json_open('{');
	for (size_t i = 0; i < sizeof(namespace_names) / sizeof(namespace_names[0]); i++) {
		char path[64];
		char *target;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", namespace_names[i]);
		target = read_link(path);
		json_key(namespace_names[i]);
		json_string(target);
		free(target);
	}
	json_close('}');
}

/* mountinfo escapes space, tab, newline and backslash as \NNN (octal). */
static void unescape_octal(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/*
 * One mountinfo line:
 *   ID PARENT MAJ:MIN ROOT MOUNTPOINT MOUNTOPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
 */
static void report_mount_line(char *line)
{
	char *fields[64];
	int count = 0, separator = -1;
	char *options;

	for (char *field = strtok(line, " "); field && count < 64; field = strtok(NULL, " "))
		fields[count++] = field;
	for (int i = 6; i < count; i++) {
		if (strcmp(fields[i], "-") == 0) {
			separator = i;
			break;
		}
	}
	if (separator < 0 || count < separator + 3)
		return;
	for (int i = 3; i < count; i++)
		unescape_octal(fields[i]);

	const char *mount_options = fields[5];
	const char *super_options = count > separator + 3 ? fields[separator + 3] : "";
	size_t length = strlen(mount_options) + strlen(super_options) + 2;

	options = malloc(length);
	if (options)
		snprintf(options, length, "%s%s%s", mount_options, *super_options ? "," : "",
			 super_options);

	json_open('{');
	json_key("mountPoint"); json_string(fields[4]);
	json_key("fsType"); json_string(fields[separator + 1]);
	json_key("source"); json_string(fields[separator + 2]);
	json_key("options"); json_string(options);
	json_key("mountOptions"); json_string(mount_options);
	json_key("superOptions"); json_string(super_options);
	json_key("root"); json_string(fields[3]);
	json_key("optionalFields");
	json_open('[');
	for (int i = 6; i < separator; i++)
		json_string(fields[i]);
	json_close(']');
	json_key("id"); json_number(atoll(fields[0]));
	json_key("parentId"); json_number(atoll(fields[1]));
	json_close('}');
	free(options);
}

/* A JSON array under `key` with what `emit` writes for each non-empty line of `file`, or null
 * when the file cannot be read (no /proc). */
static void report_lines(const char *key, const char *file, void (*emit)(char *line))
{
	char *text = read_text(file);

	json_key(key);
	if (!text) {
		json_null();
		return;
	}
	json_open('[');
	for (char *line = text; *line;) {
		char *end = strchr(line, '\n');

		if (end)
			*end = '\0';
		if (*line)
			emit(line);
		line = end ? end + 1 : line + strlen(line);
	}
	json_close(']');
	free(text);
}

static void emit_string(char *line)
{
	json_string(line);
}

static void report_mounts(void)
{
	report_lines("mounts", "/proc/self/mountinfo", report_mount_line);
}

/* getifaddrs talks netlink, so this works without /proc and /sys. */
static void report_interfaces(void)
{
	struct ifaddrs *list;

	json_key("interfaces");
	if (getifaddrs(&list) < 0) {
		json_null();
		return;
	}
	json_open('[');
	for (struct ifaddrs *entry = list; entry; entry = entry->ifa_next) {
		bool seen = false;

		/* One object per name, in the order the kernel lists links. */
		for (struct ifaddrs *before = list; before != entry; before = before->ifa_next)
			if (strcmp(before->ifa_name, entry->ifa_name) == 0)
				seen = true;
		if (seen)
			continue;
		json_open('{');
		json_key("name"); json_string(entry->ifa_name);
		json_key("up"); json_bool(entry->ifa_flags & IFF_UP);
		json_key("loopback"); json_bool(entry->ifa_flags & IFF_LOOPBACK);
		json_key("addresses");
		json_open('[');
		for (struct ifaddrs *address = entry; address; address = address->ifa_next) {
			char text[INET6_ADDRSTRLEN];
			const void *raw;

			if (strcmp(address->ifa_name, entry->ifa_name) != 0 || !address->ifa_addr)
				continue;
			if (address->ifa_addr->sa_family == AF_INET)
				raw = &((struct sockaddr_in *)address->ifa_addr)->sin_addr;
			else if (address->ifa_addr->sa_family == AF_INET6)
				raw = &((struct sockaddr_in6 *)address->ifa_addr)->sin6_addr;
			else
				continue;
			if (inet_ntop(address->ifa_addr->sa_family, raw, text, sizeof(text)))
				json_string(text);
		}
		json_close(']');
		json_close('}');
	}
	json_close(']');
	freeifaddrs(list);
}

static void report_cgroup(void)
{
	report_lines("cgroup", "/proc/self/cgroup", emit_string);
}

static const struct name_value rlimit_names[] = {
	{ RLIMIT_NOFILE, "nofile" }, { RLIMIT_NPROC, "nproc" },
	{ RLIMIT_CORE, "core" }, { RLIMIT_CPU, "cpu" },
	{ RLIMIT_FSIZE, "fsize" }, { RLIMIT_DATA, "data" },
	{ RLIMIT_STACK, "stack" }, { RLIMIT_AS, "as" },
	{ RLIMIT_LOCKS, "locks" }, { RLIMIT_MEMLOCK, "memlock" },
	{ RLIMIT_MSGQUEUE, "msgqueue" }, { RLIMIT_NICE, "nice" },
	{ RLIMIT_RTPRIO, "rtprio" }, { RLIMIT_RTTIME, "rttime" },
	{ RLIMIT_SIGPENDING, "sigpending" }, { RLIMIT_RSS, "rss" },
};

static void json_rlimit_value(rlim_t value)
{
	if (value == RLIM_INFINITY)
		json_string("unlimited");
	else
		json_number((long long)value);
}

static void report_rlimits(void)
{
	json_key("rlimits");
	json_open('{');
	for (size_t i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++) {
		struct rlimit limit;

		json_key(rlimit_names[i].name);
		if (getrlimit(rlimit_names[i].value, &limit) < 0) {
			json_null();
			continue;
		}
		json_open('{');
		json_key("soft"); json_rlimit_value(limit.rlim_cur);
		json_key("hard"); json_rlimit_value(limit.rlim_max);
		json_close('}');
	}
	json_close('}');
}

/* A number read from a file, or null. */
static void json_number_file(const char *path)
{
	char *text = read_line(path);
	long value;

	if (text && parse_long(text, &value))
		json_number(value);
	else
		json_null();
	free(text);
}

static void json_line_file(const char *path)
{
	char *text = read_line(path);

	json_string(text);
	free(text);
}

struct open_fd {
	int fd;
	char *target; /* NULL when /proc/self/fd is not readable */
};

static int compare_open_fds(const void *a, const void *b)
{
	return ((const struct open_fd *)a)->fd - ((const struct open_fd *)b)->fd;
}

/*
 * The open fds, from /proc/self/fd without the fd reading it.  Without /proc
 * the fds are found with F_GETFD and their targets are unknown.
 */
static struct open_fd *list_open_fds(size_t *count)
{
	struct open_fd *fds = NULL;
	size_t capacity = 0;
	int dirfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = dirfd >= 0 ? fdopendir(dirfd) : NULL;

	*count = 0;
	if (!dir && dirfd >= 0)
		close(dirfd);
	if (dir) {
		struct dirent *entry;

		while ((entry = readdir(dir))) {
			long fd;

			if (!parse_long(entry->d_name, &fd) || fd == dirfd)
				continue;
			if (*count == capacity) {
				capacity = capacity ? capacity * 2 : 16;
				fds = realloc(fds, capacity * sizeof(*fds));
				if (!fds)
					break;
			}
			fds[*count].fd = (int)fd;
			fds[*count].target = read_link_at(dirfd, entry->d_name);
			(*count)++;
		}
		closedir(dir);
	} else {
		struct rlimit limit;
		long last = 1024;

		if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
			last = limit.rlim_cur < 65536 ? (long)limit.rlim_cur : 65536;
		for (long fd = 0; fd < last; fd++) {
			if (fcntl((int)fd, F_GETFD) < 0)
				continue;
			if (*count == capacity) {
				capacity = capacity ? capacity * 2 : 16;
				fds = realloc(fds, capacity * sizeof(*fds));
				if (!fds)
					break;
			}
			fds[*count].fd = (int)fd;
			fds[*count].target = NULL;
			(*count)++;
		}
	}
	if (!fds)
		*count = 0;
	else
		qsort(fds, *count, sizeof(*fds), compare_open_fds);
	return fds;
}

static void free_open_fds(struct open_fd *fds, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(fds[i].target);
	free(fds);
}

static void report_fds(void)
{
	size_t count;
	struct open_fd *fds = list_open_fds(&count);

	json_key("fds");
	json_open('[');
	for (size_t i = 0; i < count; i++) {
		json_open('{');
		json_key("fd"); json_number(fds[i].fd);
		json_key("target"); json_string(fds[i].target);
		json_close('}');
	}
	json_close(']');
	free_open_fds(fds, count);
}

static int cmd_report(char **args, int count)
{
	json_open('{');
	report_ids();
	report_uname_umask_cwd();
	report_capabilities();
	report_namespaces();
	report_mounts();
	report_interfaces();
	report_cgroup();
	report_rlimits();
	json_key("oomScoreAdj"); json_number_file("/proc/self/oom_score_adj");
	json_key("securityLabel"); json_line_file("/proc/self/attr/current");
	json_key("env");
	json_open('[');
	for (char **variable = environ; variable && *variable; variable++)
		json_string(*variable);
	json_close(']');
	report_fds();
	json_key("tty");
	json_open('{');
	json_key("stdin"); json_bool(isatty(0));
	json_key("stdout"); json_bool(isatty(1));
	json_key("stderr"); json_bool(isatty(2));
	json_close('}');
	json_key("memoryMax"); json_line_file("/sys/fs/cgroup/memory.max");
	json_key("pidsMax"); json_line_file("/sys/fs/cgroup/pids.max");
	json_close('}');
	json_end_line();
	return 0;
}

/* ------------------------------------------------- process and timing */

/* A number of seconds in [0, max] (fractions allowed) into *out; false if TEXT is not one. */
static bool parse_seconds(const char *text, double max, double *out)
{
	char *end;
	double value = strtod(text, &end);

	if (*end || end == text || !(value >= 0) || value > max)
		return false;
	*out = value;
	return true;
}

static void sleep_seconds(double seconds)
{
	struct timespec left;

	left.tv_sec = (time_t)seconds;
	left.tv_nsec = (long)((seconds - (double)left.tv_sec) * 1e9);
	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
}

static int cmd_sleep(char **args, int count)
{
	double seconds;

	if (strcasecmp(args[0], "inf") == 0 || strcasecmp(args[0], "infinity") == 0) {
		fflush(stdout);
		for (;;)
			pause();
	}
	if (!parse_seconds(args[0], 1e9, &seconds))
		return usage_error("sleep", "expected a number of seconds or inf");
	fflush(stdout);
	sleep_seconds(seconds);
	return 0;
}

static int cmd_exit(char **args, int count)
{
	long status;

	if (!parse_long(args[0], &status) || status < 0 || status > 255)
		return usage_error("exit", "expected a status from 0 to 255");
	fflush(stdout);
	exit((int)status);
}

/* A global the compiler cannot prove null, so the fault is a real store. */
static int *volatile fault_address;
static volatile int fault_dividend = 1, fault_divisor;

/*
 * The init of a pid namespace ignores signals it has no handler for, even
 * from itself, but the kernel lets a real fault kill it.  So for the fault
 * signals the probe makes the fault; any other signal is survived and
 * reported.
 */
static void die_by_fault(int sig)
{
	if (sig == SIGSEGV)
		*fault_address = 1;
#if defined(__x86_64__) || defined(__i386__)
	if (sig == SIGFPE)
		fault_divisor = fault_dividend / fault_divisor; /* not 1 / x: gcc avoids that division */
	if (sig == SIGILL)
		__builtin_trap(); /* ud2 */
	if (sig == SIGTRAP)
		__asm__ volatile("int3");
#endif
}

static int cmd_kill_self(char **args, int count)
{
	int sig = parse_signal(args[0]);
	sigset_t set;

	if (sig < 0)
		return usage_error("kill-self", "unknown signal");
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	fflush(stdout);
	fflush(stderr);
	kill(getpid(), sig);

	/* Still here: the signal stops, is ignored by default, or we are init. */
	if (sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH ||
	    sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
		return 0;
	die_by_fault(sig);
	fprintf(stderr, "kill-self: still alive after SIG%s (pid %d)\n", signal_name(sig), getpid());
	return 1;
}

static int signal_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char number = (unsigned char)sig;

	if (write(signal_pipe[1], &number, 1) < 0) {
		/* nothing to do in a handler */
	}
	errno = saved;
}

/*
 * Prints "ready", then "signal NAME" for each signal in the order it arrived.
 * A handler (not signalfd) is installed on purpose: the init of a pid
 * namespace only receives signals it handles.
 */
static int cmd_signals(char **args, int count)
{
	static const int handled[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH };
	struct sigaction action;
	sigset_t set;
	long status;

	if (!parse_long(args[0], &status) || status < 0 || status > 255)
		return usage_error("signals", "expected an exit status from 0 to 255");
	if (pipe2(signal_pipe, O_CLOEXEC) < 0)
		return fail("signals", "pipe", errno);
	memset(&action, 0, sizeof(action));
	action.sa_handler = on_signal;
	action.sa_flags = SA_RESTART;
	sigemptyset(&action.sa_mask);
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++) {
		sigaction(handled[i], &action, NULL);
		sigaddset(&set, handled[i]);
	}
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		unsigned char number;
		ssize_t n = read(signal_pipe[0], &number, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail("signals", "read", n < 0 ? errno : EIO);
		printf("signal %s\n", signal_name(number));
		fflush(stdout);
		if (number == SIGTERM || number == SIGINT)
			exit((int)status);
	}
}

static int cmd_hog_memory(char **args, int count)
{
	long megabytes;

	if (!parse_long(args[0], &megabytes) || megabytes < 0)
		return usage_error("hog-memory", "expected a number of MiB");
	for (long i = 1; i <= megabytes; i++) {
		char *block = malloc(1 << 20);

		if (!block)
			return fail("hog-memory", "malloc", ENOMEM);
		memset(block, 0xa5, 1 << 20); /* touch every page */
		if (i % 16 == 0) {
			printf("allocated %ld\n", i);
			fflush(stdout);
		}
	}
	printf("done\n");
	return 0;
}

static int cmd_fork_bomb(char **args, int count)
{
	long wanted, forked = 0;
	pid_t *children;
	int err = 0;

	if (!parse_long(args[0], &wanted) || wanted < 0 || wanted > 1000000)
		return usage_error("fork-bomb", "expected a number of children");
	children = calloc((size_t)wanted + 1, sizeof(pid_t));
	if (!children)
		return fail("fork-bomb", "calloc", ENOMEM);
	fflush(stdout);
	fflush(stderr);
	while (forked < wanted) {
		pid_t pid = fork();

		if (pid < 0) {
			err = errno;
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			sleep_seconds(30);
			_exit(0);
		}
		children[forked++] = pid;
	}
	printf("forked %ld\n", forked);
	if (err)
		printf("failed at %ld: %s\n", forked, errno_name(err));
	fflush(stdout);
	for (long i = 0; i < forked; i++)
		kill(children[i], SIGKILL);
	for (long i = 0; i < forked; i++)
		while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR)
			;
	free(children);
	return 0;
}

static double monotonic_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/*
 * A child that outlives the probe holding its stdout and stderr: it prints TEXT after DELAY
 * seconds (and again every EVERY seconds, when given), and keeps the descriptors open for HOLD
 * seconds in all. The probe goes on at once.
 */
static int cmd_background(char **args, int count)
{
	double delay, hold, every = 0;
	pid_t pid;

	if (!parse_seconds(args[0], 1e6, &delay))
		return usage_error("background", "expected a delay in seconds");
	if (!parse_seconds(args[1], 1e6, &hold))
		return usage_error("background", "expected a time to hold stdout in seconds");
	if (count > 3 && (!parse_seconds(args[3], 1e6, &every) || every == 0))
		return usage_error("background", "expected a positive interval in seconds");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return fail("background", "fork", errno);
	if (pid == 0) {
		double started = monotonic_seconds(), left;

		sleep_seconds(delay);
		do {
			printf("%s\n", args[2]);
			fflush(stdout);
			if (every > 0)
				sleep_seconds(every);
		} while (every > 0 && monotonic_seconds() - started < hold);
		left = hold - (monotonic_seconds() - started);
		if (left > 0)
			sleep_seconds(left);
		_exit(0);
	}
	return 0;
}

static int cmd_spin(char **args, int count)
{
	double seconds, deadline;
	struct rusage usage;
	volatile unsigned long counter = 0;

	if (!parse_seconds(args[0], HUGE_VAL, &seconds))
		return usage_error("spin", "expected a number of seconds");
	deadline = monotonic_seconds() + seconds;
	while (monotonic_seconds() < deadline)
		for (int i = 0; i < 10000; i++)
			counter++;
	getrusage(RUSAGE_SELF, &usage);
	printf("cpu_ms %lld\n",
	       (long long)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
		       (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000);
	return 0;
}

/* ---------------------------------------------------------- filesystem */

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

static int cmd_write(char **args, int count)
{
	const char *text = count > 1 ? args[1] : "probe\n";
	int fd = open(args[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
	int err;

	if (fd < 0)
		return fail("write", args[0], errno);
	if (write_all(fd, text, strlen(text)) < 0) {
		err = errno;
		close(fd);
		return fail("write", args[0], err);
	}
	if (close(fd) < 0)
		return fail("write", args[0], errno);
	return 0;
}

static int cmd_cat(char **args, int count)
{
	bool from_stdin = strcmp(args[0], "-") == 0;
	int fd = from_stdin ? 0 : open(args[0], O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char buffer[65536];
	int err = 0;

	if (fd < 0)
		return fail("cat", args[0], errno);
	for (;;) {
		ssize_t n = read(fd, buffer, sizeof(buffer));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = errno;
		if (n <= 0)
			break;
		fwrite(buffer, 1, (size_t)n, stdout);
	}
	if (!from_stdin)
		close(fd);
	return err ? fail("cat", args[0], err) : 0;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_ls(char **args, int count)
{
	DIR *dir = opendir(args[0]);
	struct dirent *entry;
	char **names = NULL;
	size_t used = 0, capacity = 0;

	if (!dir)
		return fail("ls", args[0], errno);
	while ((entry = readdir(dir))) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		if (used == capacity) {
			capacity = capacity ? capacity * 2 : 64;
			names = realloc(names, capacity * sizeof(*names));
			if (!names) {
				closedir(dir);
				return fail("ls", args[0], ENOMEM);
			}
		}
		names[used++] = strdup(entry->d_name);
	}
	closedir(dir);
	if (names)
		qsort(names, used, sizeof(*names), compare_strings);
	for (size_t i = 0; i < used; i++) {
		if (names[i])
			puts(names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}

static const char *file_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "char";
	case S_IFBLK: return "block";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	}
	return "unknown";
}

static int cmd_stat(char **args, int count)
{
	struct stat st;
	char mode[8];
	char *target = NULL;

	if (lstat(args[0], &st) < 0)
		return fail("stat", args[0], errno);
	if (S_ISLNK(st.st_mode))
		target = read_link(args[0]);
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
	json_open('{');
	json_key("path"); json_string(args[0]);
	json_key("type"); json_string(file_type(st.st_mode));
	json_key("mode"); json_string(mode);
	json_key("uid"); json_number(st.st_uid);
	json_key("gid"); json_number(st.st_gid);
	json_key("rdevMajor"); json_number(major(st.st_rdev));
	json_key("rdevMinor"); json_number(minor(st.st_rdev));
	json_key("size"); json_number((long long)st.st_size);
	json_key("linkTarget"); json_string(target);
	json_close('}');
	json_end_line();
	free(target);
	return 0;
}

static int cmd_readlink(char **args, int count)
{
	char *target = read_link(args[0]);

	if (!target)
		return fail("readlink", args[0], errno);
	puts(target);
	free(target);
	return 0;
}

static int cmd_mkdir(char **args, int count)
{
	return mkdir(args[0], 0755) < 0 ? fail("mkdir", args[0], errno) : 0;
}

/* Creates the file if needed and sets its times to now. */
static int cmd_touch(char **args, int count)
{
	int fd = open(args[0], O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);

	if (fd < 0 && errno == EISDIR)
		return utimensat(AT_FDCWD, args[0], NULL, 0) < 0 ? fail("touch", args[0], errno) : 0;
	if (fd < 0)
		return fail("touch", args[0], errno);
	if (futimens(fd, NULL) < 0) {
		int err = errno;

		close(fd);
		return fail("touch", args[0], err);
	}
	close(fd);
	return 0;
}

/* Removes a file, or an empty directory. */
static int cmd_rm(char **args, int count)
{
	if (unlink(args[0]) == 0)
		return 0;
	if (errno == EISDIR && rmdir(args[0]) == 0)
		return 0;
	return fail("rm", args[0], errno);
}

/* ------------------------------------------------------------ printing */

static int cmd_echo(char **args, int count)
{
	for (int i = 0; i < count; i++)
		printf("%s%s", i ? " " : "", args[i]);
	putchar('\n');
	return 0;
}

static int cmd_stderr(char **args, int count)
{
	fflush(stdout);
	for (int i = 0; i < count; i++)
		fprintf(stderr, "%s%s", i ? " " : "", args[i]);
	fputc('\n', stderr);
	fflush(stderr);
	return 0;
}

static int cmd_env(char **args, int count)
{
	for (char **variable = environ; variable && *variable; variable++)
		puts(*variable);
	return 0;
}

static int cmd_cwd(char **args, int count)
{
	char *cwd = getcwd(NULL, 0);

	if (!cwd)
		return fail("cwd", NULL, errno);
	puts(cwd);
	free(cwd);
	return 0;
}

static int cmd_pid(char **args, int count)
{
	printf("%d\n", getpid());
	return 0;
}

static int cmd_hostname(char **args, int count)
{
	char name[HOST_NAME_MAX + 1];

	if (gethostname(name, sizeof(name)) < 0)
		return fail("hostname", NULL, errno);
	name[HOST_NAME_MAX] = '\0';
	puts(name);
	return 0;
}

static int cmd_id(char **args, int count)
{
	int groups_count = getgroups(0, NULL);
	gid_t *groups = groups_count > 0 ? calloc((size_t)groups_count, sizeof(gid_t)) : NULL;

	if (groups)
		groups_count = getgroups(groups_count, groups);
	printf("uid=%u gid=%u groups=", getuid(), getgid());
	for (int i = 0; groups && i < groups_count; i++)
		printf("%s%u", i ? "," : "", groups[i]);
	putchar('\n');
	free(groups);
	return 0;
}

static int cmd_fds(char **args, int count)
{
	size_t fd_count;
	struct open_fd *fds = list_open_fds(&fd_count);

	for (size_t i = 0; i < fd_count; i++)
		printf("%d -> %s\n", fds[i].fd, fds[i].target ? fds[i].target : "?");
	free_open_fds(fds, fd_count);
	return 0;
}

static int cmd_tty(char **args, int count)
{
	struct winsize size;
	bool have_size = ioctl(0, TIOCGWINSZ, &size) == 0;
	pid_t foreground = tcgetpgrp(0);
	int tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	char *name = ttyname(0);

	if (tty_fd >= 0)
		close(tty_fd);
	json_open('{');
	json_key("stdin"); json_bool(isatty(0));
	json_key("stdout"); json_bool(isatty(1));
	json_key("stderr"); json_bool(isatty(2));
	json_key("ttyname"); json_string(name);
	json_key("rows");
	if (have_size) json_number(size.ws_row); else json_null();
	json_key("cols");
	if (have_size) json_number(size.ws_col); else json_null();
	json_key("sid"); json_number(getsid(0));
	json_key("pgrp"); json_number(getpgrp());
	json_key("foreground");
	if (foreground >= 0) json_number(foreground); else json_null();
	json_key("controlling"); json_bool(tty_fd >= 0);
	json_close('}');
	json_end_line();
	return 0;
}

static int cmd_cap_check(char **args, int count)
{
	int cap = parse_capability(args[0]);
	uint64_t effective, permitted, inheritable;
	char number[16];

	if (cap < 0)
		return usage_error("cap-check", "unknown capability");
	if (!capget_sets(&effective, &permitted, &inheritable))
		return fail("cap-check", args[0], errno);
	snprintf(number, sizeof(number), "CAP_%d", cap);
	printf("%s %s\n", cap < CAPABILITY_COUNT ? capability_names[cap] : number,
	       effective & ((uint64_t)1 << cap) ? "yes" : "no");
	return 0;
}

/* ------------------------------------------------------------ syscalls */

static const struct name_value socket_families[] = {
	{ AF_UNIX, "unix" }, { AF_INET, "inet" }, { AF_INET6, "inet6" },
	{ AF_NETLINK, "netlink" }, { AF_PACKET, "packet" }, { AF_KEY, "key" },
	{ AF_ALG, "alg" }, { AF_VSOCK, "vsock" }, { AF_BLUETOOTH, "bluetooth" },
};

static const struct name_value socket_types[] = {
	{ SOCK_STREAM, "stream" }, { SOCK_DGRAM, "dgram" }, { SOCK_RAW, "raw" },
	{ SOCK_SEQPACKET, "seqpacket" }, { SOCK_PACKET, "packet" },
};

/* A number, or a name from the table with or without the given prefix. */
static bool parse_named(const char *text, const struct name_value *table, size_t size,
			const char *prefix, long *out)
{
	size_t prefix_length = strlen(prefix);

	if (parse_long(text, out))
		return true;
	if (strncasecmp(text, prefix, prefix_length) == 0)
		text += prefix_length;
	for (size_t i = 0; i < size; i++) {
		if (strcasecmp(table[i].name, text) == 0) {
			*out = table[i].value;
			return true;
		}
	}
	return false;
}

/*
 * Calls one syscall and prints "NAME = RESULT" or "NAME = -1 ENAME".  The
 * arguments are chosen so a success changes nothing outside the probe, or as
 * little as possible: reboot passes a wrong magic number, pivot_root asks for
 * the current root, clock_settime sets the time it just read.
 */
static int cmd_syscall(char **args, int count)
{
	const char *name = args[0];
	const char *arg1 = count > 1 ? args[1] : NULL;
	const char *arg2 = count > 2 ? args[2] : NULL;
	unsigned long number;
	long value, family, type, protocol = 0;
	long result;

	errno = 0;
	if (strcmp(name, "unshare") == 0) {
		number = CLONE_NEWNS | CLONE_NEWUSER;
		if (arg1 && !parse_ulong(arg1, &number))
			return usage_error("syscall unshare", "expected clone flags as a number");
		result = syscall(SYS_unshare, number);
	} else if (strcmp(name, "mount") == 0) {
		const char *target = arg1 ? arg1 : "/mnt-probe";

		if (!arg1 && mkdir(target, 0755) < 0 && errno != EEXIST)
			target = "/"; /* a read-only rootfs: mount over the root itself */
		result = syscall(SYS_mount, "tmpfs", target, "tmpfs", 0UL, NULL);
	} else if (strcmp(name, "keyctl") == 0) {
		result = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL);
	} else if (strcmp(name, "ptrace") == 0) {
		result = syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
	} else if (strcmp(name, "chroot") == 0) {
		result = syscall(SYS_chroot, arg1 ? arg1 : "/");
	} else if (strcmp(name, "setuid") == 0 || strcmp(name, "setgid") == 0) {
		if (!arg1 || !parse_long(arg1, &value))
			return usage_error(name[3] == 'u' ? "syscall setuid" : "syscall setgid", "expected an id");
		result = syscall(name[3] == 'u' ? SYS_setuid : SYS_setgid, value);
	} else if (strcmp(name, "setgroups") == 0) {
		result = syscall(SYS_setgroups, 0, NULL);
	} else if (strcmp(name, "sethostname") == 0) {
		const char *hostname = arg1 ? arg1 : "probe";

		result = syscall(SYS_sethostname, hostname, strlen(hostname));
	} else if (strcmp(name, "reboot") == 0) {
		/* The capability check comes first (EPERM), then the magic (EINVAL). */
		result = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, 0, LINUX_REBOOT_CMD_CAD_OFF, NULL);
	} else if (strcmp(name, "personality") == 0) {
		result = syscall(SYS_personality, 0xffffffffUL);
	} else if (strcmp(name, "clock_settime") == 0) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		result = syscall(SYS_clock_settime, CLOCK_REALTIME, &now);
	} else if (strcmp(name, "mknod") == 0) {
		result = syscall(SYS_mknodat, AT_FDCWD, arg1 ? arg1 : "/probe-mknod",
				 S_IFCHR | 0666, makedev(1, 3));
	} else if (strcmp(name, "swapon") == 0) {
		result = syscall(SYS_swapon, arg1 ? arg1 : "/nonexistent", 0);
	} else if (strcmp(name, "pivot_root") == 0) {
		/* The current root as both: EBUSY when permitted, never a change. */
		result = syscall(SYS_pivot_root, arg1 ? arg1 : "/", arg2 ? arg2 : "/");
	} else if (strcmp(name, "bpf") == 0) {
		/* BPF_PROG_LOAD (5) with an all-zero attribute: no program type. */
		unsigned char attr[128];

		memset(attr, 0, sizeof(attr));
		result = syscall(SYS_bpf, 5, attr, sizeof(attr));
	} else if (strcmp(name, "perf_event_open") == 0) {
		/* An all-zero attribute for no pid and no cpu is invalid. */
		unsigned char attr[128];

		memset(attr, 0, sizeof(attr));
		result = syscall(SYS_perf_event_open, attr, -1, -1, -1, 0UL);
	} else if (strcmp(name, "socket") == 0) {
		if (!arg1 || !arg2 ||
		    !parse_named(arg1, socket_families, sizeof(socket_families) / sizeof(socket_families[0]),
				 "AF_", &family) ||
		    !parse_named(arg2, socket_types, sizeof(socket_types) / sizeof(socket_types[0]),
				 "SOCK_", &type) ||
		    (count > 3 && !parse_long(args[3], &protocol)))
			return usage_error("syscall socket", "expected FAMILY TYPE [PROTOCOL]");
		result = syscall(SYS_socket, family, type, protocol);
		if (result >= 0)
			close((int)result);
	} else if (strcmp(name, "getpid") == 0) {
		result = syscall(SYS_getpid);
	} else {
		fflush(stdout);
		fprintf(stderr, "probe: unknown syscall %s\n", name);
		return 2;
	}
	if (result < 0)
		printf("%s = -1 %s\n", name, errno_name(errno));
	else
		printf("%s = %ld\n", name, result);
	return 0;
}

/* ---------------------------------------------------------------- main */

struct command {
	const char *name;
	int min_args, max_args; /* max_args -1: any number */
	int (*run)(char **args, int count);
	const char *usage;
};

static const struct command commands[] = {
	{ "report", 0, 0, cmd_report, "report" },
	{ "sleep", 1, 1, cmd_sleep, "sleep SECONDS|inf" },
	{ "exit", 1, 1, cmd_exit, "exit STATUS" },
	{ "kill-self", 1, 1, cmd_kill_self, "kill-self SIGNAL" },
	{ "write", 1, 2, cmd_write, "write PATH [TEXT]" },
	{ "cat", 1, 1, cmd_cat, "cat PATH|-" },
	{ "ls", 1, 1, cmd_ls, "ls PATH" },
	{ "stat", 1, 1, cmd_stat, "stat PATH" },
	{ "readlink", 1, 1, cmd_readlink, "readlink PATH" },
	{ "mkdir", 1, 1, cmd_mkdir, "mkdir PATH" },
	{ "touch", 1, 1, cmd_touch, "touch PATH" },
	{ "rm", 1, 1, cmd_rm, "rm PATH" },
	{ "env", 0, 0, cmd_env, "env" },
	{ "cwd", 0, 0, cmd_cwd, "cwd" },
	{ "pid", 0, 0, cmd_pid, "pid" },
	{ "hostname", 0, 0, cmd_hostname, "hostname" },
	{ "id", 0, 0, cmd_id, "id" },
	{ "echo", 0, -1, cmd_echo, "echo [WORD]..." },
	{ "stderr", 1, -1, cmd_stderr, "stderr TEXT..." },
	{ "fds", 0, 0, cmd_fds, "fds" },
	{ "tty", 0, 0, cmd_tty, "tty" },
	{ "signals", 1, 1, cmd_signals, "signals EXIT_STATUS" },
	{ "syscall", 1, 4, cmd_syscall, "syscall NAME [ARG]..." },
	{ "cap-check", 1, 1, cmd_cap_check, "cap-check CAP_NAME" },
	{ "hog-memory", 1, 1, cmd_hog_memory, "hog-memory MIB" },
	{ "fork-bomb", 1, 1, cmd_fork_bomb, "fork-bomb COUNT" },
	{ "spin", 1, 1, cmd_spin, "spin SECONDS" },
	{ "background", 3, 4, cmd_background, "background DELAY HOLD TEXT [EVERY]" },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_usage(void)
{
	fprintf(stderr, "usage: probe CMD [ARGS] [then CMD [ARGS]]...\ncommands:\n");
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		fprintf(stderr, "  %s\n", commands[i].usage);
}

/* The end of the command starting at argv[start]: the next "then" or argc. */
static int command_end(int argc, char **argv, int start)
{
	int end = start;

	while (end < argc && strcmp(argv[end], "then") != 0)
		end++;
	return end;
}

int main(int argc, char **argv)
{
	int status = 0;

	if (argc < 2) {
		print_usage();
		return 2;
	}
	/* Check every command before running any, so a typo has no side effects. */
	for (int start = 1; start <= argc; start++) {
		int end = command_end(argc, argv, start);
		const struct command *command;
		int args;

		if (start == argc || end == start) {
			fprintf(stderr, "probe: empty command around \"then\"\n");
			return 2;
		}
		command = find_command(argv[start]);
		if (!command) {
			fprintf(stderr, "probe: unknown command %s\n", argv[start]);
			return 2;
		}
		args = end - start - 1;
		if (args < command->min_args || (command->max_args >= 0 && args > command->max_args)) {
			fprintf(stderr, "probe: usage: %s\n", command->usage);
			return 2;
		}
		start = end;
		if (end == argc)
			break;
	}
	for (int start = 1; start < argc; start++) {
		int end = command_end(argc, argv, start);
		const struct command *command = find_command(argv[start]);

		status = command->run(argv + start + 1, end - start - 1);
		fflush(stdout);
		if (status != 0)
			break;
		start = end;
	}
	return status;
}
