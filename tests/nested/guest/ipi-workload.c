/*
 * The L2 guest's workload: makes each kind of cross-CPU IPI a known number of times on a
 * 2-vCPU Linux guest and prints, as one JSON line, what it asked for and what the guest's
 * own /proc/interrupts counted across the workload, in total and per phase (and, later, one
 * more line of counts over a wider window: see the synchronisation below).
 *
 * Static, needs nothing but the kernel. Threads (each pinned):
 *   main    CPU 0: drives the phases;
 *   spinner CPU 1: SCHED_IDLE busy loop of this mm, so CPU 1 runs this mm whenever nothing
 *                  else wants it, and a woken normal task preempts it (a reschedule IPI,
 *                  not a wake-list function call as to an idle CPU);
 *   waiter  CPU 1: sleeps on a futex; every wake-up from CPU 0 is one remote wake.
 * Phases, each on its own: wake (futex wakes of the waiter: RES), membarrier (private
 * expedited membarrier: one function call to CPU 1: CAL), tlb (MADV_DONTNEED of a touched
 * page: one TLB shootdown of CPU 1, a function call too: CAL and TLB).
 *
 * Synchronisation with the host, over the serial console. The guest reads /proc/interrupts
 * four times: "ready" just before it prints IPIV-READY, "before" on the line "go", "after"
 * when the phases are done (then it prints the window's JSON between IPIV-JSON-BEGIN and
 * IPIV-JSON-END, and IPIV-DONE), and "mark" on the line "mark" (then the JSON of ready..mark
 * between IPIV-OUTER-BEGIN and IPIV-OUTER-END); it tears down on "bye". The host reads its
 * own counters after IPIV-READY and after IPIV-DONE, so its window lies between the guest's
 * two: inside ready..mark, around before..after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINES 48 /* /proc/interrupts' named (non-IRQ) lines: NMI LOC ... PIW */
#define MAX_CPUS  8

struct irq_counts {
	int n_lines, n_cpus;
	char label[MAX_LINES][8];
	unsigned long long count[MAX_LINES][MAX_CPUS];
};

enum phase_kind { PHASE_WAKE, PHASE_MEMBARRIER, PHASE_TLB, PHASE_COUNT };
static const char *const phase_names[PHASE_COUNT] = {"wake", "membarrier", "tlb"};

/* What ran on CPU 1: the spinner's context switches and CPU 1's /proc/stat times. */
struct cpu1_state {
	long long spinner_voluntary, spinner_involuntary;
	long long ticks[8]; /* user nice system idle iowait irq softirq steal */
};
static const char *const tick_names[8] = {"user",   "nice", "system",  "idle",
					  "iowait", "irq",  "softirq", "steal"};

struct phase_result {
	long asked, done;
	double seconds;
	struct irq_counts before, after;
	struct cpu1_state cpu1_before, cpu1_after;
};

static _Atomic uint32_t spin_run;    /* futex: 1 while the spinner should spin */
static _Atomic uint64_t spin_laps;   /* the spinner's progress */
static _Atomic uint32_t waiter_word; /* futex the waiter sleeps on; always 0 */
static _Atomic long waiter_wakes;    /* wake-ups the waiter saw */
static _Atomic bool quit;
static _Atomic pid_t spinner_tid;
static int trace_fd = -1; /* tracefs' trace_marker when the init turned tracing on */

/* Marks the guest's ftrace buffer (ipiv.trace=1 on the guest's command line). */
static void trace_mark(const char *what)
{
	if (trace_fd >= 0 && write(trace_fd, what, strlen(what)) < 0)
		trace_fd = -1;
}

