/* Golden files for output users parse (/metrics, the JSON API): the output of a fixed
 * snapshot must equal tests/unit/golden/<name> byte for byte, so a refactoring that changes
 * one character of what Prometheus or a client sees fails here. After an intended change,
 * rerun the test with IPIV_UPDATE_GOLDEN=1 and commit the new file with the change. */
#ifndef IPIV_TEST_GOLDEN_H
#define IPIV_TEST_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_DIR "tests/unit/golden"

static char *golden_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* Compares body with the golden file name; on a difference, names its first differing line
 * and leaves the output beside the log as .output/test-logs/<name>.actual. */
static void golden_check(const char *name, const char *body, size_t len)
{
	char path[256], actual[256];
	size_t want_len = 0, line = 1, i;
	char *want;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	if (getenv("IPIV_UPDATE_GOLDEN")) {
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(body, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
		return;
	}
	want = golden_read(path, &want_len);
	if (!want)
		fail_msg("no golden file %s (run with IPIV_UPDATE_GOLDEN=1 to write it)", path);
	for (i = 0; i < len && i < want_len && body[i] == want[i]; i++)
		line += body[i] == '\n';
	if (i == len && i == want_len) {
		free(want);
		return;
	}
	snprintf(actual, sizeof(actual), ".output/test-logs/%s.actual", name);
	f = fopen(actual, "wb");
	if (f) {
		fwrite(body, 1, len, f);
		fclose(f);
	}
	{
		const char *w = want + i, *g = body + i;

		while (w > want && w[-1] != '\n')
			w--;
		while (g > body && g[-1] != '\n')
			g--;
		fail_msg(
			"%s differs from the golden file at line %zu:\n  want: %.*s\n  got:  %.*s\n"
			"(whole output in %s)",
			path, line, (int)strcspn(w, "\n"), w, (int)strcspn(g, "\n"), g, actual);
	}
	free(want);
}

#endif /* IPIV_TEST_GOLDEN_H */
