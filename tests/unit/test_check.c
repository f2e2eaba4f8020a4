/*
 * Unit tests for the compile passes behind `bulkhead check` (resolve.c, defaults.c,
 * check_*.c, layout.c, print.c), through cfg_load_text on a fake host of CPUs {0, 1}
 * and 8 GiB: one test per check the system file must pass, with its message and
 * position, then the derived facts of a sound system and its JSON.
 */
#include <elf.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/system.h"
#include "config/ytree.h"

/* The temporary directory the system files live in (relative paths resolve here):
 * image.elf (a minimal ELF64 x86-64 executable), big.elf (the same, 3M long),
 * notelf.bin, disk.img (1M), bzImage, initrd.img. */
static char dir[64];
static char sysfile[128];
static struct bh_host host;

static void write_file(const char *name, const void *data, size_t len, off_t size)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	if (size)
		assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static void write_elf(const char *name, off_t size)
{
	struct {
		Elf64_Ehdr eh;
		Elf64_Phdr ph;
		uint8_t code[8];
	} img;

	memset(&img, 0, sizeof(img));
	memcpy(img.eh.e_ident, ELFMAG, SELFMAG);
	img.eh.e_ident[EI_CLASS] = ELFCLASS64;
	img.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	img.eh.e_ident[EI_VERSION] = EV_CURRENT;
	img.eh.e_type = ET_EXEC;
	img.eh.e_machine = EM_X86_64;
	img.eh.e_version = EV_CURRENT;
	img.eh.e_entry = 0x100000 + offsetof(__typeof__(img), code);
	img.eh.e_phoff = sizeof(Elf64_Ehdr);
	img.eh.e_ehsize = sizeof(Elf64_Ehdr);
	img.eh.e_phentsize = sizeof(Elf64_Phdr);
	img.eh.e_phnum = 1;
	img.ph.p_type = PT_LOAD;
	img.ph.p_flags = PF_R | PF_X;
	img.ph.p_vaddr = img.ph.p_paddr = 0x100000;
	img.ph.p_filesz = img.ph.p_memsz = sizeof(img);
	img.ph.p_align = 0x1000;
	memset(img.code, 0xf4, sizeof(img.code));       /* hlt */
	write_file(name, &img, sizeof(img), size);
}

static int setup(void **state)
{
	static const char script[] = "#!/bin/sh\n# a script, long enough for an ELF header: not an image\n";

	strcpy(dir, "/tmp/bh-test-check-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sysfile, sizeof(sysfile), "%s/system.yaml", dir);
	write_elf("image.elf", 0);
	write_elf("big.elf", 3 << 20);
	write_file("notelf.bin", script, sizeof(script) - 1, 0);
	write_file("disk.img", "", 0, 1 << 20);
	write_file("bzImage", "kernel", 6, 0);
	write_file("initrd.img", "initrd", 6, 0);
	memset(&host, 0, sizeof(host));
	bh_cpuset_set(&host.online, 0);
	bh_cpuset_set(&host.online, 1);
	host.ncpus = 2;
	host.mem_bytes = 8ULL << 30;
	return 0;
}

static int teardown(void **state)
{
	static const char *const files[] = { "image.elf", "big.elf", "notelf.bin", "disk.img",
					     "bzImage", "initrd.img" };
	char path[160];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	return rmdir(dir);
}

static struct bh_system *load(const char *yaml, struct diag *d)
{
	diag_init(d, sysfile);
	return cfg_load_text(sysfile, yaml, strlen(yaml), &host, d);
}

struct want {
	unsigned line, col;     /* col 0: any column */
	const char *text;
};

static bool matches(const struct diag_item *it, const struct want *w)
{
	return it->severity == DIAG_ERROR && it->loc.line == w->line &&
	       (!w->col || it->loc.col == w->col) && strstr(it->msg, w->text);
}

/* Loads yaml and asserts that its errors are exactly the wanted ones (in any order). */
static void expect_errors(const char *yaml, const struct want *w, size_t n)
{
	struct diag d;
	struct bh_system *sys = load(yaml, &d);

	for (size_t i = 0; i < n; i++) {
		bool found = false;
		for (size_t j = 0; j < d.n && !found; j++)
			found = matches(&d.items[j], &w[i]);
		if (!found) {
			for (size_t j = 0; j < d.n; j++)
				print_message("  got %u:%u: %s\n", d.items[j].loc.line, d.items[j].loc.col,
					      d.items[j].msg);
			fail_msg("no error at %u:%u containing '%s'", w[i].line, w[i].col, w[i].text);
		}
	}
	if (d.errors != n) {
		for (size_t j = 0; j < d.n; j++)
			print_message("  got %u:%u: %s\n", d.items[j].loc.line, d.items[j].loc.col,
				      d.items[j].msg);
		fail_msg("%zu errors, expected %zu", d.errors, n);
	}
	cfg_free(sys);
	diag_free(&d);
}

#define EXPECT(yaml, ...) do { \
	const struct want w_[] = { __VA_ARGS__ }; \
	expect_errors(yaml, w_, sizeof(w_) / sizeof(w_[0])); \
} while (0)

/* Loads yaml, asserts it is sound (warnings allowed) and returns the system. */
static struct bh_system *sound(const char *yaml, struct diag *d)
{
	struct bh_system *sys = load(yaml, d);

	for (size_t j = 0; j < d->n; j++)
		if (d->items[j].severity == DIAG_ERROR)
			fail_msg("unexpected error %u:%u: %s", d->items[j].loc.line,
				 d->items[j].loc.col, d->items[j].msg);
	assert_non_null(sys);
	return sys;
}

