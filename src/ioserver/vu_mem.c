/*
 * The memory table a frontend gives (SET_MEM_TABLE): each region's fd mapped shared,
 * and the two translations vhost-user needs: driver (guest) addresses for descriptors,
 * frontend user addresses for SET_VRING_ADDR. Every lookup is bounds- and overflow-checked.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioserver/ioserver.h"

void vu_mem_clear(struct vu_mem *m)
{
	for (unsigned i = 0; i < m->n; i++)
		munmap(m->r[i].map, m->r[i].map_len);
	memset(m, 0, sizeof(*m));
}

/* Maps one region; the fd must hold it entirely, or touching it would raise SIGBUS. */
static int vu_mem_map(struct vu_mapping *r, const struct vu_region *want, int fd)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = want->mmap_offset & ~(page - 1);
	uint64_t delta = want->mmap_offset - start;
	struct stat st;
	void *p;

	if (!want->size || want->guest_addr + want->size < want->guest_addr ||
	    want->user_addr + want->size < want->user_addr ||
	    want->mmap_offset + want->size < want->mmap_offset)
		return -EINVAL;
	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode) && want->mmap_offset + want->size > (uint64_t)st.st_size)
		return -EINVAL;
	p = mmap(NULL, want->size + delta, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	if (p == MAP_FAILED)
		return -errno;
	r->guest_addr = want->guest_addr;
	r->size = want->size;
	r->user_addr = want->user_addr;
	r->map = p;
	r->map_len = want->size + delta;
	r->host = (uint8_t *)p + delta;
	return 0;
}

int vu_mem_set(struct vu_mem *m, const struct vu_mem_table *t, const int *fds, unsigned nfds)
{
	struct vu_mem next = { 0 };
	int rc = 0;

	if (t->nregions > VU_MAX_REGIONS || t->nregions != nfds)
		return -EINVAL;
	for (unsigned i = 0; i < t->nregions && !rc; i++) {
		rc = vu_mem_map(&next.r[i], &t->regions[i], fds[i]);
		if (!rc)
			next.n++;
	}
	if (rc) {
		vu_mem_clear(&next);
		return rc;
	}
	vu_mem_clear(m);
	*m = next;
	return 0;
}

void *vu_mem_translate(void *opaque, uint64_t addr, uint64_t len, bool write)
{
	const struct vu_mem *m = opaque;

	for (unsigned i = 0; i < m->n; i++) {
		const struct vu_mapping *r = &m->r[i];

		if (addr >= r->guest_addr && len <= r->size && addr - r->guest_addr <= r->size - len)
			return r->host + (addr - r->guest_addr);
	}
	return NULL;
}

int vu_mem_ua_to_ga(const struct vu_mem *m, uint64_t ua, uint64_t len, uint64_t *ga)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct vu_mapping *r = &m->r[i];

		if (ua >= r->user_addr && len <= r->size && ua - r->user_addr <= r->size - len) {
			*ga = r->guest_addr + (ua - r->user_addr);
			return 0;
		}
	}
	return -EFAULT;
}
