/*
 * The partition monitor's internal interfaces: the per-process context (one partition,
 * one KVM VM) and the modules that fill it. Functions return 0 or -errno; the caller
 * that knows the context turns a failure into a message.
 */
#ifndef BH_MON_H
#define BH_MON_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/bootinfo.h"
#include "monitor/io.h"
#include "monitor/iothread.h"
#include "monitor/pci.h"
#include "monitor/uart.h"

struct kvm_run;

/* Why the run loop stopped; decides the process exit code. */
enum mon_stop {
	MON_RUNNING = 0,
	MON_STOP_EXIT,      /* guest wrote BH_SYSCTL_EXIT: exit code 0 */
	MON_STOP_RESET,     /* guest wrote BH_SYSCTL_RESET: exit code 3 */
	MON_STOP_FAULT,     /* isolation violation or fatal vCPU state: exit code 1 */
	MON_STOP_ERROR,     /* the monitor itself failed (KVM_RUN error): exit code 2 */
};

enum { MON_EXIT_OK = 0, MON_EXIT_FAULT = 1, MON_EXIT_SETUP = 2, MON_EXIT_RESET = 3 };

/* Addresses KVM needs for its own use on Intel hosts (real-mode TSS, 3 pages, and the
 * EPT identity map, 1 page); placed high in the MMIO hole, above the LAPIC and clear of
 * the PCI BAR window. */
#define MON_IDENTITY_MAP_ADDR 0xFEFFC000UL
#define MON_TSS_ADDR          0xFEFFD000UL

#define MON_MEM_MAX           (63ULL << 30)  /* 64 page directories, minus the hole */
#define MON_VCPUS_MAX         64     /* as many as the MADT and the MP table can list */
#define MON_KICK_SIGNAL       SIGUSR1  /* takes a vCPU thread out of KVM_RUN to stop */
#define VCPU_IGNORED_REPORTS  16     /* ignored violations reported as events */
#define MON_NAME_JSON_MAX     (BH_NAME_MAX * 6 + 3)

/* A shared region or channel given with --region (regions.c). */
struct mon_region {
	char     name[BH_NAME_MAX + 1];
	uint8_t  kind;            /* BH_REGION_SHARED, _SAMPLING or _QUEUING */
	bool     writable;
	uint64_t gpa, size;
	int      fd;
	void    *host;
	char     port[BH_NAME_MAX + 1];  /* a channel end's port name, or "" */
	uint8_t  role;            /* BH_PORT_NONE, _SOURCE or _DESTINATION */
};

/* A virtio device given with --device (device_opt.c); the device itself is struct vdev
 * (virtio.h). */
#define MON_DEVICES_MAX 16

struct mon_device {
	const struct vdev_type *type;
	unsigned    slot;          /* PCI device number on bus 0, 1 .. 31 */
	int         fd;            /* connected unix stream socket, or -1 */
	char        socket[108];   /* path to connect to, or empty */
	bool        shared;        /* isolation=shared (default: window) */
	const char *arg;           /* the option as given, for messages */
};

struct mon_options {
	const char *name;
	unsigned    id;
	const char *image;
	const char *kernel;       /* --kernel: a Linux bzImage instead of --image */
	const char *initrd;
	uint64_t    mem_size;
	int         mem_fd;       /* -1: the monitor creates its own memfd */
	const char *cpus;         /* NULL: no pinning */
	/* vCPUs: 1 for a bare-metal image (its one thread pinned to all of --cpus); for
	 * --kernel one per CPU of --cpus, vCPU i pinned to host CPU vcpu_host[i] */
	unsigned    nvcpus;
	int         vcpu_host[MON_VCPUS_MAX];     /* -1: not pinned on its own */
	const char *cmdline;
	int         event_fd;
	struct mon_region regions[BH_BOOTINFO_REGIONS];
	unsigned    nregions;
	bool        ignore_violations;   /* --on-violation ignore */
	struct mon_device devices[MON_DEVICES_MAX];
	unsigned    ndevices;
	int         control_fd;   /* --control-fd: the supervisor's SOCK_SEQPACKET, or -1 */
	uint64_t    watchdog_ns;  /* --watchdog: the period; 0 for none */
	bool        watchdog_ignore;     /* --on-watchdog ignore */
};