#define SYS   "system: {name: t, cpus: [0, 1]}\n"
#define PA    "  - {name: a, image: image.elf, cpus: [0], memory: 16M}\n"
#define PB    "  - {name: b, image: image.elf, cpus: [1], memory: 16M}\n"
#define PARTS "partitions:\n" PA PB
#define CYCLIC(frame) "system:\n  name: t\n  scheduling: cyclic\n  plan:\n" \
	"    major_frame: " frame "\n    slots:\n"

/* ---- the YAML layer ------------------------------------------------------------------ */

static void yaml_syntax_error(void **state)
{
	struct diag d;

	assert_null(load("system: {name: t\npartitions: []\n", &d));
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.items[0].msg, "YAML syntax error"));
	assert_int_equal(d.items[0].loc.line, 2);
	diag_free(&d);
}

static void hostile_input_bounded(void **state)
{
	struct diag d;
	size_t big = YTREE_MAX_BYTES + 1;
	char *text = malloc(big + 1);

	assert_non_null(text);
	memset(text, '#', big);
	text[big] = '\0';
	diag_init(&d, sysfile);
	assert_null(cfg_load_text(sysfile, text, big, &host, &d));
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.items[0].msg, "larger than 1048576 bytes"));
	diag_free(&d);
	free(text);

	assert_null(load("system: {name: t}\npartitions: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]"
			 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", &d));
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.items[0].msg, "nesting deeper than 32 levels"));
	diag_free(&d);

	assert_null(load("system:\n  name: caf\xe9!\n", &d));
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.items[0].loc.line, 2);
	assert_int_equal(d.items[0].loc.col, 12);
	assert_non_null(strstr(d.items[0].msg, "not valid UTF-8 text"));
	diag_free(&d);
}

/* ---- the schema ---------------------------------------------------------------------- */

static void unknown_key_suggestion(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M, engin: kvm}\n",
	       { 3, 57, "unknown key 'engin' in partition; did you mean 'engine'?" });
	EXPECT(SYS PARTS "networx: []\n", { 5, 1, "did you mean 'networks'?" });
}

static void duplicate_key(void **state)
{
	EXPECT("system:\n  name: t\n  name: u\n" PARTS,
	       { 3, 3, "duplicate key 'name' (first given at line 2)" });
}

static void wrong_types(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: big}\n"
	       "  - {name: b, image: [image.elf], cpus: [1], memory: 16M}\n",
	       { 3, 52, "'memory' must be a size like 4K, 64M or 1G (or bytes), not 'big'" },
	       { 4, 22, "'image' must be a path, not a list" },
	       { 4, 5, "partition 'b' needs an 'image' (bare-metal ELF) or a 'kernel'" });
	EXPECT(SYS "partitions: {a: 1}\n", { 2, 13, "'partitions' must be a list of partition entries" });
	EXPECT("system: [t]\n" PARTS,
	       { 1, 9, "expected a mapping of keys to values for the system section, found a list" });
}

/* A value the schema refused is reported once, not again by the checks of its value. */
static void refused_values_reported_once(void **state)
{
	EXPECT(SYS "channels:\n"
	       "  - {name: c, type: sampling, max_message: 64, refresh: 10,\n"
	       "     source: {partition: a, port: O}, destinations: [{partition: b, port: I}]}\n"
	       "  - {name: q, type: queuing, max_message: big, depth: lots,\n"
	       "     source: {partition: a, port: O2}, destinations: [{partition: b, port: I2}]}\n"
	       PARTS,
	       { 3, 57, "'refresh' must be a time with a unit" },
	       { 5, 43, "'max_message' must be a size" },
	       { 5, 55, "'depth' must be a whole number" });
	EXPECT(SYS "io_servers: [{name: n, class: net}]\nnetworks: [{name: l, server: n}]\n"
	       "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: net, network: l, mac: \"zz\"}, {type: nic, server: n}]}\n",
	       { 6, 45, "'mac' value 'zz' is not a MAC address" },
	       { 6, 59, "'type' must be one of console | rng | blk | net, not 'nic'" });
}