static void die(const char *what)
{
	fprintf(stderr, "ipi-workload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The named lines of /proc/interrupts (those whose label is not an IRQ number). */
static void read_irqs(struct irq_counts *c)
{
	char line[4096];
	FILE *f = fopen("/proc/interrupts", "r");

	if (!f)
		die("/proc/interrupts");
	memset(c, 0, sizeof(*c));
	if (!fgets(line, sizeof(line), f))
		die("/proc/interrupts header");
	for (char *p = strtok(line, " \t\n"); p; p = strtok(NULL, " \t\n"))
		if (!strncmp(p, "CPU", 3) && c->n_cpus < MAX_CPUS)
			c->n_cpus++;
	while (fgets(line, sizeof(line), f) && c->n_lines < MAX_LINES) {
		char *p = line, *colon, *end;

		while (*p == ' ')
			p++;
		colon = strchr(p, ':');
		if (!colon || colon - p >= (long)sizeof(c->label[0]) || (*p >= '0' && *p <= '9'))
			continue;
		memcpy(c->label[c->n_lines], p, colon - p);
		p = colon + 1;
		for (int cpu = 0; cpu < c->n_cpus; cpu++) {
			c->count[c->n_lines][cpu] = strtoull(p, &end, 10);
			if (end == p)
				break;
			p = end;
		}
		c->n_lines++;
	}
	fclose(f);
}

static void read_cpu1(struct cpu1_state *s)
{
	char path[64], line[512];
	FILE *f;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)atomic_load(&spinner_tid));
	f = fopen(path, "r");
	if (!f)
		die(path);
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "voluntary_ctxt_switches: %lld", &s->spinner_voluntary);
		sscanf(line, "nonvoluntary_ctxt_switches: %lld", &s->spinner_involuntary);
	}
	fclose(f);
	f = fopen("/proc/stat", "r");
	if (!f)
		die("/proc/stat");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "cpu1 ", 5)) {
			sscanf(line + 5, "%lld %lld %lld %lld %lld %lld %lld %lld", &s->ticks[0],
			       &s->ticks[1], &s->ticks[2], &s->ticks[3], &s->ticks[4], &s->ticks[5],
			       &s->ticks[6], &s->ticks[7]);
			break;
		}
	fclose(f);
}

static void print_cpu1(const struct cpu1_state *a, const struct cpu1_state *b)
{
	printf("\"spinner_switches\":{\"voluntary\":%lld,\"involuntary\":%lld},\"cpu1_ticks\":{",
	       b->spinner_voluntary - a->spinner_voluntary,
	       b->spinner_involuntary - a->spinner_involuntary);
	for (int i = 0; i < 8; i++)
		printf("%s\"%s\":%lld", i ? "," : "", tick_names[i], b->ticks[i] - a->ticks[i]);
	putchar('}');
}

static unsigned long long line_delta(const struct irq_counts *a, const struct irq_counts *b,
				     const char *label, int cpu)
{
	for (int i = 0; i < a->n_lines; i++)
		if (!strcmp(a->label[i], label)) {
			unsigned long long sum = 0;

			for (int c = 0; c < a->n_cpus; c++)
				if (cpu < 0 || c == cpu)
					sum += b->count[i][c] - a->count[i][c];
			return sum;
		}
	return 0;
}

/* {"RES":[d0,d1],...}: every named line whose count moved, per CPU. */
static void print_deltas(const struct irq_counts *a, const struct irq_counts *b)
{
	bool first = true;

	putchar('{');
	for (int i = 0; i < a->n_lines; i++) {
		if (!line_delta(a, b, a->label[i], -1))
			continue;
		printf("%s\"%s\":[", first ? "" : ",", a->label[i]);
		for (int c = 0; c < a->n_cpus; c++)
			printf("%s%llu", c ? "," : "", b->count[i][c] - a->count[i][c]);
		putchar(']');
		first = false;
	}
	putchar('}');
}

/*
 * The IPIs the guest received, as its handlers count them: RES (reschedule) and CAL (call
 * function and call function single). TLB is not added: a shootdown arrives as a function
 * call, so it is counted in CAL too (flush_tlb_func counts TLB inside the CAL handler).
 * IWI (irq work) is a self-IPI on x86 and reported apart.
 */