struct vdev;

/* Interrupt state shared by the devices (irq.c). */
struct mon_irq {
	pthread_mutex_t lock;
	uint32_t intx_sources[24];    /* per IOAPIC pin: bit i = device i asserts it */
	void    *routing;             /* struct kvm_irq_routing, allocated at start-up */
};

/* rtc.c: the MC146818 clock's index and its 128 bytes of CMOS (time registers are
 * read from the host's clock instead) */
struct mon_rtc {
	uint8_t index;
	uint8_t cmos[128];
};

/* acpi_pm.c: the ACPI PM1 registers that keep a value */
struct mon_acpi_pm {
	uint16_t pm1_en, pm1_cnt;
};

/* One vCPU: its KVM fd and kvm_run page, and the thread that runs it (vCPU 0, the
 * bootstrap processor, runs on the monitor's main thread). */
struct mon_vcpu {
	struct mon     *m;
	unsigned        index;    /* KVM vCPU id, APIC id and ACPI processor UID */
	int             fd;
	struct kvm_run *run;
	pthread_t       thread;
	bool            started;  /* thread is running (or, for vCPU 0, will run) it */
	int             err;      /* -errno when KVM_RUN itself failed */
};

struct mon {
	const struct mon_options *opt;
	char      name_json[MON_NAME_JSON_MAX];   /* the name as a JSON string, quoted */

	/* KVM and guest memory (vm.c) */
	int       kvm_fd, vm_fd;
	int       mem_fd;
	uint8_t  *ram;            /* the whole memfd mapped: low RAM, then high RAM */
	uint64_t  mem_size;
	uint64_t  low_size;       /* RAM at guest-physical 0 */
	uint64_t  high_size;      /* RAM at BH_HIGH_RAM_BASE */
	struct mon_vcpu vcpu[MON_VCPUS_MAX];
	unsigned  nvcpus;
	size_t    run_size;
	uint64_t  tsc_khz;
	bool      tsc_host;       /* the vCPUs' TSC offset was set to 0: guest TSC = host's */

	/* the image (or kernel) and initrd, read and validated before KVM set-up, dropped
	 * once loaded (boot.c, boot_linux.c) */
	uint8_t  *img;
	size_t    img_len;
	uint8_t  *initrd;
	size_t    initrd_len;
	uint64_t  entry;
	uint64_t  boot_params;    /* Linux: the zero page, for RSI; 0 for a bare-metal image */

	/* devices */
	struct io_space io;
	struct uart     uart;
	struct pci_bus  pci;
	struct mon_rtc  rtc;            /* --kernel only */
	struct mon_acpi_pm acpi_pm;     /* --kernel only */
	struct vdev    *vdev[MON_DEVICES_MAX];
	unsigned        nvdev;
	struct mon_irq  irq;
	struct iot      iot;
	struct {
		int      fd;              /* -1: none, or closed by the supervisor */
		struct iot_source src;
		unsigned reports;         /* bad messages reported */
	} ctl;
	struct {
		/* kicks, last_kick_ns and armed are shared by the vCPU thread (kicks) and the
		 * I/O thread (the timer): accessed with __atomic builtins only. */
		uint64_t kicks;
		uint64_t last_kick_ns;    /* CLOCK_MONOTONIC */
		bool     armed;           /* the timer runs: a kick has come since the last miss */
		int      tfd;             /* timerfd, -1: no watchdog */
		uint64_t misses;          /* I/O thread only */
		struct iot_source src;
	} watchdog;

