/* Unit tests for daemon/lib/log.c: logfmt and JSON lines, escaping of what a message holds
 * (quotes, newlines, control bytes), the level filter, bad flag values, the plain lines of a
 * program that picked no format, the usage error both programs share, and that a line goes out
 * in one write(2). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "log.h"

static char *buf;
static size_t len;
static FILE *mem;

static int setup(void **state)
{
	mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	ipiv_log_set_stream(mem);
	assert_int_equal(ipiv_log_set_level("info"), 0);
	assert_int_equal(ipiv_log_set_format("logfmt"), 0);
	return 0;
}

static int teardown(void **state)
{
	ipiv_log_set_stream(NULL);
	fclose(mem);
	free(buf);
	buf = NULL;
	return 0;
}

static void test_logfmt(void **state)
{
	log_info("httpd", "closed a connection from %s: %s\n", "127.0.0.1", "say \"hi\"\\x");
	fflush(mem);
	/* ts=2026-12-06T08:10:00.123Z level=... */
	assert_int_equal(strncmp(buf, "ts=", 3), 0);
	assert_int_equal(buf[13], 'T');
	assert_int_equal(buf[26], 'Z');
	assert_non_null(strstr(buf, " level=info component=httpd msg=\"closed a connection from "
				    "127.0.0.1: say \\\"hi\\\"\\\\x\"\n"));
	assert_int_equal(strchr(buf, '\n') - buf + 1, (long)len); /* one line */
}

static void test_json_escapes_everything(void **state)
{
	json_t *doc;
	json_error_t err;

	assert_int_equal(ipiv_log_set_format("json"), 0);
	log_warn("collector", "line1\nline2\ttab \x01 \"q\" caf\xc3\xa9");
	fflush(mem);
	assert_int_equal(strchr(buf, '\n') - buf + 1, (long)len);
	doc = json_loads(buf, 0, &err);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(doc, "component")), "collector");
	assert_string_equal(json_string_value(json_object_get(doc, "msg")),
			    "line1\nline2\ttab \x01 \"q\" caf\xc3\xa9");
	assert_int_equal(strlen(json_string_value(json_object_get(doc, "ts"))), 24);
	json_decref(doc);
}

static void test_level_filter(void **state)
{
	log_debug("ipivd", "not shown");
	fflush(mem);
	assert_int_equal(len, 0);
	assert_false(ipiv_log_enabled(IPIV_LOG_DEBUG));
	assert_int_equal(ipiv_log_set_level("error"), 0);
	log_warn("ipivd", "not shown either");
	log_error("ipivd", "shown");
	fflush(mem);
	assert_non_null(strstr(buf, "level=error"));
	assert_null(strstr(buf, "not shown"));
	assert_int_equal(ipiv_log_set_level("debug"), 0);
	assert_true(ipiv_log_enabled(IPIV_LOG_DEBUG));
}

static void test_bad_values(void **state)
{
	assert_int_equal(ipiv_log_set_level("verbose"), -EINVAL);
	assert_int_equal(ipiv_log_set_level(NULL), -EINVAL);
	assert_int_equal(ipiv_log_set_format("text"), -EINVAL);
	assert_int_equal(ipiv_log_set_format(NULL), -EINVAL);
}

/* Reads until the writer closes (a child that writes into a closed pipe dies of SIGPIPE). */
static ssize_t read_all(int fd, char *out, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size && (r = read(fd, out + n, size - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	return (ssize_t)n;
}

/* Runs child in a fresh process whose stderr is a pipe; its output (to EOF) goes to out and
 * its wait status is returned. The process starts with log.c's state as this one has it. */
static int in_child(void (*child)(void), char *out, size_t size)
{
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		child();
		_exit(0);
	}
	close(fds[1]);
	read_all(fds[0], out, size);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void log_as_found(void)
{
	log_error("collector", "kernel BTF %s missing\n", "/sys/kernel/btf/vmlinux");
	log_debug("libbpf", "not shown");
}

/* Before a program picks a format (ipivtop never does), a line is "ipiv: <message>". */
static void test_plain_by_default(void **state)
{
	char out[256];
	int status = in_child(log_as_found, out, sizeof(out));

	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(out, "ipiv: kernel BTF /sys/kernel/btf/vmlinux missing\n");
}

static void usage_error_as_json(void)
{
	assert_int_equal(ipiv_log_set_format("json"), 0); /* not a log line even so */
	ipiv_usage_error("ipivtop", "--delay must be %d..%d, not '%s'", 1, 3600, "0");
}

/* ipiv_usage_error: one plain line on stderr naming the program twice, exit status 2. */
static void test_usage_error(void **state)
{
	char out[256];
	int status = in_child(usage_error_as_json, out, sizeof(out));

	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2);
	assert_string_equal(out,
			    "ipivtop: --delay must be 1..3600, not '0' (see ipivtop --help)\n");
}

static void log_quoted_lines(void)
{
	char huge[4096];

	memset(huge, '\x01', sizeof(huge) - 1); /* escaped, 6 bytes each */
	huge[sizeof(huge) - 1] = '\0';
	assert_int_equal(ipiv_log_set_format("logfmt"), 0);
	log_warn("httpd", "closed a connection from %s: \"%s\"", "127.0.0.1", "x\ty");
	assert_int_equal(ipiv_log_set_format("json"), 0);
	log_error("collector", "line1\nline2 \"q\" caf\xc3\xa9");
	log_error("collector", "%s", huge);
}

/*
 * Each line in one write(2) to stderr, so that other writers on the descriptor cannot cut
 * into it: stderr is a SOCK_SEQPACKET socket, where every write is a message of its own and
 * one recv takes one message whole (a line written a byte at a time arrives in pieces).
 */
static void test_one_write_per_line(void **state)
{
	char msg[16384];
	int fds[2], status, lines = 0;
	json_t *doc;
	ssize_t got;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		log_quoted_lines();
		_exit(0);
	}
	close(fds[1]);
	while ((got = recv(fds[0], msg, sizeof(msg) - 1, 0)) > 0) {
		msg[got] = '\0';
		/* the message is exactly one line, newline included */
		assert_ptr_equal(strchr(msg, '\n'), msg + got - 1);
		if (lines == 0)
			assert_non_null(strstr(msg,
					       " level=warn component=httpd msg=\"closed a "
					       "connection from 127.0.0.1: \\\"x\\ty\\\"\"\n"));
		if (lines == 1)
			assert_non_null(strstr(msg, "\"msg\":\"line1\\nline2 \\\"q\\\" caf"));
		if (lines == 2) { /* cut, and says so, but still one whole JSON line */
			doc = json_loads(msg, 0, NULL);
			assert_non_null(doc);
			assert_non_null(strstr(json_string_value(json_object_get(doc, "msg")),
					       "...(truncated)"));
			json_decref(doc);
		}
		lines++;
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(lines, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: it forks a process with log.c as a program finds it */
		cmocka_unit_test(test_plain_by_default),
		cmocka_unit_test_setup_teardown(test_logfmt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_escapes_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test(test_usage_error),
		cmocka_unit_test(test_one_write_per_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