static void missing_required_keys(void **state)
{
	EXPECT(SYS "partitions:\n  - {image: image.elf, cpus: [0], memory: 16M}\n",
	       { 3, 5, "partition is missing the required key 'name'" });
	EXPECT(PARTS, { 1, 1, "system file is missing the required key 'system'" });
	EXPECT("", { 1, 1, "missing the required key 'system'" },
	       { 1, 1, "missing the required key 'partitions'" });
	EXPECT(CYCLIC("10ms") "      - {partition: a, duration: 10ms}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 7, 9, "plan slot is missing the required key 'start'" });
}

/* An object without its name is reported once; later messages name it '?'. */
static void nameless_objects(void **state)
{
	struct diag d;
	struct bh_system *sys = load(SYS "shared_regions: [{size: 3K, peers: [a, b]}]\n" PARTS, &d);

	assert_int_equal(d.errors, 2);
	for (size_t i = 0; i < d.n; i++)
		assert_null(strstr(d.items[i].msg, "(null)"));
	assert_string_equal(d.items[1].msg,
			    "shared region '?': size 3K is not a positive multiple of 4K");
	cfg_free(sys);
	diag_free(&d);
}

static void bad_names(void **state)
{
	EXPECT("system: {name: T_1, cpus: [0, 1]}\n" PARTS,
	       { 1, 16, "'name' value 'T_1' is not a valid name" });
	EXPECT(SYS "channels:\n  - {name: c, type: queuing, max_message: 8, depth: 1,\n"
	       "     source: {partition: a, port: \"A:B\"}, destinations: [{partition: b, port: I}]}\n"
	       PARTS, { 4, 35, "'port' value 'A:B' is not a valid port name" });
}

static void duplicate_names_per_kind(void **state)
{
	EXPECT(SYS "partitions:\n" PA "  - {name: a, image: image.elf, cpus: [1], memory: 16M}\n",
	       { 4, 12, "partition name 'a' is already used (line 3)" });
	EXPECT(SYS "io_servers:\n  - {name: s, class: rng}\n  - {name: s, class: rng}\n"
	       "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: rng, server: s}]}\n" PB,
	       { 4, 12, "I/O server name 's' is already used (line 3)" });
	EXPECT(SYS "shared_regions:\n  - {name: r, size: 4K, peers: [a, b]}\n"
	       "  - {name: r, size: 4K, peers: [a, b]}\n" PARTS,
	       { 4, 12, "shared region name 'r' is already used" });
	/* Names are per kind: a region may share a partition's name. */
	EXPECT(SYS "shared_regions:\n  - {name: a, size: 4K, peers: [a, b]}\n" PARTS
	       "channels:\n  - {name: a, type: queuing, max_message: 8, depth: 1,\n"
	       "     source: {partition: a, port: O}, destinations: [{partition: b, port: I}]}\n"
	       "  - {name: a, type: queuing, max_message: 8, depth: 1,\n"
	       "     source: {partition: a, port: O2}, destinations: [{partition: b, port: I2}]}\n",
	       { 10, 12, "channel name 'a' is already used (line 8)" });
}

/* ---- references ---------------------------------------------------------------------- */

static void dangling_server(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: console, server: con}]}\n",
	       { 4, 40, "console device names I/O server 'con', which is not defined" });
	EXPECT(SYS "networks: [{name: l, server: sw}]\n"
	       "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: net, network: l}]}\n",
	       { 2, 30, "network 'l' names I/O server 'sw', which is not defined" });
}

static void dangling_disk(void **state)
{
	EXPECT(SYS "io_servers: [{name: s, class: blk, disks: [{name: d, file: disk.img}]}]\n"
	       "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: blk, server: s, disk: e}]}\n",
	       { 5, 45, "blk device names disk 'e', which I/O server 's' does not have" });
}

static void dangling_network(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: net, network: lan}]}\n",
	       { 4, 37, "net device names network 'lan', which is not defined" });
}

static void dangling_region_peer(void **state)
{
	EXPECT(SYS "shared_regions: [{name: r, size: 4K, peers: [a, c]}]\n" PARTS,
	       { 2, 49, "shared region peer names partition 'c', which is not defined" });
}

static void dangling_plan_partition(void **state)
{
	EXPECT(CYCLIC("10ms") "      - {partition: a, start: 0ms, duration: 5ms}\n"
	       "      - {partition: x, start: 5ms, duration: 5ms}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 8, 21, "plan slot names partition 'x', which is not defined" });
}

static void dangling_channel_partition(void **state)
{
	EXPECT(SYS "channels:\n  - {name: c, type: queuing, max_message: 8, depth: 1,\n"
	       "     source: {partition: x, port: O}, destinations: [{partition: y, port: I}]}\n"
	       PARTS,
	       { 4, 26, "channel source names partition 'x', which is not defined" },
	       { 4, 66, "channel destination names partition 'y', which is not defined" });
}

static void device_class_mismatch(void **state)
{
	EXPECT(SYS "io_servers: [{name: s, class: rng}]\n"
	       "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: rng, server: s}, {type: console, server: s}]}\n",
	       { 5, 64, "console device cannot use I/O server 's': it is of class 'rng'" });
	EXPECT(SYS "io_servers: [{name: s, class: blk}]\nnetworks: [{name: l, server: s}]\n"
	       PARTS, { 3, 30, "network 'l' needs a net I/O server; 's' is of class 'blk'" });
}

/* ---- CPUs, memory, scheduling --------------------------------------------------------- */

static void memory_not_2m(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 3M}\n"
	       "  - {name: b, image: image.elf, cpus: [1], memory: 0}\n",
	       { 3, 52, "partition 'a': memory 3M is not a positive multiple of 2M" },
	       { 4, 52, "partition 'b': memory 0 is not a positive multiple of 2M" });
}

static void memory_above_host(void **state)
{
	/* 6G + 2G + 4K of region: just over the fake host's 8G. */
	EXPECT(SYS "shared_regions: [{name: r, size: 4K, peers: [a, b]}]\n"
	       "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 6G}\n"
	       "  - {name: b, image: image.elf, cpus: [1], memory: 2G}\n",
	       { 1, 9, "need 8388612K of memory; this host has 8G" });
	/* Channels count as well. */
	EXPECT(SYS "channels:\n  - {name: c, type: queuing, max_message: 1M, depth: 1,\n"
	       "     source: {partition: a, port: O}, destinations: [{partition: b, port: I}]}\n"
	       "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 6G}\n"
	       "  - {name: b, image: image.elf, cpus: [1], memory: 2G}\n",
	       { 1, 9, "partitions, shared regions and channels need" });
	/* Exactly the host's memory is fine; 2M more is not. */
	{
		struct diag d;
		cfg_free(sound(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 6G}\n"
			       "  - {name: b, image: image.elf, cpus: [1], memory: 2G}\n", &d));
		diag_free(&d);
	}
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 6G}\n"
	       "  - {name: b, image: image.elf, cpus: [1], memory: 2050M}\n",
	       { 1, 9, "need 8194M of memory" });
}

