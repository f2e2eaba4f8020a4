/*
 * The floor for bench/boot: the least a partition start can cost on this host. It forks,
 * execs itself, creates a KVM VM with one vCPU and one page of real-mode code that
 * writes a byte to a port, runs it once and prints that byte. bulkhead's first-output
 * time is compared with this.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOOR_PORT 0x3f8

static int guest(void)
{
	/* mov al, '!' ; mov dx, 0x3f8 ; out dx, al ; hlt */
	static const unsigned char code[] = { 0xb0, '!', 0xba, 0xf8, 0x03, 0xee, 0xf4 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, vcpu;
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	void *mem;

	if (kvm < 0 || (vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0)
		return 1;
	mem = mmap(NULL, 0x200000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	memcpy(mem, code, sizeof(code));
	region = (struct kvm_userspace_memory_region){ .slot = 0, .guest_phys_addr = 0,
		.memory_size = 0x200000, .userspace_addr = (unsigned long)mem };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) ||
	    (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0)
		return 1;
	run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE,
		   MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs))
		return 1;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 2;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) || ioctl(vcpu, KVM_SET_REGS, &regs) ||
	    ioctl(vcpu, KVM_RUN, 0))
		return 1;
	if (run->exit_reason != KVM_EXIT_IO || run->io.port != FLOOR_PORT)
		return 2;
	return write(STDOUT_FILENO, (char *)run + run->io.data_offset, 1) == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	pid_t pid;
	int status;

	if (argc > 1 && !strcmp(argv[1], "--guest"))
		return guest();
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", argv[0], "--guest", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
