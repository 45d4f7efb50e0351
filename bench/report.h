/* ipivbench: the reporting half. Names of patterns and modes, the seed's cycle table,
 * JSON out and back in, and the seed's "%Reduction" comparison of two runs with a rank
 * test. Pure: takes a bench_result and a FILE, never touches KVM. */
#ifndef IPIV_BENCH_REPORT_H
#define IPIV_BENCH_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "result.h"

#define BENCH_JSON_SCHEMA "ipivbench/1"

/* Stable names used on the command line and in JSON; NULL for a value out of range.
 * The parse functions return 0, or -EINVAL for an unknown name. */
const char *bench_pattern_name(enum bench_pattern pattern);
int bench_pattern_parse(const char *name, enum bench_pattern *out);
const char *bench_cpu_mode_name(enum bench_cpu_mode mode); /* "real", "long" */
int bench_cpu_mode_parse(const char *name, enum bench_cpu_mode *out);
const char *bench_target_name(enum bench_target target); /* "spin", "halt" */
int bench_target_parse(const char *name, enum bench_target *out);

/* Checks that *r can be reported: enums in range, 1..BENCH_MAX_VCPUS vCPUs, counts within
 * their arrays, strings terminated. Returns 0, or -EINVAL with a one-line reason in err. */
int bench_result_check(const struct bench_result *r, char *err, size_t errlen);

/* The guest's own ground truth: sent and received summed over the configured vCPUs.
 * True when received == sent x fanout; *expected is that product (UINT64_MAX on
 * overflow, which never matches). Any pointer but r may be NULL. */
bool bench_result_counts_match(const struct bench_result *r, uint64_t *sent, uint64_t *received,
			       uint64_t *expected);

/* The seed's table: configuration and host header, one row per run (cycles/IPI and ns/IPI
 * at host.tsc_khz), Average/Median/Min/Max/Stddev, then the guest's per-vCPU counts and
 * whether they match. ns is omitted, and the header says so, when tsc_khz is 0.
 * Returns 0, -EINVAL for a result bench_result_check refuses, -EIO on a write error. */
int bench_report_table(FILE *f, const struct bench_result *r);

/* Writes *r as one JSON document of schema BENCH_JSON_SCHEMA (see report.c) with doubles
 * at full precision, so bench_result_from_json reads back the same values.
 * Returns 0, -EINVAL (result refused, string not UTF-8, duplicate parameter name), -ERANGE
 * (a count above INT64_MAX), -ENOMEM, -EIO. */
int bench_report_json(FILE *f, const struct bench_result *r);

/* Loads a file bench_report_json wrote into *out (cleared first), validating the schema,
 * every field's presence, type and range. "stats" is derived and not read back.
 * On failure returns a negative errno (-errno of open, -EINVAL for bad content, -E2BIG
 * for more than BENCH_MAX_RUNS runs) and puts one line naming the file and the problem
 * in err: "PATH:LINE:COL: invalid JSON: ...", "PATH: missing field config.vcpus", ... */
int bench_result_from_json(const char *path, struct bench_result *out, char *err, size_t errlen);

/* The seed's comparison: runs of A and B side by side (up to the shorter run count),
 * Average and Median of each with %Reduction = (B - A) / A x 100, headed by the module
 * parameters that differ ("kvm_intel.enable_ipiv: N -> Y") and notes on other differences
 * (K, CPU, kernel, run count, guest counts). Whether the runs differ at all is the two-sided
 * Mann-Whitney U test of every run of A against every run of B (bench_utest): each row says
 * "(p=0.000 n=20+20)", and prints benchstat's "~" instead of the percentage when
 * p >= BENCH_ALPHA; a note says when the run counts are too few for any p below it (3+3).
 * Refuses runs of different pattern, cpu mode, target or vCPU count, and runs without
 * data: -EINVAL and a one-line reason in err, nothing printed. -ENOMEM, -EIO on a write
 * error. */
int bench_compare(FILE *f, const struct bench_result *a, const struct bench_result *b, char *err,
		  size_t errlen);

#endif