static void cpus_missing_on_host(void **state)
{
	EXPECT("system: {name: t, cpus: [0, 1, 2]}\n" PARTS,
	       { 1, 25, "CPU 2 does not exist on this host (online CPUs: 0-1)" });
	EXPECT("system: {name: t}\npartitions:\n  - {name: a, image: image.elf, cpus: [0, 7], memory: 16M}\n",
	       { 3, 39, "partition 'a': CPU 7 does not exist on this host (online CPUs: 0-1)" });
	EXPECT("system: {name: t, cpus: [1]}\n" PARTS,
	       { 3, 39, "partition 'a': CPU 0 is not among the system's 'cpus'" });
	EXPECT("system: {name: t, cpus: []}\npartitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M}\n",
	       { 1, 25, "'cpus' lists no CPU" }, { 3, 39, "CPU 0 is not among the system's 'cpus'" });
}

static void dedicated_cpu_shared(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0, 1], memory: 16M}\n" PB,
	       { 4, 39, "CPU 1 of partition 'b' is already given to partition 'a'" });
}

static void dedicated_no_cpu(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n"
	       "  - {name: b, image: image.elf, cpus: [], memory: 16M}\n",
	       { 3, 5, "partition 'a' has no CPU: dedicated scheduling needs 'cpus'" },
	       { 4, 39, "partition 'b' has no CPU" });
	EXPECT("system:\n  name: t\n  plan: {major_frame: 1ms, slots: []}\n" PARTS,
	       { 3, 9, "'plan' is only used with 'scheduling: cyclic'" });
}

