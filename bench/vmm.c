/* ipivbench's VMM over /dev/kvm: one VM, an in-kernel irqchip, a thread per vCPU, the
 * guest image from bench/guest/, and a watchdog that never leaves a thread behind. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"
#include "plan.h"
#include "report.h"
#include "stats.h"
#include "guest/layout.h"

extern const unsigned char guest16_start[], guest16_end[];
extern const unsigned char guest64_start[], guest64_end[];

#define KVM_CPUID_SIGNATURE	0x40000000
#define KVM_CPUID_FEATURES	0x40000001
#define KVM_FEATURE_PV_SEND_IPI 11
#define CPUID_1_ECX_X2APIC	(1u << 21)
#define KICK_SIGNAL		SIGUSR1
#define GO_SIGNAL		SIGUSR2

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	atomic_bool exited;
	char error[256]; /* set by the thread when it stops on a failure */
};

struct vm {
	int kvm_fd, vm_fd;
	size_t run_size;
	uint8_t *mem;
	unsigned nvcpus;
	struct vcpu vcpus[BENCH_MAX_VCPUS];
	struct kvm_cpuid2 *cpuid;
	atomic_bool stop; /* threads leave KVM_RUN and exit */
	atomic_bool done; /* the sender reported PORT_DONE */
	atomic_bool failed;
	pthread_mutex_t lock;
	pthread_cond_t go_cond;
	bool go;
};

static volatile sig_atomic_t go_signalled, stop_signalled;

static void on_kick(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

static void on_go(int sig)
{
	(void)sig;
	go_signalled = 1;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_signalled = 1;
}

static uint32_t *ctrl32(struct vm *vm, unsigned off)
{
	return (uint32_t *)(vm->mem + GUEST_CTRL + off);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_kvm(char *err, size_t errlen)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		if (e == ENOENT)
			snprintf(err, errlen,
				 "/dev/kvm not found: KVM is not available on this "
				 "host (load kvm_intel, kvm_amd or another KVM backend)");
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen,
				 "permission denied opening /dev/kvm: run as root "
				 "or as a member of the kvm group");
		else
			snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(e));
		return -e;
	}
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm speaks an unsupported KVM API version");
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd, char *err, size_t errlen)
{
	unsigned nent = 64;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

		if (!c) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG || nent >= 4096) {
			snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID failed: %s",
				 strerror(errno));
			return NULL;
		}
		nent *= 2;
	}
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static void cpuid_facts(struct kvm_cpuid2 *c, struct bench_host *host)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, 1, 0);
	struct kvm_cpuid_entry2 *sig = cpuid_find(c, KVM_CPUID_SIGNATURE, 0);
	struct kvm_cpuid_entry2 *feat = cpuid_find(c, KVM_CPUID_FEATURES, 0);

	host->x2apic = e && (e->ecx & CPUID_1_ECX_X2APIC);
	host->pv_send_ipi = sig && feat && (feat->eax & (1u << KVM_FEATURE_PV_SEND_IPI));
}

int vmm_probe(struct bench_host *host, unsigned *max_vcpus, char *err, size_t errlen)
{
	struct kvm_cpuid2 *c;
	int fd = open_kvm(err, errlen), r;

	if (fd < 0)
		return fd;
	c = supported_cpuid(fd, err, errlen);
	if (!c) {
		close(fd);
		return -EIO;
	}
	cpuid_facts(c, host);
	free(c);
	r = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	*max_vcpus = r > 0 ? (unsigned)r : 0;
	close(fd);
	return 0;
}

