/*
 * Shared regions and channel memory given to this partition by the supervisor: each a
 * memfd mapped at a fixed guest-physical address above RAM, read-only where the system
 * file says so (a guest write there is then an isolation violation), and listed in the
 * boot information so the guest can find it.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "bulkhead/platform.h"
#include "monitor/mon.h"

#define REGION_SLOT_BASE 2          /* slots 0 and 1 are low and high RAM */

static const char *const region_kinds[] = {
	[BH_REGION_SHARED] = "shared",
	[BH_REGION_SAMPLING] = "sampling",
	[BH_REGION_QUEUING] = "queuing",
};

static int parse_kind(const char *s, uint8_t *kind)
{
	for (uint8_t k = BH_REGION_SHARED; k <= BH_REGION_QUEUING; k++)
		if (!strcmp(s, region_kinds[k])) {
			*kind = k;
			return 0;
		}
	return -EINVAL;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

/* The optional fields after the first six: "port=NAME" and "source" or "destination",
 * both or neither, each once, only for a channel. */
static int parse_port(char **f, int n, struct mon_region *r)
{
	for (int i = 0; i < n; i++) {
		if (!strncmp(f[i], "port=", 5) && !r->port[0] && f[i][5] &&
		    strlen(f[i] + 5) <= BH_NAME_MAX)
			strcpy(r->port, f[i] + 5);
		else if (!strcmp(f[i], "source") && !r->role)
			r->role = BH_PORT_SOURCE;
		else if (!strcmp(f[i], "destination") && !r->role)
			r->role = BH_PORT_DESTINATION;
		else
			return -EINVAL;
	}
	if (!r->port[0] != !r->role || (r->role && r->kind == BH_REGION_SHARED))
		return -EINVAL;
	return 0;
}

/* "NAME,KIND,GPA,SIZE,FD,rw|ro[,port=PORT,source|destination]" */
int mon_region_parse(const char *arg, struct mon_region *r)
{
	char buf[256], *save = NULL, *f[8];
	uint64_t fd;
	int n = 0;

	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n == 8)
			return -EINVAL;
		f[n++] = t;
	}
	if (n < 6 || strlen(f[0]) > BH_NAME_MAX)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	strcpy(r->name, f[0]);
	if (parse_kind(f[1], &r->kind) || parse_u64(f[2], &r->gpa) || parse_u64(f[3], &r->size) ||
	    parse_u64(f[4], &fd) || fd > INT32_MAX)
		return -EINVAL;
	r->fd = (int)fd;
	if (!strcmp(f[5], "rw"))
		r->writable = true;
	else if (strcmp(f[5], "ro"))
		return -EINVAL;
	return parse_port(f + 6, n - 6, r);
}

/* Regions lie above RAM, 2 MiB aligned, inside what the page tables map, apart. */
static const char *region_check(const struct mon *m, unsigned i)
{
	const struct mon_region *r = &m->opt->regions[i];
	uint64_t ram_end = BH_HIGH_RAM_BASE + m->high_size;
	struct stat st;

	if (!r->size || r->size % 4096 || r->gpa % BH_REGION_ALIGN || r->gpa < BH_REGION_BASE)
		return "needs a non-zero size in 4 KiB pages at a 2 MiB-aligned address from 4 GiB";
	if (r->gpa > BH_GPA_LIMIT || r->size > BH_GPA_LIMIT - r->gpa)
		return "ends beyond 64 GiB";
	if (m->high_size && r->gpa < ram_end)
		return "overlaps high RAM";
	for (unsigned j = 0; j < i; j++) {
		const struct mon_region *o = &m->opt->regions[j];
		if (r->gpa < o->gpa + o->size && o->gpa < r->gpa + r->size)
			return "overlaps another region";
	}
	if (fstat(r->fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < r->size)
		return "fd is not a memfd of at least the region's size";
	return NULL;
}

int mon_regions_map(struct mon *m, const char **why)
{
	struct mon_options *o = (struct mon_options *)m->opt;

	for (unsigned i = 0; i < o->nregions; i++) {
		struct mon_region *r = &o->regions[i];
		struct kvm_userspace_memory_region slot;

		*why = region_check(m, i);
		if (*why)
			return -EINVAL;
		r->host = mmap(NULL, r->size, PROT_READ | (r->writable ? PROT_WRITE : 0), MAP_SHARED,
			       r->fd, 0);
		if (r->host == MAP_FAILED) {
			r->host = NULL;
			*why = "cannot be mapped";
			return -errno;
		}
		slot = (struct kvm_userspace_memory_region){
			.slot = REGION_SLOT_BASE + i,
			.flags = r->writable ? 0 : KVM_MEM_READONLY,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};
		if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			*why = r->writable ? "KVM refused the memory slot"
					   : "KVM refused a read-only memory slot";
			return -errno;
		}
	}
	*why = NULL;
	return 0;
}

uint64_t mon_regions_end(const struct mon *m)
{
	uint64_t end = 0;

	for (unsigned i = 0; i < m->opt->nregions; i++)
		if (m->opt->regions[i].gpa + m->opt->regions[i].size > end)
			end = m->opt->regions[i].gpa + m->opt->regions[i].size;
	return end;
}

void mon_regions_bootinfo(const struct mon *m, struct bh_bootinfo *bi)
{
	bi->nr_regions = m->opt->nregions;
	for (unsigned i = 0; i < m->opt->nregions; i++) {
		const struct mon_region *r = &m->opt->regions[i];
		struct bh_bootinfo_region *b = &bi->regions[i];

		memcpy(b->name, r->name, sizeof(b->name));
		b->kind = r->kind;
		b->writable = r->writable;
		b->gpa = r->gpa;
		b->size = r->size;
		memcpy(bi->ports[i].name, r->port, sizeof(bi->ports[i].name));
		bi->ports[i].role = r->role;
	}
}
