/*
 * The KVM VM of one partition: /dev/kvm, the VM with its in-kernel interrupt
 * controllers and PIT, guest RAM from a memfd (at 0, and above 4 GiB past the MMIO
 * hole), and the vCPUs with their shared kvm_run pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/platform.h"
#include "monitor/mon.h"

#define KVM_API_VERSION_EXPECTED 12

static int vm_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int ret = ioctl(fd, req, arg);

	return ret < 0 ? -errno : ret;
}

static int vm_check_caps(int kvm_fd)
{
	static const int needed[] = { KVM_CAP_USER_MEMORY, KVM_CAP_IRQCHIP, KVM_CAP_PIT2,
				      KVM_CAP_EXT_CPUID };

	if (vm_ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION_EXPECTED)
		return -ENOTSUP;
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
		if (vm_ioctl(kvm_fd, KVM_CHECK_EXTENSION, needed[i]) <= 0)
			return -ENOTSUP;
	return 0;
}

/* Take the supervisor's memfd (which must be exactly the partition's size) or make one. */
static int vm_memfd(struct mon *m)
{
	struct stat st;
	int fd = m->opt->mem_fd;

	if (fd < 0) {
		char name[64];

		snprintf(name, sizeof(name), "bulkhead:%s", m->opt->name);
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, m->mem_size) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
	} else if (fstat(fd, &st) < 0) {
		return -errno;
	} else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != m->mem_size) {
		return -EBADFD;
	}
	m->mem_fd = fd;
	return 0;
}

static int vm_set_slot(struct mon *m, unsigned slot, uint64_t gpa, uint64_t size,
		       uint64_t offset)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)(m->ram + offset),
	};

	return vm_ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&r);
}

int mon_vm_memory(struct mon *m)
{
	int ret;

	m->mem_size = m->opt->mem_size;
	ret = vm_memfd(m);
	if (ret)
		return ret;
	m->ram = mmap(NULL, m->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->mem_fd, 0);
	if (m->ram == MAP_FAILED) {
		m->ram = NULL;
		return -errno;
	}
	m->low_size = m->mem_size < BH_RAM_LOW_MAX ? m->mem_size : BH_RAM_LOW_MAX;
	m->high_size = m->mem_size - m->low_size;
	ret = vm_set_slot(m, 0, 0, m->low_size, 0);
	if (!ret && m->high_size)
		ret = vm_set_slot(m, 1, BH_HIGH_RAM_BASE, m->high_size, m->low_size);
	return ret;
}

int mon_vm_create(struct mon *m)
{
	/* Speaker port 0x61 in the kernel too, so PIT channel 2 (timer calibration) works. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int ret;

	m->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (m->kvm_fd < 0)
		return -errno;
	ret = vm_check_caps(m->kvm_fd);
	if (ret)
		return ret;
	m->vm_fd = vm_ioctl(m->kvm_fd, KVM_CREATE_VM, 0);
	if (m->vm_fd < 0)
		return m->vm_fd;
	/* Only Intel hosts use these; elsewhere KVM accepts and ignores them. */
	if (vm_ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		uint64_t addr = MON_IDENTITY_MAP_ADDR;

		ret = vm_ioctl(m->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, (uintptr_t)&addr);
		if (ret)
			return ret;
	}
	if (vm_ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0) {
		ret = vm_ioctl(m->vm_fd, KVM_SET_TSS_ADDR, MON_TSS_ADDR);
		if (ret)
			return ret;
	}
	ret = vm_ioctl(m->vm_fd, KVM_CREATE_IRQCHIP, 0);
	if (!ret)
		ret = vm_ioctl(m->vm_fd, KVM_CREATE_PIT2, (uintptr_t)&pit);
	if (!ret)
		ret = x86_msr_setup(m);       /* before the vCPUs: the PMU choice is per VM */
	return ret;
}

static int vm_vcpu_create(struct mon *m, struct mon_vcpu *v, unsigned index)
{
	*v = (struct mon_vcpu){ .m = m, .index = index, .fd = -1 };
	v->fd = vm_ioctl(m->vm_fd, KVM_CREATE_VCPU, index);
	if (v->fd < 0)
		return v->fd;
	v->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return -errno;
	}
	return 0;
}

/* Every partition's TSC reads the host's, so a timestamp one partition writes into a
 * sampling channel means the same in another (a VM's TSC otherwise starts near 0 when
 * its vCPU is created). KVM_VCPU_TSC_OFFSET exists from Linux 5.16; without it the
 * offset stays what KVM chose, as docs/monitor.md says. */
static bool vm_tsc_offset_zero(struct mon_vcpu *v)
{
#ifdef KVM_VCPU_TSC_OFFSET
	uint64_t offset = 0;
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
					.addr = (uintptr_t)&offset };

	return !vm_ioctl(v->fd, KVM_HAS_DEVICE_ATTR, (uintptr_t)&attr) &&
	       !vm_ioctl(v->fd, KVM_SET_DEVICE_ATTR, (uintptr_t)&attr);
#else
	(void)v;
	return false;
#endif
}

/* The partition's vCPUs, 0 (the bootstrap processor) first: with the in-kernel LAPIC
 * KVM starts the others in the wait-for-SIPI state. */
int mon_vcpu_create(struct mon *m)
{
	int size, ret;

	size = vm_ioctl(m->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		return size;
	if ((size_t)size < sizeof(struct kvm_run))
		return -EINVAL;
	m->run_size = size;
	for (unsigned i = 0; i < m->opt->nvcpus; i++) {
		ret = vm_vcpu_create(m, &m->vcpu[i], i);
		m->nvcpus = i + 1;
		if (ret)
			return ret;
		m->tsc_host = vm_tsc_offset_zero(&m->vcpu[i]) && (i == 0 || m->tsc_host);
	}
	/* The guest learns the TSC rate from boot information; 0 when KVM cannot say. */
	if (vm_ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) > 0) {
		int khz = vm_ioctl(m->vcpu[0].fd, KVM_GET_TSC_KHZ, 0);

		m->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	}
	return 0;
}

/* Host address of guest-physical [gpa, gpa + len), or NULL when it is not all RAM. */
void *mon_gpa(struct mon *m, uint64_t gpa, uint64_t len)
{
	if (gpa < m->low_size && len <= m->low_size - gpa)
		return m->ram + gpa;
	if (gpa >= BH_HIGH_RAM_BASE && gpa - BH_HIGH_RAM_BASE < m->high_size &&
	    len <= m->high_size - (gpa - BH_HIGH_RAM_BASE))
		return m->ram + m->low_size + (gpa - BH_HIGH_RAM_BASE);
	return NULL;
}

void mon_vm_destroy(struct mon *m)
{
	for (unsigned i = 0; i < m->nvcpus; i++) {
		if (m->vcpu[i].run)
			munmap(m->vcpu[i].run, m->run_size);
		if (m->vcpu[i].fd >= 0)
			close(m->vcpu[i].fd);
	}
	m->nvcpus = 0;
	if (m->ram)
		munmap(m->ram, m->mem_size);
	if (m->vm_fd >= 0)
		close(m->vm_fd);
	if (m->kvm_fd >= 0)
		close(m->kvm_fd);
	if (m->mem_fd >= 0 && m->mem_fd != m->opt->mem_fd)
		close(m->mem_fd);
	m->ram = NULL;
	m->vm_fd = m->kvm_fd = m->mem_fd = -1;
}