static void cyclic_no_plan(void **state)
{
	EXPECT("system: {name: t, scheduling: cyclic}\npartitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 1, 31, "'scheduling: cyclic' needs a 'plan'" });
}

static void slots_outside_frame(void **state)
{
	EXPECT(CYCLIC("10ms") "      - {partition: a, start: 0ms, duration: 10ms}\n"
	       "      - {partition: a, start: 10ms, duration: 1ms}\n"
	       "      - {partition: a, start: 20ms, duration: 1ms}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 8, 9, "slot of partition 'a' (10ms + 1ms) ends outside the major frame of 10ms" },
	       { 9, 9, "(20ms + 1ms) ends outside" });
	/* Huge values do not wrap around into the frame. */
	EXPECT(CYCLIC("10ms") "      - {partition: a, start: 1ms, duration: 9223372036s}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 7, 9, "ends outside the major frame" });
	EXPECT(CYCLIC("0ms") "      - {partition: a, start: 0ms, duration: 1ms}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 5, 18, "'major_frame' must be longer than 0" });
}

static void slots_overlap(void **state)
{
	EXPECT(CYCLIC("10ms") "      - {partition: a, start: 0ms, duration: 6ms}\n"
	       "      - {partition: a, start: 6ms, duration: 2ms}\n"
	       "      - {partition: a, start: 1ms, duration: 1ms}\n"
	       "      - {partition: a, start: 7ms, duration: 3ms}\n"
	       "      - {partition: a, start: 0ms, duration: 1ms}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 9, 9, "slot of partition 'a' at 1ms overlaps the slot at line 7" },
	       { 10, 9, "at 7ms overlaps the slot at line 8" },
	       { 11, 9, "at 0ns overlaps the slot at line 7" });
}

static void partition_never_scheduled(void **state)
{
	EXPECT(CYCLIC("10ms") "      - {partition: a, start: 0ms, duration: 5ms}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n"
	       "  - {name: b, image: image.elf, memory: 16M}\n",
	       { 10, 12, "partition 'b' is never scheduled: no slot of the plan names it" });
	EXPECT(CYCLIC("10ms") "      - {partition: a, start: 0ms, duration: 5ms}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M, cpus: []}\n",
	       { 9, 52, "partition 'a' has no CPU: 'cpus' must list at least one" });
}

static void slot_too_short(void **state)
{
	EXPECT(CYCLIC("10ms") "      - {partition: a, start: 0ms, duration: 99999ns}\n"
	       "      - {partition: a, start: 1ms, duration: 100us}\n"
	       "partitions:\n  - {name: a, image: image.elf, memory: 16M}\n",
	       { 7, 46, "slot of partition 'a' lasts 99999ns; slots must last at least 100us" });
}

/* ---- I/O ------------------------------------------------------------------------------ */

#define BLK "io_servers: [{name: s, class: blk, disks: [{name: d, file: disk.img}]}]\n"
#define BLKDEV(dev) "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n" \
	"     devices: [" dev "]}\n"

static void slice_outside_disk(void **state)
{
	EXPECT(SYS BLK BLKDEV("{type: blk, server: s, disk: d, offset: 768K, size: 512K}"),
	       { 5, 56, "slice 768K + 512K lies outside disk 'd' (1M)" });
	EXPECT(SYS BLK BLKDEV("{type: blk, server: s, disk: d, size: 2M}"),
	       { 5, 16, "slice 0 + 2M lies outside disk 'd' (1M)" });
	EXPECT(SYS BLK BLKDEV("{type: blk, server: s, disk: d, offset: 1M}"),
	       { 5, 16, "the slice of disk 'd' is empty" });
	EXPECT(SYS BLK BLKDEV("{type: blk, server: s, disk: d, offset: 1000}"),
	       { 5, 56, "offset 1000 is not a multiple of 512 bytes" });
}

static void writable_slices_overlap(void **state)
{
	EXPECT(SYS BLK "partitions:\n"
	       "  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     devices: [{type: blk, server: s, disk: d, size: 512K}]}\n"
	       "  - {name: b, image: image.elf, cpus: [1], memory: 16M,\n"
	       "     devices: [{type: blk, server: s, disk: d, offset: 511K}, "
	       "{type: blk, server: s, disk: d, readonly: true}]}\n",
	       { 7, 16, "writable slice of disk 'd' for partition 'b' overlaps the writable slice "
		 "of partition 'a' (line 5)" });
	/* Adjacent writable slices and overlapping read-only ones are fine. */
	EXPECT(SYS BLK BLKDEV("{type: blk, server: s, disk: d, size: 512K}, "
			      "{type: blk, server: s, disk: d, offset: 512K}, "
			      "{type: blk, server: s, disk: d, readonly: true}, "
			      "{type: blk, server: s, disk: dd}"),
	       { 5, 0, "blk device names disk 'dd'" });
}

static void disk_missing_without_create(void **state)
{
	EXPECT(SYS "io_servers: [{name: s, class: blk, disks: [{name: d, file: none.img, size: 1M}]}]\n"
	       BLKDEV("{type: blk, server: s, disk: d}"),
	       { 2, 60, "none.img' does not exist (add 'create: true' to create it)" });
	EXPECT(SYS "io_servers: [{name: s, class: blk, disks: [{name: d, file: none.img, create: true}]}]\n"
	       BLKDEV("{type: blk, server: s, disk: d}"),
	       { 2, 44, "disk 'd' needs a 'size' to create" });
	EXPECT(SYS "io_servers: [{name: s, class: blk, disks: [{name: d, file: disk.img, size: 2M}]}]\n"
	       BLKDEV("{type: blk, server: s, disk: d}"),
	       { 2, 76, "holds 1048576 bytes, less than its size 2M" });
}

#define NET "io_servers: [{name: s, class: net}]\nnetworks: [{name: l, server: s}]\n"
#define NETDEV(dev) "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n" \
	"     devices: [" dev "]}\n"

static void mac_invalid(void **state)
{
	EXPECT(SYS NET NETDEV("{type: net, network: l, mac: \"52:54:00:00:01\"}"),
	       { 6, 45, "'mac' value '52:54:00:00:01' is not a MAC address" });
	EXPECT(SYS NET NETDEV("{type: net, network: l, mac: \"00:00:00:00:00:00\"}"),
	       { 6, 45, "MAC 00:00:00:00:00:00 is not a valid address" });
}

static void mac_multicast(void **state)
{
	EXPECT(SYS NET NETDEV("{type: net, network: l, mac: \"33:33:00:00:00:01\"}"),
	       { 6, 45, "MAC 33:33:00:00:00:01 is a multicast address" });
}

static void mac_duplicate(void **state)
{
	EXPECT(SYS NET NETDEV("{type: net, network: l, mac: \"52:54:00:00:00:01\"}, "
			      "{type: net, network: l, mac: \"52:54:00:00:00:01\"}"),
	       { 6, 96, "has the MAC of a net device of partition 'a' (line 6)" });
	/* A given MAC equal to a derived one (partition 0, device 1). */
	EXPECT(SYS NET NETDEV("{type: net, network: l, mac: \"02:62:68:74:00:01\"}, "
			      "{type: net, network: l}"),
	       { 6, 67, "has the MAC of a net device of partition 'a'" });
}

static void rate_not_positive(void **state)
{
	EXPECT(SYS NET NETDEV("{type: net, network: l, rate: {bytes_per_sec: 0, burst: 1517}}"),
	       { 6, 62, "'bytes_per_sec' must be greater than 0" },
	       { 6, 72, "'burst' 1517 cannot hold one Ethernet frame" });
}

static void device_keys_by_type(void **state)
{
	EXPECT(SYS NET NETDEV("{type: net, network: l, server: s, disk: d, readonly: false}"),
	       { 6, 48, "net devices name a 'network', not a 'server'" },
	       { 6, 57, "'disk' applies to blk devices, not net" },
	       { 6, 70, "'readonly' applies to blk devices, not net" });
	EXPECT(SYS "io_servers: [{name: s, class: rng, uplink: {tap: x}, disks: []}]\n"
	       NETDEV("{type: rng, server: s}"),
	       { 2, 36, "unknown key 'uplink' in I/O server" },
	       { 2, 61, "'disks' applies to blk servers" });
}

/* ---- regions and channels --------------------------------------------------------------- */

static void region_one_peer(void **state)
{
	EXPECT(SYS "shared_regions: [{name: r, size: 4K, peers: [a, a]}]\n" PARTS,
	       { 2, 45, "shared region 'r' has 1 distinct peer; it needs at least two" });
	EXPECT(SYS "shared_regions: [{name: r, size: 4K, peers: []}]\n" PARTS,
	       { 2, 45, "has 0 distinct peers" });
}

#define CHAN(type, extra, src, dst) "channels:\n  - {name: c, type: " type ", max_message: 64, " \
	extra ",\n     source: " src ", destinations: [" dst "]}\n"

static void channel_same_partition(void **state)
{
	EXPECT(SYS CHAN("sampling", "refresh: 1ms", "{partition: a, port: O}",
			"{partition: a, port: I}") PARTS,
	       { 4, 66, "channel 'c' connects partition 'a' to itself" });
}

static void port_names_reused(void **state)
{
	EXPECT(SYS CHAN("sampling", "refresh: 1ms", "{partition: a, port: P}",
			"{partition: b, port: P}, {partition: b, port: P}") PARTS,
	       { 4, 100, "partition 'b' already has a port named 'P' (line 4)" });
}

static void queuing_destinations_and_depth(void **state)
{
	EXPECT(SYS CHAN("queuing", "depth: 2", "{partition: a, port: O}",
			"{partition: b, port: I}, {partition: b, port: J}") PARTS,
	       { 4, 53, "queuing channel 'c' has 2 destinations; a queuing channel has exactly one" });
	EXPECT(SYS CHAN("queuing", "depth: 0", "{partition: a, port: O}", "{partition: b, port: I}")
	       PARTS, { 3, 54, "queuing channel 'c': depth 0 must be between 1 and 4096" });
	EXPECT(SYS CHAN("queuing", "depth: 4097", "{partition: a, port: O}", "{partition: b, port: I}")
	       PARTS, { 3, 54, "depth 4097 must be between 1 and 4096" });
	EXPECT(SYS CHAN("queuing", "refresh: 1ms", "{partition: a, port: O}",
			"{partition: b, port: I}") PARTS,
	       { 3, 5, "queuing channel 'c' needs a 'depth'" },
	       { 3, 56, "'refresh' applies to sampling channels; 'c' is queuing" });
}

static void sampling_needs_refresh(void **state)
{
	EXPECT(SYS CHAN("sampling", "depth: 1", "{partition: a, port: O}", "{partition: b, port: I}")
	       PARTS, { 3, 5, "sampling channel 'c' needs a 'refresh' period" },
	       { 3, 55, "'depth' applies to queuing channels" });
	EXPECT(SYS CHAN("sampling", "refresh: 0ms", "{partition: a, port: O}", "{partition: b, port: I}")
	       PARTS, { 3, 57, "sampling channel 'c': refresh must be longer than 0" });
}

/* ---- images ----------------------------------------------------------------------------- */

static void qemu_needs_kernel(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, engine: qemu, cpus: [0], memory: 16M}\n",
	       { 3, 41, "partition 'a': 'engine: qemu' runs Linux and needs a 'kernel'" });
}

static void window_with_qemu(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, kernel: bzImage, engine: qemu, isolation: window, "
	       "cpus: [0], memory: 16M}\n",
	       { 3, 57, "partition 'a': 'isolation: window' needs bulkhead's own monitor" });
}