/* The guest's view of itself: its APIC ID in CPUID, everything else as KVM offers. */
static int set_vcpu_cpuid(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_cpuid2 *c = vm->cpuid;

	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | (v->id << 24);
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = v->id;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		snprintf(err, errlen, "KVM_SET_CPUID2 on vCPU %u failed: %s", v->id,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint64_t base, uint32_t limit,
		    uint8_t type, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = base;
	s->limit = limit;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->dpl = 0;
	s->l = code64;
	s->db = !code64 && limit > 0xffff;
	s->g = limit > 0xfffff;
}

static int setup_vcpu_regs(struct vm *vm, struct vcpu *v, enum bench_cpu_mode mode, char *err,
			   size_t errlen)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t stack = STACK_BASE + (uint64_t)v->id * STACK_SIZE;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(err, errlen, "KVM_GET_SREGS on vCPU %u: %s", v->id, strerror(errno));
		return -errno;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	*(uint32_t *)(vm->mem + stack) = v->id; /* the guest finds its index here */

	if (mode == BENCH_CPU_REAL) {
		uint16_t ss = STACK_SEG(v->id);

		set_seg(&sregs.cs, 0, 0, 0xffff, 0xb, false);
		set_seg(&sregs.ds, 0, 0, 0xffff, 0x3, false);
		sregs.es = sregs.fs = sregs.gs = sregs.ds;
		set_seg(&sregs.ss, ss, (uint64_t)ss << 4, 0xffff, 0x3, false);
		sregs.cr0 = 0x10; /* ET; PE=0 */
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rip = REAL_CODE_BASE;
		regs.rsp = STACK_SIZE - 16;
	} else {
		set_seg(&sregs.cs, 0x08, 0, 0xfffff, 0xb, true);
		set_seg(&sregs.ds, 0x10, 0, 0xfffff, 0x3, false);
		sregs.ds.g = 1;
		sregs.ds.db = 1;
		sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
		sregs.ss.selector = 0x10;
		sregs.gdt.base = LONG_GDT;
		sregs.gdt.limit = 3 * 8 - 1;
		sregs.idt.base = LONG_IDT;
		sregs.idt.limit = 256 * 16 - 1;
		sregs.cr3 = LONG_PML4;
		sregs.cr4 = 1u << 5;		       /* PAE */
		sregs.cr0 = 0x80000001u | 0x10 | 0x20; /* PG, PE, ET, NE */
		sregs.efer = (1u << 8) | (1u << 10);   /* LME, LMA */
		regs.rip = LONG_CODE_BASE;
		regs.rsp = stack + STACK_SIZE - 16;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		snprintf(err, errlen, "setting registers of vCPU %u: %s", v->id, strerror(errno));
		return -errno;
	}
	if (v->id) {
		/* With an in-kernel irqchip APs wait for INIT/SIPI; start them directly. */
		struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};

		if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0) {
			snprintf(err, errlen, "KVM_SET_MP_STATE on vCPU %u: %s", v->id,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* Real mode: the IVT points every vector at the guest's handlers. */
static void setup_real_mode(struct vm *vm)
{
	const unsigned char *img = guest16_start;
	size_t len = guest16_end - guest16_start;
	uint16_t table[4];
	uint32_t *ivt = (uint32_t *)vm->mem;

	memcpy(vm->mem + REAL_CODE_BASE, img, len);
	memcpy(table, img + 8, sizeof(table)); /* ipi, nmi, other, spurious */
	for (unsigned v = 0; v < 256; v++)
		ivt[v] = table[2];
	ivt[2] = table[1];
	ivt[IPI_VECTOR] = table[0];
	ivt[SPURIOUS_VECTOR] = table[3];
}

/* Long mode: identity map of the low 4 GiB (2 MiB pages), a flat GDT, and an IDT of
 * interrupt gates onto the guest's handlers. */
static void setup_long_mode(struct vm *vm)
{
	const unsigned char *img = guest64_start;
	size_t len = guest64_end - guest64_start;
	uint64_t table[4], *pml4, *pdpt, *pd, *gdt;
	uint8_t *idt = vm->mem + LONG_IDT;

	memcpy(vm->mem + LONG_CODE_BASE, img, len);
	memcpy(table, img + 8, sizeof(table));

	pml4 = (uint64_t *)(vm->mem + LONG_PML4);
	pdpt = (uint64_t *)(vm->mem + LONG_PDPT);
	pd = (uint64_t *)(vm->mem + LONG_PD);
	pml4[0] = LONG_PDPT | 0x3;
	for (unsigned i = 0; i < 4; i++) {
		pdpt[i] = (LONG_PD + i * 0x1000) | 0x3;
		for (unsigned j = 0; j < 512; j++) {
			uint64_t addr = ((uint64_t)i << 30) | ((uint64_t)j << 21);

			/* PS | RW | P; the APIC window (top of the 4th GiB) uncached */
			pd[i * 512 + j] = addr | 0x83 | (i == 3 && j >= 504 ? 0x18 : 0);
		}
	}

	gdt = (uint64_t *)(vm->mem + LONG_GDT);
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull; /* 0x08: code, 64-bit */
	gdt[2] = 0x00cf93000000ffffull; /* 0x10: data */

	for (unsigned v = 0; v < 256; v++) {
		uint64_t h = table[2];
		uint8_t *g = idt + v * 16;

		if (v == 2)
			h = table[1];
		else if (v == IPI_VECTOR)
			h = table[0];
		else if (v == SPURIOUS_VECTOR)
			h = table[3];
		memset(g, 0, 16);
		g[0] = h & 0xff;
		g[1] = (h >> 8) & 0xff;
		g[2] = 0x08; /* selector */
		g[5] = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
		g[6] = (h >> 16) & 0xff;
		g[7] = (h >> 24) & 0xff;
		memcpy(g + 8, (uint32_t[]){(uint32_t)(h >> 32)}, 4);
	}
}

static void vcpu_fail(struct vcpu *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vcpu_fail(struct vcpu *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->error, sizeof(v->error), fmt, ap);
	va_end(ap);
	atomic_store(&v->vm->failed, true);
	atomic_store(&v->vm->stop, true);
}

/* Where a vCPU stopped, for an error message: " at CS:IP ..." from its registers. */
static void vcpu_where(const struct vcpu *v, char *buf, size_t len)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	buf[0] = '\0';
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return;
	snprintf(buf, len, " (CS:RIP %04x:%llx, SS:RSP %04x:%llx, RFLAGS %llx)", sregs.cs.selector,
		 (unsigned long long)regs.rip, sregs.ss.selector, (unsigned long long)regs.rsp,
		 (unsigned long long)regs.rflags);
}

static const char *exit_reason_name(unsigned r)
{
	switch (r) {
	case KVM_EXIT_SHUTDOWN: return "shutdown (triple fault)";
	case KVM_EXIT_INTERNAL_ERROR: return "internal error";
	case KVM_EXIT_FAIL_ENTRY: return "entry failure";
	case KVM_EXIT_MMIO: return "unhandled MMIO";
	case KVM_EXIT_IO: return "unexpected port I/O";
	case KVM_EXIT_HLT: return "HLT in user space";
	case KVM_EXIT_HYPERCALL: return "hypercall in user space";
	default: return "unexpected exit";
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	pthread_mutex_lock(&vm->lock);
	while (!vm->go && !atomic_load(&vm->stop))
		pthread_cond_wait(&vm->go_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);

	while (!atomic_load(&vm->stop)) {
		struct kvm_run *run = v->run;

		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vcpu_fail(v, "KVM_RUN on vCPU %u failed: %s", v->id, strerror(errno));
			break;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.port == PORT_DONE && v->id == 0) {
			atomic_store(&vm->done, true);
			break;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PORT_ERROR) {
			uint32_t code = *ctrl32(vm, CTRL_ERROR);

			vcpu_fail(v, "guest on vCPU %u reported %s", v->id,
				  code == GUEST_ERR_NO_X2APIC ? "that its APIC did not enter "
								"x2APIC mode"
							      : "an unknown IPI pattern");
			break;
		}
		if (run->exit_reason == KVM_EXIT_INTR)
			continue;
		char where[96];

		vcpu_where(v, where, sizeof(where));
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
			vcpu_fail(v,
				  "vCPU %u stopped: KVM internal error, suberror %u "
				  "(the host cannot run this guest code)%s",
				  v->id, run->internal.suberror, where);
		else if (run->exit_reason == KVM_EXIT_MMIO)
			vcpu_fail(v, "vCPU %u stopped: unhandled MMIO %s at 0x%llx%s", v->id,
				  run->mmio.is_write ? "write" : "read",
				  (unsigned long long)run->mmio.phys_addr, where);
		else if (run->exit_reason == KVM_EXIT_IO)
			vcpu_fail(v, "vCPU %u stopped: unexpected port I/O at 0x%x%s", v->id,
				  run->io.port, where);
		else
			vcpu_fail(v, "vCPU %u stopped: %s (KVM exit reason %u)%s", v->id,
				  exit_reason_name(run->exit_reason), run->exit_reason, where);
		break;
	}
	atomic_store(&v->exited, true);
	return NULL;
}

/* Make every vCPU thread leave KVM_RUN and join it. Signals are repeated because a
 * thread may be between the stop check and KVM_RUN when the first one lands. */
static void stop_vcpus(struct vm *vm)
{
	atomic_store(&vm->stop, true);
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->go_cond);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->started)
			continue;
		if (v->run)
			v->run->immediate_exit = 1;
		while (!atomic_load(&v->exited)) {
			pthread_kill(v->thread, KICK_SIGNAL);
			usleep(1000);
		}
		pthread_join(v->thread, NULL);
		v->started = false;
	}
}