static void print_summary(const struct irq_counts *a, const struct irq_counts *b)
{
	unsigned long long res = line_delta(a, b, "RES", -1), cal = line_delta(a, b, "CAL", -1);

	printf("\"RES\":%llu,\"CAL\":%llu,\"TLB\":%llu,\"IWI\":%llu,\"ipis\":%llu", res, cal,
	       line_delta(a, b, "TLB", -1), line_delta(a, b, "IWI", -1), res + cal);
}

static void *spinner(void *arg)
{
	struct sched_param param = {0};

	(void)arg;
	pin(1);
	atomic_store(&spinner_tid, gettid());
	if (sched_setscheduler(0, SCHED_IDLE, &param))
		die("SCHED_IDLE");
	while (!atomic_load(&quit)) {
		while (atomic_load_explicit(&spin_run, memory_order_relaxed) && !atomic_load(&quit))
			atomic_fetch_add_explicit(&spin_laps, 1, memory_order_relaxed);
		futex(&spin_run, FUTEX_WAIT_PRIVATE, 0);
	}
	return NULL;
}

static void *waiter(void *arg)
{
	(void)arg;
	pin(1);
	while (!atomic_load(&quit)) {
		futex(&waiter_word, FUTEX_WAIT_PRIVATE, 0);
		atomic_fetch_add(&waiter_wakes, 1);
	}
	return NULL;
}

/* Waits until the spinner has made progress: CPU 1 is back in it, so the waiter is off CPU. */
static void spinner_moves(void)
{
	uint64_t laps = atomic_load(&spin_laps);

	while (atomic_load(&spin_laps) == laps)
		;
}

static void spinner_start(void)
{
	atomic_store(&spin_run, 1);
	futex(&spin_run, FUTEX_WAKE_PRIVATE, 1);
	spinner_moves();
}

/* One wake-up of the sleeping waiter from CPU 0 at a time, each when it sleeps again. */
static long phase_wake(long n)
{
	long done = 0;

	for (long i = 0; i < n; i++) {
		long seen = atomic_load(&waiter_wakes);

		spinner_moves();
		/* 0 woken: the waiter is not queued yet (never after spinner_moves); try again */
		while (futex(&waiter_word, FUTEX_WAKE_PRIVATE, 1) < 1)
			sched_yield();
		while (atomic_load(&waiter_wakes) == seen)
			;
		done++;
	}
	spinner_moves();
	return done;
}

/*
 * Both kinds below reach CPU 1 only while it runs this mm (membarrier looks at its current
 * task; a shootdown skips a CPU in a kernel thread's lazy TLB mode), and L1 may stop the
 * vCPU for many milliseconds while CPU 1 runs a kernel thread: so each starts once the
 * spinner is seen to run.
 */
static long phase_membarrier(long n)
{
	long done = 0;

	for (long i = 0; i < n; i++) {
		spinner_moves();
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
			die("membarrier");
		done++;
	}
	return done;
}

/* A write maps the page; MADV_DONTNEED unmaps it and shoots down CPU 1's TLB (same mm). */
static long phase_tlb(long n, volatile char *page)
{
	long done = 0;

	for (long i = 0; i < n; i++) {
		page[0] = (char)i;
		spinner_moves();
		if (madvise((void *)page, 4096, MADV_DONTNEED))
			die("madvise");
		done++;
	}
	return done;
}

static void wait_line(const char *want)
{
	char line[64];

	for (;;) {
		if (!fgets(line, sizeof(line), stdin)) {
			fprintf(stderr, "ipi-workload: stdin closed while waiting for '%s'\n",
				want);
			exit(1);
		}
		if (!strncmp(line, want, strlen(want)))
			return;
	}
}

