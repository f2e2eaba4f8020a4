/*
 * shmem: proves that a shared region or channel reaches exactly the partitions the
 * system file names. `put NAME WORD` stores WORD at the start of region NAME;
 * `get NAME WORD` waits (up to 5 s) until that word appears there; `poke NAME` writes
 * into NAME, which is an isolation violation when NAME is read-only for this partition.
 */
#include <inmate/printf.h>
#include <inmate/runtime.h>
#include <inmate/string.h>
#include <inmate/tsc.h>

#define SHMEM_WAIT_MS 5000

static volatile uint64_t *region(const char *name)
{
	const struct bh_bootinfo *bi = bh_bootinfo();

	for (uint32_t i = 0; i < bi->nr_regions; i++)
		if (!strcmp(bi->regions[i].name, name))
			return (volatile uint64_t *)bi->regions[i].gpa;
	printf("shmem: no region '%s' in this partition\n", name);
	return 0;
}

int main(int argc, char **argv)
{
	volatile uint64_t *word;
	uint64_t value, start;

	if (argc < 3) {
		printf("usage: shmem put NAME WORD | get NAME WORD | poke NAME\n");
		return 2;
	}
	word = region(argv[2]);
	if (!word)
		return 3;
	value = argc > 3 ? strtoul(argv[3], 0, 0) : 0;
	if (!strcmp(argv[1], "put")) {
		*word = value;
		printf("shmem: put 0x%lx into '%s'\n", value, argv[2]);
		return 0;
	}
	if (!strcmp(argv[1], "get")) {
		start = tsc_now();
		while (*word != value)
			if (tsc_to_us(tsc_now() - start) > SHMEM_WAIT_MS * 1000ULL) {
				printf("shmem: '%s' still holds 0x%lx, not 0x%lx\n", argv[2], *word, value);
				return 1;
			}
		printf("shmem: got 0x%lx from '%s'\n", value, argv[2]);
		return 0;
	}
	if (!strcmp(argv[1], "poke")) {
		printf("shmem: writing into '%s'\n", argv[2]);
		*word = 0xbad;
		printf("shmem: the write into '%s' was allowed\n", argv[2]);
		return 0;
	}
	printf("shmem: unknown command '%s'\n", argv[1]);
	return 2;
}