static void vm_destroy(struct vm *vm)
{
	stop_vcpus(vm);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpus[i].run)
			munmap(vm->vcpus[i].run, vm->run_size);
		if (vm->vcpus[i].fd >= 0)
			close(vm->vcpus[i].fd);
	}
	if (vm->mem)
		munmap(vm->mem, GUEST_MEM_SIZE);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->cpuid);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->go_cond);
}

static int pin_thread(pthread_t t, int cpu, char *err, size_t errlen)
{
	cpu_set_t set;
	int r;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	r = pthread_setaffinity_np(t, sizeof(set), &set);
	if (r) {
		snprintf(err, errlen, "cannot pin a vCPU thread to CPU %d: %s", cpu, strerror(r));
		return -r;
	}
	return 0;
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_kick; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigaction(KICK_SIGNAL, &sa, NULL);
	sa.sa_handler = on_go;
	sigaction(GO_SIGNAL, &sa, NULL);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int create_vm(struct vm *vm, const struct bench_result *res, char *err, size_t errlen)
{
	struct kvm_userspace_memory_region region;
	int r;

	vm->kvm_fd = open_kvm(err, errlen);
	if (vm->kvm_fd < 0)
		return vm->kvm_fd;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0) {
		snprintf(err, errlen,
			 "KVM on this host has no in-kernel irqchip (KVM_CAP_IRQCHIP)");
		return -ENOTSUP;
	}
	r = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (r > 0 && res->config.vcpus > (unsigned)r) {
		snprintf(err, errlen, "%u vCPUs requested but KVM allows at most %d per VM",
			 res->config.vcpus, r);
		return -EINVAL;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	vm->cpuid = supported_cpuid(vm->kvm_fd, err, errlen);
	if (!vm->cpuid)
		return -EIO;

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM failed: %s", strerror(errno));
		return -errno;
	}
	/* Real mode on VMX without unrestricted guest needs a TSS; other backends may not
	 * implement the ioctl, which is harmless for them. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 && errno != ENOTTY &&
	    errno != EINVAL) {
		snprintf(err, errlen, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP failed: %s", strerror(errno));
		return -errno;
	}
	vm->mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		snprintf(err, errlen, "cannot map %u bytes of guest memory", GUEST_MEM_SIZE);
		return -ENOMEM;
	}
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = GUEST_MEM_SIZE,
		.userspace_addr = (uintptr_t)vm->mem,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION failed: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int create_vcpus(struct vm *vm, const struct bench_result *res, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int r;

		v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0) {
			snprintf(err, errlen, "KVM_CREATE_VCPU %u failed: %s", i, strerror(errno));
			return -errno;
		}
		v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			snprintf(err, errlen, "cannot map kvm_run of vCPU %u", i);
			return -ENOMEM;
		}
		r = set_vcpu_cpuid(vm, v, err, errlen);
		if (!r)
			r = setup_vcpu_regs(vm, v, res->config.cpu_mode, err, errlen);
		if (r)
			return r;
	}
	if (res->host.tsc_khz == 0) {
		long khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);

		if (khz > 0)
			((struct bench_result *)res)->host.tsc_khz = khz;
	}
	return 0;
}

static int start_threads(struct vm *vm, const struct bench_config *cfg, char *err, size_t errlen)
{
	sigset_t set, old;
	int r = 0;

	/* Threads start with the kick signal blocked and unblock it themselves, so the
	 * main thread never takes it. */
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		r = -pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (r) {
			snprintf(err, errlen, "cannot start vCPU thread %u: %s", i, strerror(-r));
			break;
		}
		v->started = true;
		if (cfg->pin) {
			r = pin_thread(v->thread, cfg->pin_cpus[i % cfg->n_pin_cpus], err, errlen);
			if (r)
				break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static void release_threads(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->go = true;
	pthread_cond_broadcast(&vm->go_cond);
	pthread_mutex_unlock(&vm->lock);
}

/* Wait for the sender to finish, failing when the guest makes no progress for the
 * configured time or a vCPU stops on an error. */
static int watch(struct vm *vm, const struct bench_result *res, char *err, size_t errlen)
{
	uint32_t last = *ctrl32(vm, CTRL_PROGRESS);
	double last_change = now_seconds();

	while (!atomic_load(&vm->done)) {
		uint32_t progress;

		if (atomic_load(&vm->failed)) {
			for (unsigned i = 0; i < vm->nvcpus; i++)
				if (vm->vcpus[i].error[0]) {
					snprintf(err, errlen, "%s", vm->vcpus[i].error);
					break;
				}
			return -EIO;
		}
		if (stop_signalled) {
			snprintf(err, errlen, "interrupted by a signal before the runs completed");
			return -EINTR;
		}
		usleep(20000);
		progress = __atomic_load_n(ctrl32(vm, CTRL_PROGRESS), __ATOMIC_RELAXED);
		if (progress != last) {
			last = progress;
			last_change = now_seconds();
		} else if (now_seconds() - last_change > res->config.timeout_s) {
			uint32_t online = *ctrl32(vm, CTRL_ONLINE);

			if (online < vm->nvcpus)
				snprintf(err, errlen,
					 "guest made no progress for %u s: only %u of "
					 "%u vCPUs finished APIC setup",
					 res->config.timeout_s, online, vm->nvcpus);
			else if (progress == 0 && res->config.pattern == BENCH_PV_SEND_IPI)
				snprintf(err, errlen,
					 "guest made no progress for %u s: its first "
					 "KVM_HC_SEND_IPI hypercall never returned, so this host "
					 "does not complete PV send-IPI",
					 res->config.timeout_s);
			else
				snprintf(err, errlen,
					 "guest made no progress for %u s after %u IPIs "
					 "sent (%u of %u deliveries acknowledged): the %s pattern "
					 "does not complete on this host",
					 res->config.timeout_s, progress, *ctrl32(vm, CTRL_ACKS),
					 (progress + 1) * *ctrl32(vm, CTRL_FANOUT),
					 bench_pattern_name(res->config.pattern));
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static int collect(struct vm *vm, struct bench_result *res, const struct bench_plan *plan,
		   unsigned warmup, char *err, size_t errlen)
{
	uint64_t expected[BENCH_MAX_VCPUS];
	unsigned total_runs = warmup + res->config.runs;
	const uint64_t *results = (const uint64_t *)(vm->mem + GUEST_CTRL + CTRL_RESULTS);

	res->n_runs = res->config.runs;
	res->fanout = plan->fanout;
	for (unsigned r = 0; r < res->config.runs; r++)
		res->cycles_per_ipi[r] = (double)results[warmup + r] / res->config.ipis;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		const uint8_t *p = vm->mem + GUEST_CTRL + CTRL_PERVCPU + i * PERVCPU_SIZE;

		memcpy(&res->vcpu[i].sent, p + PERVCPU_SENT, 8);
		memcpy(&res->vcpu[i].received, p + PERVCPU_RECEIVED, 8);
	}
	/* guest send->EOI samples of the measured runs: the ring holds the newest ones */
	{
		uint32_t total = *ctrl32(vm, CTRL_NSAMPLES);
		uint64_t warm = (uint64_t)warmup * res->config.ipis * plan->fanout;
		uint64_t first = total > SAMPLES_MAX ? total - SAMPLES_MAX : 0;
		const uint32_t *ring = (const uint32_t *)(vm->mem + SAMPLES_BASE);
		double *v;
		size_t n = 0;

		if (first < warm)
			first = warm;
		v = total > first ? malloc((total - first) * sizeof(*v)) : NULL;
		for (uint64_t i = first; v && i < total; i++)
			v[n++] = ring[i & (SAMPLES_MAX - 1)];
		res->send_to_eoi_samples = n;
		if (n)
			bench_stats_compute(v, n, &res->send_to_eoi_cycles);
		free(v);
	}
	if (*ctrl32(vm, CTRL_UNEXPECTED)) {
		snprintf(err, errlen, "the guest took %u interrupts on vectors nobody sent",
			 *ctrl32(vm, CTRL_UNEXPECTED));
		return -EIO;
	}
	if (res->vcpu[0].sent != (uint64_t)total_runs * res->config.ipis) {
		snprintf(err, errlen, "guest sender counted %llu IPIs, expected %llu",
			 (unsigned long long)res->vcpu[0].sent,
			 (unsigned long long)total_runs * res->config.ipis);
		return -EIO;
	}
	bench_plan_expected(&res->config, plan, total_runs, expected);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (res->vcpu[i].received != expected[i]) {
			snprintf(err, errlen, "vCPU %u received %llu IPIs, expected exactly %llu",
				 i, (unsigned long long)res->vcpu[i].received,
				 (unsigned long long)expected[i]);
			return -EIO;
		}
	return 0;
}

/* Keeps the VM until SIGINT/SIGTERM or, with seconds >= 0, until they have passed, asleep in
 * the kernel: a held VM costs no CPU (bench/scale.sh holds hundreds; waking each every 20 ms
 * kept a 2-CPU host busy). The stop signals are blocked between the check and the wait, which
 * unblocks them atomically, so one that arrives in between is not missed. */
static void hold(double seconds)
{
	double end = now_seconds() + seconds;
	sigset_t stop, old;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	while (!stop_signalled) {
		struct timespec ts, *timeout = NULL;

		if (seconds >= 0) {
			double left = end - now_seconds();

			if (left <= 0)
				break;
			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
			timeout = &ts;
		}
		ppoll(NULL, 0, timeout, &old); /* returns on a signal (EINTR) or the timeout */
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int vmm_run(struct bench_result *res, const struct vmm_opts *opts, char *err, size_t errlen)
{
	struct bench_config *cfg = &res->config;
	unsigned total_runs = cfg->warmup + cfg->runs;
	struct bench_plan plan;
	struct vm vm = {.kvm_fd = -1, .vm_fd = -1};
	double t0;
	int r;

	r = bench_plan_make(cfg, &plan, err, errlen);
	if (r)
		return r;
	if (total_runs > CTRL_RESULTS_MAX || cfg->runs > BENCH_MAX_RUNS) {
		snprintf(err, errlen, "too many runs: at most %u (warm-up included)",
			 BENCH_MAX_RUNS);
		return -EINVAL;
	}
	pthread_mutex_init(&vm.lock, NULL);
	pthread_cond_init(&vm.go_cond, NULL);
	vm.nvcpus = cfg->vcpus;
	for (unsigned i = 0; i < BENCH_MAX_VCPUS; i++) {
		vm.vcpus[i].fd = -1;
		vm.vcpus[i].vm = &vm;
		vm.vcpus[i].id = i;
	}
	install_handlers();

	r = create_vm(&vm, res, err, errlen);
	if (r)
		goto cleanup;
	cpuid_facts(vm.cpuid, &res->host);
	if (plan.x2apic && !res->host.x2apic) {
		snprintf(err, errlen,
			 "pattern %d needs x2APIC, which this host's KVM does not "
			 "offer to guests",
			 cfg->pattern);
		r = -ENOTSUP;
		goto cleanup;
	}
	if (plan.needs_pv && !res->host.pv_send_ipi) {
		snprintf(err, errlen, "this host's KVM does not offer KVM_FEATURE_PV_SEND_IPI");
		r = -ENOTSUP;
		goto cleanup;
	}

	if (cfg->cpu_mode == BENCH_CPU_REAL)
		setup_real_mode(&vm);
	else
		setup_long_mode(&vm);
	*ctrl32(&vm, CTRL_MAGIC) = CTRL_MAGIC_VALUE;
	*ctrl32(&vm, CTRL_PATTERN) = cfg->pattern;
	*ctrl32(&vm, CTRL_NVCPUS) = cfg->vcpus;
	*ctrl32(&vm, CTRL_RUNS) = total_runs;
	*ctrl32(&vm, CTRL_IPIS) = cfg->ipis;
	*ctrl32(&vm, CTRL_HALT) = cfg->target == BENCH_TARGET_HALT;
	*ctrl32(&vm, CTRL_VECTOR) = IPI_VECTOR;
	*ctrl32(&vm, CTRL_X2APIC) = plan.x2apic;
	*ctrl32(&vm, CTRL_FANOUT) = plan.fanout;
	*ctrl32(&vm, CTRL_NSLOTS) = plan.nslots;
	*ctrl32(&vm, CTRL_SEND_KIND) = plan.send_kind;
	*ctrl32(&vm, CTRL_ICR_LOW) = plan.icr_low;
	memcpy(ctrl32(&vm, CTRL_DEST), plan.dest, sizeof(plan.dest));

	r = create_vcpus(&vm, res, err, errlen);
	if (r)
		goto cleanup;
	r = start_threads(&vm, cfg, err, errlen);
	if (r)
		goto cleanup;

	if (opts->wait_for_go) {
		while (!go_signalled && !stop_signalled)
			usleep(20000);
		if (stop_signalled) {
			snprintf(err, errlen, "interrupted by a signal while waiting for SIGUSR2");
			r = -EINTR;
			goto cleanup;
		}
	}
	t0 = now_seconds();
	release_threads(&vm);
	r = watch(&vm, res, err, errlen);
	res->wall_seconds = now_seconds() - t0;
	if (r)
		goto cleanup;
	/* The sender is done and every delivery was acknowledged: stop the targets. */
	stop_vcpus(&vm);
	r = collect(&vm, res, &plan, cfg->warmup, err, errlen);
	if (r)
		goto cleanup;
	if (opts->on_result)
		opts->on_result(res, opts->on_result_arg);
	if (opts->hold_seconds != 0)
		hold(opts->hold_seconds);
cleanup:
	vm_destroy(&vm);
	return r;
}