int main(int argc, char **argv)
{
	long asked[PHASE_COUNT] = {200, 200, 200};
	struct phase_result res[PHASE_COUNT];
	struct irq_counts ready, before, after, mark;
	pthread_t spin_thread, wait_thread;
	double start, seconds;
	volatile char *page;

	for (int i = 1; i + 1 < argc; i += 2) {
		for (int k = 0; k < PHASE_COUNT; k++)
			if (!strcmp(argv[i] + (argv[i][0] == '-' ? 2 : 0), phase_names[k]))
				asked[k] = atol(argv[i + 1]);
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "ipi-workload: needs 2 online CPUs\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	pin(0);
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0))
		die("membarrier register");
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		die("mmap");
	if (pthread_create(&spin_thread, NULL, spinner, NULL) ||
	    pthread_create(&wait_thread, NULL, waiter, NULL))
		die("pthread_create");
	/* let both threads reach their sleep on CPU 1 before the host's first reading */
	sleep(1);

	read_irqs(&ready);
	printf("IPIV-READY\n");
	fflush(stdout);
	wait_line("go");

	trace_fd = open("/sys/kernel/tracing/trace_marker", O_WRONLY | O_CLOEXEC);
	trace_mark("ipiv: start");
	read_irqs(&before);
	start = now();
	spinner_start();
	for (int k = 0; k < PHASE_COUNT; k++) {
		double t = now();

		read_cpu1(&res[k].cpu1_before);
		read_irqs(&res[k].before);
		res[k].asked = asked[k];
		trace_mark(phase_names[k]);
		switch (k) {
		case PHASE_WAKE: res[k].done = phase_wake(asked[k]); break;
		case PHASE_MEMBARRIER: res[k].done = phase_membarrier(asked[k]); break;
		case PHASE_TLB: res[k].done = phase_tlb(asked[k], page); break;
		}
		read_irqs(&res[k].after);
		read_cpu1(&res[k].cpu1_after);
		res[k].seconds = now() - t;
	}
	/* the spinner sees this and sleeps, on its own CPU: no IPI */
	atomic_store(&spin_run, 0);
	seconds = now() - start;
	read_irqs(&after);
	trace_mark("ipiv: end");

	printf("IPIV-JSON-BEGIN\n{\"cpus\":%d,\"seconds\":%.3f,", before.n_cpus, seconds);
	print_summary(&before, &after);
	printf(",\"asked\":{");
	for (int k = 0; k < PHASE_COUNT; k++)
		printf("%s\"%s\":%ld", k ? "," : "", phase_names[k], asked[k]);
	printf("},\"delta\":");
	print_deltas(&before, &after);
	printf(",\"phases\":[");
	for (int k = 0; k < PHASE_COUNT; k++) {
		printf("%s{\"kind\":\"%s\",\"asked\":%ld,\"done\":%ld,\"seconds\":%.3f,",
		       k ? "," : "", phase_names[k], res[k].asked, res[k].done, res[k].seconds);
		print_summary(&res[k].before, &res[k].after);
		printf(",\"delta\":");
		print_deltas(&res[k].before, &res[k].after);
		putchar(',');
		print_cpu1(&res[k].cpu1_before, &res[k].cpu1_after);
		putchar('}');
	}
	printf("]}\nIPIV-JSON-END\nIPIV-DONE\n");
	fflush(stdout);
	wait_line("mark");
	read_irqs(&mark);
	printf("IPIV-OUTER-BEGIN\n{");
	print_summary(&ready, &mark);
	printf(",\"delta\":");
	print_deltas(&ready, &mark);
	printf("}\nIPIV-OUTER-END\n");
	fflush(stdout);
	wait_line("bye");

	atomic_store(&quit, true);
	atomic_store(&spin_run, 1);
	futex(&spin_run, FUTEX_WAKE_PRIVATE, 1);
	futex(&waiter_word, FUTEX_WAKE_PRIVATE, 1);
	pthread_join(spin_thread, NULL);
	pthread_join(wait_thread, NULL);
	return 0;
}
