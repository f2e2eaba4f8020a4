/*
 * The accelerator probe for `engine: qemu` partitions. KVM is chosen only when
 * /dev/kvm opens read-write, the host's KVM is not PVM (which runs bare-metal guests
 * but no unmodified kernel) and the CPU is hardware-assisted (svm or vmx): the same
 * heuristic as rig/run.py's host_kvm_boots_linux(). Nothing is booted to find out, so
 * it costs a few system calls per partition start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/accel.h"

enum { CPUINFO_LINE_MAX = 8192 };

/* True when tok is a blank-separated word of the flags list s. */
static bool has_word(const char *s, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *p = s; (p = strstr(p, tok)); p += n) {
		bool start = p == s || p[-1] == ' ' || p[-1] == '\t';
		bool end = p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == '\n';

		if (start && end)
			return true;
	}
	return false;
}

/* Scans cpuinfo's first "flags" line (every CPU lists the same virtualisation flag) for
 * svm or vmx. Plain read(2) into a fixed buffer: this runs in a child after fork. A line
 * longer than the buffer is looked at in pieces, and a flag split between two pieces is
 * missed; flags lines are a few hundred bytes to 2 KiB. */
static bool cpu_has_hw_virt(const char *path)
{
	static char line[CPUINFO_LINE_MAX];
	char buf[4096];
	size_t len = 0;
	bool found = false, done = false, in_flags = false, cont = false;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	while (!done && (n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n && !done; i++) {
			bool eol = buf[i] == '\n';

			if (!eol) {
				line[len++] = buf[i];
				if (len < sizeof(line) - 1)
					continue;
			}
			line[len] = '\0';
			/* cont: this piece goes on a line that did not fit the buffer */
			if (!cont)
				in_flags = !strncmp(line, "flags", 5) && strchr(line, ':');
			if (in_flags) {
				found = has_word(cont ? line : strchr(line, ':') + 1, "svm") ||
					has_word(cont ? line : strchr(line, ':') + 1, "vmx");
				done = found || eol;
			}
			cont = !eol;
			len = 0;
		}
	}
	close(fd);
	return found;
}

void sup_accel_probe(const char *root, struct sup_accel_host *h)
{
	char path[512];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/dev/kvm", root);
	fd = open(path, O_RDWR | O_CLOEXEC);
	h->kvm_err = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/sys/module/kvm_pvm", root);
	h->pvm = !stat(path, &st);
	snprintf(path, sizeof(path), "%s/proc/cpuinfo", root);
	h->hw_virt = cpu_has_hw_virt(path);
}

static void set(struct sup_accel *out, bool kvm, const char *why, const char *detail)
{
	out->accel = kvm ? "kvm" : "tcg";
	out->cpu = kvm ? "host" : "max";
	snprintf(out->reason, sizeof(out->reason), "%s%s", why, detail ? detail : "");
}

int sup_accel_choose(const char *override, const struct sup_accel_host *h,
		     struct sup_accel *out)
{
	if (override && !strcmp(override, "kvm")) {
		set(out, true, SUP_ACCEL_ENV "=kvm", NULL);
		return 0;
	}
	if (override && !strcmp(override, "tcg")) {
		set(out, false, SUP_ACCEL_ENV "=tcg", NULL);
		return 0;
	}
	if (override && *override && strcmp(override, "auto"))
		return -EINVAL;
	if (h->kvm_err == ENOENT)
		set(out, false, "no /dev/kvm", NULL);
	else if (h->kvm_err)
		set(out, false, "cannot open /dev/kvm read-write: ", strerror(h->kvm_err));
	else if (h->pvm)
		set(out, false, "the host's KVM is PVM (kvm_pvm), which boots no unmodified Linux",
		    NULL);
	else if (!h->hw_virt)
		set(out, false, "no svm or vmx in /proc/cpuinfo: KVM is not hardware-assisted",
		    NULL);
	else
		set(out, true, "hardware-assisted KVM (svm/vmx, not PVM)", NULL);
	return 0;
}
