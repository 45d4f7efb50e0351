// SPDX-License-Identifier: GPL-2.0
/*
 * What this host charges for the three things an IPI's latency tracking cannot avoid
 * (docs/overhead.md): handing a cache line from one CPU to another (the send time travels
 * from the sender's CPU to the target's), a clock read (the start and end of send->EOI), and
 * a locked add on a line the CPU already holds. Two threads pinned to two CPUs pass one
 * line back and forth; the clock is read through the vDSO, the same clocksource the
 * kernel's ktime reads use, as a lower bound of bpf_ktime_get_ns(). Each figure is the best
 * of BATCHES batches, so that another task preempting one side (a shared host) does not count.
 *
 *   ipiv-line-cost [-c CPU_A,CPU_B] [-n ROUND_TRIPS]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	_Alignas(64) volatile uint64_t word;
	char pad[56];
} line;

#define BATCHES 20

struct peer {
	int cpu;
	uint64_t rounds; /* in all */
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* The other side: waits for each odd value and answers with the next even one. */
static void *answer(void *arg)
{
	struct peer *p = arg;

	if (pin(p->cpu))
		return (void *)1;
	for (uint64_t i = 1; i <= p->rounds; i++) {
		while (line.word != 2 * i - 1)
			__builtin_ia32_pause();
		line.word = 2 * i;
	}
	return NULL;
}

/* The lower of best and this batch's ns, the batch's alone for the first (k == 0). */
static double keep_best(double best, double ns, int k)
{
	return k == 0 || ns < best ? ns : best;
}

static int usage(const char *why)
{
	fprintf(stderr,
		"ipiv-line-cost: %s\nusage: ipiv-line-cost [-c CPU_A,CPU_B] [-n ROUND_TRIPS]\n",
		why);
	return 2;
}

int main(int argc, char **argv)
{
	int a = 0, b = 1, opt;
	uint64_t rounds = 2000000, per, sink = 0;
	struct peer peer;
	pthread_t thread;
	void *failed;
	double t0, best = 0;
	char *end;

	while ((opt = getopt(argc, argv, "c:n:")) != -1) {
		switch (opt) {
		case 'c':
			if (sscanf(optarg, "%d,%d", &a, &b) != 2 || a < 0 || b < 0 || a == b)
				return usage("-c wants two different CPUs, as 0,1");
			break;
		case 'n':
			errno = 0;
			rounds = strtoull(optarg, &end, 10);
			if (errno || *end || rounds < 1000 * BATCHES)
				return usage("-n wants a number of round trips >= 20000");
			break;
		default: return usage("unknown option");
		}
	}
	/* both CPUs usable before the other side starts: it cannot answer from nowhere */
	if (pin(b))
		return fprintf(stderr, "ipiv-line-cost: cannot run on CPU %d: %s\n", b,
			       strerror(errno)),
		       1;
	if (pin(a))
		return fprintf(stderr, "ipiv-line-cost: cannot run on CPU %d: %s\n", a,
			       strerror(errno)),
		       1;
	per = rounds / BATCHES;
	peer = (struct peer){.cpu = b, .rounds = per * BATCHES}; /* exactly the rounds played */
	if (pthread_create(&thread, NULL, answer, &peer))
		return fprintf(stderr, "ipiv-line-cost: no thread\n"), 1;
	for (int k = 0; k < BATCHES; k++) {
		t0 = now_ns();
		for (uint64_t i = k * per + 1; i <= (k + 1) * per; i++) {
			line.word = 2 * i - 1;
			while (line.word != 2 * i)
				__builtin_ia32_pause();
		}
		best = keep_best(best, (now_ns() - t0) / per, k);
	}
	pthread_join(thread, &failed);
	if (failed)
		return fprintf(stderr, "ipiv-line-cost: cannot run on CPU %d\n", b), 1;
	printf("line handed CPU %d -> %d -> %d: %.1f ns a round trip, ~%.1f ns one way\n", a, b, a,
	       best, best / 2);

	for (int k = 0; k < BATCHES; k++) {
		t0 = now_ns();
		for (uint64_t i = 0; i < per; i++) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			sink += ts.tv_nsec;
		}
		best = keep_best(best, (now_ns() - t0) / per, k);
	}
	printf("clock read (vDSO CLOCK_MONOTONIC): %.1f ns\n", best);

	for (int k = 0; k < BATCHES; k++) {
		t0 = now_ns();
		for (uint64_t i = 0; i < per; i++)
			__atomic_fetch_add(&line.word, 1, __ATOMIC_SEQ_CST);
		best = keep_best(best, (now_ns() - t0) / per, k);
	}
	printf("locked add on a line this CPU holds: %.1f ns\n", best);
	return sink == 42; /* keeps the clock reads */
}