static void image_missing_or_not_elf(void **state)
{
	char want[256];

	snprintf(want, sizeof(want), "image '%s/nothing.elf' does not exist", dir);
	EXPECT(SYS "partitions:\n  - {name: a, image: nothing.elf, cpus: [0], memory: 16M}\n",
	       { 3, 22, want });
	EXPECT(SYS "partitions:\n  - {name: a, image: notelf.bin, cpus: [0], memory: 16M}\n",
	       { 3, 22, "is not an ELF64 x86-64 executable: not an ELF file (bad magic)" });
	EXPECT(SYS "partitions:\n  - {name: a, image: big.elf, cpus: [0], memory: 2M}\n",
	       { 3, 22, "image '" });
	EXPECT(SYS "partitions:\n  - {name: a, image: /, cpus: [0], memory: 2M}\n",
	       { 3, 22, "image '/' is not a regular file" });
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, kernel: bzImage, cpus: [0], memory: 2M}\n",
	       { 3, 41, "partition 'a' has both 'image' and 'kernel'; give exactly one" });
}

static void kernel_and_initrd_missing(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, kernel: vmlinuz, initrd: initrd.img, engine: qemu,"
	       " cpus: [0], memory: 16M}\n", { 3, 23, "kernel '" });
	EXPECT(SYS "partitions:\n  - {name: a, kernel: bzImage, initrd: none.img, engine: qemu,"
	       " cpus: [0], memory: 16M}\n", { 3, 40, "none.img' does not exist" });
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, initrd: initrd.img, cpus: [0], memory: 16M}\n",
	       { 3, 41, "'initrd' is only used with a 'kernel'" });
}

static void health_rules(void **state)
{
	EXPECT(SYS "partitions:\n  - {name: a, image: image.elf, cpus: [0], memory: 16M,\n"
	       "     health: {watchdog: 999us}}\n",
	       { 4, 25, "partition 'a': watchdog period must be at least 1ms" });
}

/* ---- a sound system and its derived facts -------------------------------------------------- */

static const char facts_yaml[] =
	"system: {name: facts, cpus: [0, 1]}\n"
	"io_servers:\n"
	"  - {name: con, class: console}\n"
	"  - {name: blk, class: blk, disks: [{name: d, file: disk.img}]}\n"
	"  - {name: net, class: net}\n"
	"networks:\n"
	"  - {name: lan, server: net}\n"
	"shared_regions:\n"
	"  - {name: r, size: 1M, peers: [a, b]}\n"
	"channels:\n"
	"  - {name: s, type: sampling, max_message: 64, refresh: 1ms,\n"
	"     source: {partition: a, port: O}, destinations: [{partition: b, port: I}]}\n"
	"  - {name: q, type: queuing, max_message: 100, depth: 8,\n"
	"     source: {partition: a, port: Q}, destinations: [{partition: b, port: Q}]}\n"
	"partitions:\n"
	"  - name: a\n"
	"    image: image.elf\n"
	"    cpus: [0]\n"
	"    memory: 16M\n"
	"    devices:\n"
	"      - {type: console, server: con}\n"
	"      - {type: blk, server: blk, disk: d, offset: 256K}\n"
	"      - {type: net, network: lan, rate: {bytes_per_sec: 1M}}\n"
	"      - {type: net, network: lan, mac: \"52:54:00:00:00:09\"}\n"
	"  - name: b\n"
	"    kernel: bzImage\n"
	"    engine: qemu\n"
	"    cpus: [1]\n"
	"    memory: 4G\n"
	"    health: {on_fault: restart, max_restarts: 4294967295}\n"
	"    devices: [{type: net, network: lan}]\n";

