/*
 * fsync fault injection for akm's tests (tests/it/fsync_fault.rs), loaded with LD_PRELOAD
 * into the real `akm serve` binary. It wraps fsync, fdatasync and sync_file_range: for a file
 * descriptor whose path (readlink /proc/self/fd/N) starts with $AKM_FAULT_PREFIX, while the
 * file $AKM_FAULT_CONTROL exists, the call fails with EIO without syncing; otherwise it goes
 * to libc. Every call on a matching path is logged to $AKM_FAULT_LOG as
 * "<function> <path> <ok|EIO>", so the test can show the calls really pass through here
 * (SQLite's and Rust std's syncs resolve libc's symbols dynamically) rather than assume it.
 *
 * Built by the test with `cc -shared -fPIC -o fsync_fault.so fsync_fault.c -ldl`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether fd's path starts with the configured prefix; its path goes to out. */
static int matches(int fd, char *out, size_t size) {
	const char *prefix = getenv("AKM_FAULT_PREFIX");
	char link[64];
	ssize_t n;
	if (prefix == NULL || *prefix == '\0')
		return 0;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, out, size - 1);
	if (n < 0)
		return 0;
	out[n] = '\0';
	return strncmp(out, prefix, strlen(prefix)) == 0;
}

/* Whether the fault is on: the control file exists. */
static int fault_on(void) {
	const char *control = getenv("AKM_FAULT_CONTROL");
	return control != NULL && access(control, F_OK) == 0;
}

/* Appends one line to the call log (O_APPEND: whole lines from concurrent threads). */
static void log_call(const char *fn, const char *path, int failed) {
	const char *log = getenv("AKM_FAULT_LOG");
	char line[PATH_MAX + 64];
	int fd, len;
	if (log == NULL)
		return;
	len = snprintf(line, sizeof line, "%s %s %s\n", fn, path, failed ? "EIO" : "ok");
	if (len <= 0 || (size_t)len >= sizeof line)
		return;
	fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)len) < 0) {
		/* The log is best effort; the test notices missing lines. */
	}
	close(fd);
}

/* Decides one call: 1 if it must fail with EIO (errno set), 0 to pass it on. */
static int inject(const char *fn, int fd) {
	char path[PATH_MAX];
	int fail;
	if (!matches(fd, path, sizeof path))
		return 0;
	fail = fault_on();
	log_call(fn, path, fail);
	if (fail)
		errno = EIO;
	return fail;
}

int fsync(int fd) {
	static int (*real)(int);
	if (inject("fsync", fd))
		return -1;
	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return real(fd);
}

int fdatasync(int fd) {
	static int (*real)(int);
	if (inject("fdatasync", fd))
		return -1;
	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return real(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
	static int (*real)(int, off_t, off_t, unsigned int);
	if (inject("sync_file_range", fd))
		return -1;
	if (real == NULL)
		real = (int (*)(int, off_t, off_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
	return real(fd, offset, nbytes, flags);
}