	/* Port and MMIO dispatch: one vCPU thread at a time runs any device handler (the
	 * devices were written for one vCPU; the I/O thread has its own per-device locks). */
	pthread_mutex_t io_lock;

	/* run state (vcpu.c): the first mon_stop wins; stop is read with __atomic loads */
	pthread_mutex_t stop_lock;
	enum mon_stop stop;
	uint32_t  exit_status;
	int       run_error;      /* MON_STOP_ERROR: KVM_RUN's -errno */
	uint64_t  ignored_violations;     /* __atomic */
	uint64_t  unknown_msrs;           /* __atomic: guest accesses answered #GP */
	int       event_fd;
};

/* vm.c */
int mon_vm_create(struct mon *m);
int mon_vm_memory(struct mon *m);
int mon_vcpu_create(struct mon *m);
void *mon_gpa(struct mon *m, uint64_t gpa, uint64_t len);
void mon_vm_destroy(struct mon *m);

/* boot.c */
int mon_boot_read(struct mon *m, const char **why);
int mon_boot_load(struct mon *m, const char **why);
int mon_boot_linux_load(struct mon *m, const char **why);
int mon_boot_read_initrd(struct mon *m, const char **why);
void mon_boot_free(struct mon *m);
int mon_boot_info(struct mon *m);

/* vcpu.c */
bool mon_stop(struct mon *m, enum mon_stop why, uint32_t status);
int mon_vcpus_start(struct mon *m);
void mon_vcpus_run(struct mon *m);
void mon_vcpus_join(struct mon *m);
uint64_t mon_vcpu_rip(struct mon_vcpu *v);   /* 0 when KVM cannot say */
int mon_irq_line(struct mon *m, unsigned irq, int level);

/* sysctl.c */
int sysctl_register(struct mon *m);
/* legacy.c: --kernel only; the legacy ISA ports Linux probes, absent rather than
 * violations. */
int legacy_register_absent(struct mon *m);
/* rtc.c: --kernel only; the CMOS real-time clock at 0x70-0x71, the host's UTC time */
int rtc_register(struct mon *m);
/* acpi_pm.c: --kernel only; the ACPI PM1 event and control blocks (power off) */
int acpi_pm_register(struct mon *m);

/* watchdog.c: --watchdog; wd_kick runs on the vCPU thread, the timer on the I/O
 * thread (wd_watch, before the sandbox) */
#define MON_WATCHDOG_MIN_NS   1000000ULL   /* 1 ms, as the system file's checker */
#define WD_IGNORED_REPORTS    16           /* misses reported with --on-watchdog ignore */
int wd_watch(struct mon *m);
void wd_kick(struct mon *m);

/* events.c */
int  ev_init(struct mon *m);
void ev_emit(struct mon *m, const char *event, const char *fields_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* regions.c */
int mon_region_parse(const char *arg, struct mon_region *r);
int mon_regions_map(struct mon *m, const char **why);
uint64_t mon_regions_end(const struct mon *m);
void mon_regions_bootinfo(const struct mon *m, struct bh_bootinfo *bi);

/* device_opt.c */
int mon_device_parse(const char *arg, struct mon_device *d, const char **why);

/* virtio_dev.c */
int mon_devices_setup(struct mon *m, const char **who, const char **why);
int vdev_start_io(struct mon *m);
void mon_devices_destroy(struct mon *m);

/* control.c: the supervisor's control socket (--control-fd) */
int ctl_watch(struct mon *m);
bool ctl_up(const struct mon *m);
/* The I/O thread's platform work (console input on the control socket, the watchdog's
 * timer), started after vdev_start_io: also in a partition without virtio devices. */
int ctl_start(struct mon *m);

/* sandbox.c */
int sandbox_enter(struct mon *m);

/* x86/ */
int x86_cpuid_setup(struct mon *m, struct mon_vcpu *v);
int x86_msr_setup(struct mon *m);
void x86_msr_exit(struct mon_vcpu *v);
int x86_longmode_setup(struct mon *m);

#endif