static void assert_map(const struct bh_map_entry *e, enum bh_map_kind kind, const char *name,
		       uint64_t gpa, uint64_t size, bool writable)
{
	assert_int_equal(e->kind, kind);
	assert_string_equal(e->name, name);
	assert_int_equal(e->gpa, gpa);
	assert_int_equal(e->size, size);
	assert_int_equal(e->writable, writable);
}

static void memory_maps(void **state)
{
	struct diag d;
	struct bh_system *sys = sound(facts_yaml, &d);
	const struct bh_partition *a = &sys->partitions[0], *b = &sys->partitions[1];

	/* RAM at 0; regions, then channels, from 4 GiB at 2 MiB alignment. */
	assert_int_equal(a->nmemmap, 4);
	assert_map(&a->memmap[0], BH_MAP_RAM, "ram", 0, 16 << 20, true);
	assert_map(&a->memmap[1], BH_MAP_SHARED, "r", 0x100000000, 1 << 20, true);
	assert_map(&a->memmap[2], BH_MAP_SAMPLING, "s", 0x100200000, 4096, true);
	assert_map(&a->memmap[3], BH_MAP_QUEUING, "q", 0x100400000, 4096, true);
	/* 4G of RAM: 3G below the MMIO hole, 1G from 4 GiB; regions after it. A sampling
	 * destination reads only; a queuing destination writes (it moves the head). */
	assert_int_equal(b->nmemmap, 5);
	assert_map(&b->memmap[0], BH_MAP_RAM, "ram", 0, 3ULL << 30, true);
	assert_map(&b->memmap[1], BH_MAP_RAM, "ram-high", 0x100000000, 1ULL << 30, true);
	assert_map(&b->memmap[2], BH_MAP_SHARED, "r", 0x140000000, 1 << 20, true);
	assert_map(&b->memmap[3], BH_MAP_SAMPLING, "s", 0x140200000, 4096, false);
	assert_map(&b->memmap[4], BH_MAP_QUEUING, "q", 0x140400000, 4096, true);
	/* Channel areas: 64-byte header plus the messages, in whole pages. */
	assert_int_equal(sys->channels[0].size, 4096);
	assert_int_equal(sys->channels[1].size, 4096);
	cfg_free(sys);
	diag_free(&d);
}

static void devices_pci_macs_slices(void **state)
{
	struct diag d;
	struct bh_system *sys = sound(facts_yaml, &d);
	const struct bh_partition *a = &sys->partitions[0], *b = &sys->partitions[1];
	/* 02:62:68, a hash of the system name ("facts" -> 0x87), partition, device. */
	static const uint8_t mac_a2[6] = { 0x02, 0x62, 0x68, 0x87, 0x00, 0x02 };
	static const uint8_t mac_a3[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x09 };
	static const uint8_t mac_b0[6] = { 0x02, 0x62, 0x68, 0x87, 0x01, 0x00 };

	for (unsigned i = 0; i < a->ndevices; i++)
		assert_int_equal(a->devices[i].pci_slot, i + 1);     /* 0 is the host bridge */
	assert_int_equal(b->devices[0].pci_slot, 1);
	assert_int_equal(a->devices[0].server.idx, 0);
	assert_int_equal(a->devices[1].server.idx, 1);
	assert_int_equal(a->devices[2].server.idx, 2);              /* via the network */
	assert_int_equal(a->devices[2].network.idx, 0);
	assert_memory_equal(a->devices[2].mac, mac_a2, 6);
	assert_memory_equal(a->devices[3].mac, mac_a3, 6);
	assert_memory_equal(b->devices[0].mac, mac_b0, 6);
	/* Burst defaults to 64K when a rate is given. */
	assert_true(a->devices[2].rate.at.line);
	assert_int_equal(a->devices[2].rate.bytes_per_sec, 1 << 20);
	assert_int_equal(a->devices[2].rate.burst, 64 << 10);
	/* A slice without size runs to the end of its disk, whose size is its file's. */
	assert_int_equal(sys->servers[1].disks[0].size, 1 << 20);
	assert_true(sys->servers[1].disks[0].exists);
	assert_int_equal(a->devices[1].offset, 256 << 10);
	assert_int_equal(a->devices[1].size, 768 << 10);
	cfg_free(sys);
	diag_free(&d);
}

static void defaults(void **state)
{
	struct diag d;
	struct bh_system *sys = sound(facts_yaml, &d);
	char want[256];

	/* Isolation by engine: window on kvm, shared on qemu. */
	assert_int_equal(sys->partitions[0].engine, BH_ENGINE_KVM);
	assert_int_equal(sys->partitions[0].isolation, BH_ISOLATION_WINDOW);
	assert_int_equal(sys->partitions[1].isolation, BH_ISOLATION_SHARED);
	/* Health: halt, 3 restarts, no watchdog. */
	assert_int_equal(sys->partitions[0].health.on_fault, BH_FAULT_HALT);
	assert_int_equal(sys->partitions[0].health.max_restarts, 3);
	assert_int_equal(sys->partitions[0].health.watchdog_ns, 0);
	assert_int_equal(sys->servers[0].restart, BH_RESTART_ALWAYS);
	assert_int_equal(sys->scheduling, BH_SCHED_DEDICATED);
	/* log_dir beside the file, control socket inside it. */
	snprintf(want, sizeof(want), "%s/bulkhead-facts", dir);
	assert_string_equal(sys->log_dir, want);
	snprintf(want, sizeof(want), "%s/bulkhead-facts/control.sock", dir);
	assert_string_equal(sys->control_socket, want);
	assert_string_equal(sys->dir, dir);
	cfg_free(sys);
	diag_free(&d);

	/* Without 'cpus' the system takes the host's CPUs; in cyclic scheduling a partition
	 * without 'cpus' runs on the first. A given log_dir anchors the control socket. */
	sys = sound("system:\n  name: t\n  scheduling: cyclic\n  log_dir: logs\n"
		    "  plan: {major_frame: 1ms, slots: [{partition: a, start: 0ms, duration: 1ms}]}\n"
		    "partitions: [{name: a, image: image.elf, memory: 2M}]\n", &d);
	assert_int_equal(sys->ncpus, 2);
	assert_true(bh_cpuset_has(&sys->cpus, 1));
	assert_int_equal(sys->partitions[0].ncpus, 1);
	assert_true(bh_cpuset_has(&sys->partitions[0].cpus, 0));
	snprintf(want, sizeof(want), "%s/logs/control.sock", dir);
	assert_string_equal(sys->control_socket, want);
	cfg_free(sys);
	diag_free(&d);
}

