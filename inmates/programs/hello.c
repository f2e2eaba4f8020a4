/*
 * hello: the smallest inmate. Greets by partition name, reports its memory and its
 * arguments, and exits 0. The first image a new monitor should be able to run. With
 * lines=N as an argument it also prints N numbered lines: console volume for tests.
 */
#include <inmate/printf.h>
#include <inmate/runtime.h>
#include <inmate/string.h>

int main(int argc, char **argv)
{
	const struct bh_bootinfo *bi = bh_bootinfo();

	if (!bh_bootinfo_valid())
		printf("hello: warning: no valid boot information (bad magic)\n");
	printf("Hello from partition '%s' (id %u, %u vCPU%s)\n", bi->name, bi->partition_id,
	       bi->nr_vcpus, bi->nr_vcpus == 1 ? "" : "s");
	printf("hello: memory %lu MiB (%lu bytes)\n", bi->mem_size >> 20, bi->mem_size);
	printf("hello: %d argument%s\n", argc - 1, argc == 2 ? "" : "s");
	for (int i = 1; i < argc; i++)
		printf("hello:   argv[%d] = \"%s\"\n", i, argv[i]);
	for (uint32_t i = 0; i < bi->nr_regions; i++)
		printf("hello: region '%s' at 0x%lx, %lu KiB%s%s%s%s\n", bi->regions[i].name,
		       bi->regions[i].gpa, bi->regions[i].size >> 10,
		       bi->regions[i].writable ? "" : " (read-only)",
		       bi->ports[i].role ? ", port '" : "", bi->ports[i].name,
		       bi->ports[i].role == BH_PORT_SOURCE ? "' (source)" :
		       bi->ports[i].role == BH_PORT_DESTINATION ? "' (destination)" : "");
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "lines=", 6)) {
			unsigned long n = strtoul(argv[i] + 6, NULL, 10);

			for (unsigned long l = 1; l <= n; l++)
				printf("hello: line %lu of %lu\n", l, n);
		}
	printf("hello: goodbye\n");
	return 0;
}