static void json_output(void **state)
{
	struct diag d;
	struct bh_system *sys = sound(facts_yaml, &d);
	char *text = cfg_to_json(sys);
	json_error_t err;
	json_t *root = json_loads(text, 0, &err), *a, *b, *net, *dev;

	if (!root)
		fail_msg("JSON does not parse: %s at line %d", err.text, err.line);
	assert_string_equal(json_string_value(json_object_get(json_object_get(root, "system"),
							       "name")), "facts");
	a = json_array_get(json_object_get(root, "partitions"), 0);
	b = json_array_get(json_object_get(root, "partitions"), 1);
	assert_string_equal(json_string_value(json_object_get(a, "isolation")), "window");
	assert_string_equal(json_string_value(json_object_get(b, "isolation")), "shared");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(a, "memory_map"), 1), "gpa")), "0x100000000");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(b, "memory_map"), 3), "access")), "ro");
	dev = json_array_get(json_object_get(a, "devices"), 1);
	assert_string_equal(json_string_value(json_object_get(dev, "pci")), "00:02.0");
	assert_string_equal(json_string_value(json_object_get(dev, "server")), "blk");
	assert_int_equal(json_integer_value(json_object_get(dev, "size")), 768 << 10);
	dev = json_array_get(json_object_get(a, "devices"), 2);
	assert_string_equal(json_string_value(json_object_get(dev, "mac")), "02:62:68:87:00:02");
	assert_string_equal(json_string_value(json_object_get(dev, "server")), "net");
	/* Unsigned 32-bit counts stay unsigned. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "health"),
							    "max_restarts")), 4294967295LL);
	net = json_array_get(json_object_get(root, "networks"), 0);
	assert_string_equal(json_string_value(json_object_get(net, "server")), "net");
	assert_int_equal(json_array_size(json_object_get(net, "members")), 3);
	assert_int_equal(json_integer_value(json_object_get(
		json_array_get(json_object_get(root, "channels"), 1), "depth")), 8);
	json_decref(root);
	free(text);
	cfg_free(sys);
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(yaml_syntax_error),
		cmocka_unit_test(hostile_input_bounded),
		cmocka_unit_test(unknown_key_suggestion),
		cmocka_unit_test(duplicate_key),
		cmocka_unit_test(wrong_types),
		cmocka_unit_test(refused_values_reported_once),
		cmocka_unit_test(missing_required_keys),
		cmocka_unit_test(nameless_objects),
		cmocka_unit_test(bad_names),
		cmocka_unit_test(duplicate_names_per_kind),
		cmocka_unit_test(dangling_server),
		cmocka_unit_test(dangling_disk),
		cmocka_unit_test(dangling_network),
		cmocka_unit_test(dangling_region_peer),
		cmocka_unit_test(dangling_plan_partition),
		cmocka_unit_test(dangling_channel_partition),
		cmocka_unit_test(device_class_mismatch),
		cmocka_unit_test(memory_not_2m),
		cmocka_unit_test(memory_above_host),
		cmocka_unit_test(cpus_missing_on_host),
		cmocka_unit_test(dedicated_cpu_shared),
		cmocka_unit_test(dedicated_no_cpu),
		cmocka_unit_test(cyclic_no_plan),
		cmocka_unit_test(slots_outside_frame),
		cmocka_unit_test(slots_overlap),
		cmocka_unit_test(partition_never_scheduled),
		cmocka_unit_test(slot_too_short),
		cmocka_unit_test(slice_outside_disk),
		cmocka_unit_test(writable_slices_overlap),
		cmocka_unit_test(disk_missing_without_create),
		cmocka_unit_test(mac_invalid),
		cmocka_unit_test(mac_multicast),
		cmocka_unit_test(mac_duplicate),
		cmocka_unit_test(rate_not_positive),
		cmocka_unit_test(device_keys_by_type),
		cmocka_unit_test(region_one_peer),
		cmocka_unit_test(channel_same_partition),
		cmocka_unit_test(port_names_reused),
		cmocka_unit_test(queuing_destinations_and_depth),
		cmocka_unit_test(sampling_needs_refresh),
		cmocka_unit_test(qemu_needs_kernel),
		cmocka_unit_test(window_with_qemu),
		cmocka_unit_test(image_missing_or_not_elf),
		cmocka_unit_test(kernel_and_initrd_missing),
		cmocka_unit_test(health_rules),
		cmocka_unit_test(memory_maps),
		cmocka_unit_test(devices_pci_macs_slices),
		cmocka_unit_test(defaults),
		cmocka_unit_test(json_output),
	};
	return cmocka_run_group_tests_name("check", tests, setup, teardown);
}
