/*
 * Unit tests for src/config/schema.c: the table-driven decoder. A small schema of one
 * field per type stands in for the system file's, so each type's accepted and refused
 * values, names, suggestions and required keys are tested on their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/schema.h"
#include "config/system.h"

static const char *const colours[] = { "red", "green", "blue", NULL };

struct item {
	char *name;
	uint64_t weight;
	struct bh_loc at, name_at;
};

struct inner {
	uint32_t count;
	struct bh_loc at;
};

struct thing {
	char *name, *port, *text, *path;
	uint64_t size, time;
	bool flag;
	uint32_t u32;
	int colour;
	struct bh_cpuset cpus;
	unsigned ncpus;
	uint8_t mac[6];
	struct bh_ref ref;
	struct bh_ref *refs;
	unsigned nrefs;
	struct inner inner;
	struct item *items;
	unsigned nitems;
	struct bh_loc at, name_at, size_at, time_at, flag_at, colour_at, cpus_at, mac_at;
};

#define VAL(S, m) .off = offsetof(S, m)
#define AT(S, m)  .at_off = offsetof(S, m)
#define NOAT      .at_off = -1

static const struct field item_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(struct item, name), AT(struct item, name_at),
	  .required = true },
	{ .key = "weight", .type = FT_SIZE, VAL(struct item, weight), NOAT },
	{ 0 }
};
static const struct schema item_schema = {
	"item", sizeof(struct item), offsetof(struct item, at), NULL, item_fields
};

static const struct field inner_fields[] = {
	{ .key = "count", .type = FT_U32, VAL(struct inner, count), NOAT, .required = true },
	{ 0 }
};
static const struct schema inner_schema = {
	"inner", sizeof(struct inner), offsetof(struct inner, at), NULL, inner_fields
};

#define S struct thing
static void thing_init(void *o)
{
	((S *)o)->colour = 2;              /* default: blue */
	((S *)o)->ref.idx = -1;
}
static const struct field thing_fields[] = {
	{ .key = "name", .type = FT_NAME, VAL(S, name), AT(S, name_at), .required = true },
	{ .key = "port", .type = FT_PORTNAME, VAL(S, port), NOAT },
	{ .key = "text", .type = FT_STRING, VAL(S, text), NOAT },
	{ .key = "path", .type = FT_PATH, VAL(S, path), NOAT },
	{ .key = "size", .type = FT_SIZE, VAL(S, size), AT(S, size_at) },
	{ .key = "time", .type = FT_TIME, VAL(S, time), AT(S, time_at) },
	{ .key = "flag", .type = FT_BOOL, VAL(S, flag), AT(S, flag_at) },
	{ .key = "u32", .type = FT_U32, VAL(S, u32), NOAT },
	{ .key = "colour", .type = FT_ENUM, VAL(S, colour), AT(S, colour_at), .enum_names = colours },
	{ .key = "cpus", .type = FT_CPUS, VAL(S, cpus), AT(S, cpus_at), .count_off = offsetof(S, ncpus) },
	{ .key = "mac", .type = FT_MAC, VAL(S, mac), AT(S, mac_at) },
	{ .key = "ref", .type = FT_REF, VAL(S, ref), NOAT },
	{ .key = "refs", .type = FT_REFLIST, VAL(S, refs), NOAT, .count_off = offsetof(S, nrefs),
	  .max = 3 },
	{ .key = "inner", .type = FT_MAP, VAL(S, inner), NOAT, .sub = &inner_schema },
	{ .key = "items", .type = FT_LIST, VAL(S, items), NOAT, .sub = &item_schema,
	  .count_off = offsetof(S, nitems), .max = 2 },
	{ 0 }
};
static const struct schema thing_schema = { "thing", sizeof(S), offsetof(S, at), thing_init,
					    thing_fields };
#undef S

struct fixture {
	struct diag d;
	struct ynode *root;
	struct thing t;
};

/* Decodes one YAML mapping into a fresh thing; the schema's context has /base as the
 * file's directory. */
static struct fixture *decode(const char *yaml)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct schema_ctx c;

	assert_non_null(f);
	diag_init(&f->d, "t.yaml");
	f->root = ytree_parse(yaml, strlen(yaml), &f->d);
	assert_non_null(f->root);
	c = (struct schema_ctx){ .d = &f->d, .dir = "/base" };
	schema_decode_map(&c, &thing_schema, f->root, &f->t);
	return f;
}

static void release(struct fixture *f)
{
	schema_free(&thing_schema, &f->t);
	ytree_free(f->root);
	diag_free(&f->d);
	free(f);
}

/* Decodes "name: x, KEY: VALUE" and expects no diagnostic. */
static struct fixture *accept(const char *key, const char *value)
{
	char yaml[512];
	struct fixture *f;

	snprintf(yaml, sizeof(yaml), "{name: x, %s: %s}", key, value);
	f = decode(yaml);
	if (f->d.n)
		fail_msg("'%s: %s' refused: %s", key, value, f->d.items[0].msg);
	return f;
}

/* Decodes "name: x, KEY: VALUE" and expects exactly one error, at the value (column
 * 13 + strlen(key)), whose message contains `text`. */
static void refuse(const char *key, const char *value, const char *text)
{
	char yaml[512];
	struct fixture *f;

	snprintf(yaml, sizeof(yaml), "{name: x, %s: %s}", key, value);
	f = decode(yaml);
	if (f->d.errors != 1 || f->d.n != 1)
		fail_msg("'%s: %s': %zu errors, expected 1", key, value, f->d.errors);
	assert_int_equal(f->d.items[0].loc.line, 1);
	assert_int_equal(f->d.items[0].loc.col, 13 + strlen(key));
	if (!strstr(f->d.items[0].msg, text))
		fail_msg("'%s: %s': message '%s' lacks '%s'", key, value, f->d.items[0].msg, text);
	release(f);
}

static void name_rules(void **state)
{
	static const char *const good[] = { "a", "demo", "sensor-1", "0", "-", "a-b-c",
		"abcdefghijklmnopqrstuvwxyz012345" };                          /* 32 */
	static const char *const bad[] = { "", "Demo", "a_b", "a b", "a.b", "caf\xc3\xa9", "a/b",
		"abcdefghijklmnopqrstuvwxyz0123456" };                          /* 33 */

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(schema_valid_name(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (schema_valid_name(bad[i]))
			fail_msg("'%s' accepted as a name", bad[i]);
}

/* A refused name is reported but still stored, so duplicate and reference checks can
 * use it. */
static void names_decoded(void **state)
{
	struct fixture *f = decode("{name: Bad_Name}");

	assert_int_equal(f->d.errors, 1);
	assert_non_null(strstr(f->d.items[0].msg, "'name' value 'Bad_Name' is not a valid name: "
				"use 1 to 32 characters from a-z, 0-9 and '-'"));
	assert_string_equal(f->t.name, "Bad_Name");
	assert_int_equal(f->t.name_at.col, 8);
	release(f);
	f = decode("{name: [a]}");
	assert_int_equal(f->d.errors, 1);
	assert_int_equal(f->d.items[0].loc.col, 8);
	assert_string_equal(f->d.items[0].msg, "'name' must be a name, not a list");
	assert_null(f->t.name);
	release(f);
	f = decode("{name: ~}");
	assert_int_equal(f->d.errors, 1);
	assert_non_null(strstr(f->d.items[0].msg, "must be a name, not a null"));
	release(f);
	f = decode("{name: '123'}");                     /* quoted digits are a name */
	assert_int_equal(f->d.n, 0);
	assert_string_equal(f->t.name, "123");
	release(f);
}

static void port_names(void **state)
{
	struct fixture *f = accept("port", "SPEED_out-1");

	assert_string_equal(f->t.port, "SPEED_out-1");
	release(f);
	refuse("port", "\"a b\"", "'port' value 'a b' is not a valid port name");
	refuse("port", "a.b", "not a valid port name");
	refuse("port", "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefg", "not a valid port name");
	refuse("port", "''", "not a valid port name");
}

static void suggestions(void **state)
{
	static const char *const keys[] = { "memory", "image", "kernel", "cpus", "engine" };

	assert_string_equal(schema_suggest("memroy", keys, 5), "memory");
	assert_string_equal(schema_suggest("memory", keys, 5), "memory");
	assert_string_equal(schema_suggest("imag", keys, 5), "image");
	assert_string_equal(schema_suggest("kernl", keys, 5), "kernel");
	assert_string_equal(schema_suggest("cpu", keys, 5), "cpus");
	assert_string_equal(schema_suggest("engien", keys, 5), "engine");    /* 2 edits */
	assert_null(schema_suggest("colour", keys, 5));
	assert_null(schema_suggest("mem", keys, 5));                          /* 3 edits */
	assert_null(schema_suggest("", keys, 5));
	assert_null(schema_suggest("memory", keys, 0));
	{
		char long_word[100];
		memset(long_word, 'm', sizeof(long_word) - 1);
		long_word[99] = '\0';
		assert_null(schema_suggest(long_word, keys, 5));
	}
}

static void unknown_keys(void **state)
{
	struct fixture *f = decode("name: x\nsiez: 4K\ncolour: red\nfavourite: 7\n");

	assert_int_equal(f->d.errors, 2);
	assert_int_equal(f->d.items[0].loc.line, 2);
	assert_int_equal(f->d.items[0].loc.col, 1);
	assert_string_equal(f->d.items[0].msg, "unknown key 'siez' in thing; did you mean 'size'?");
	assert_int_equal(f->d.items[1].loc.line, 4);
	assert_string_equal(f->d.items[1].msg, "unknown key 'favourite' in thing");
	assert_int_equal(f->t.colour, 0);                /* known keys still decoded */
	release(f);
}

static void required_keys(void **state)
{
	struct fixture *f = decode("# a comment\nsize: 4K\ninner: {}\n");

	/* Reported at the mapping lacking them: the root (line 2) and the inner one. */
	assert_int_equal(f->d.errors, 2);
	assert_int_equal(f->d.items[0].loc.line, 3);
	assert_int_equal(f->d.items[0].loc.col, 8);
	assert_string_equal(f->d.items[0].msg, "inner is missing the required key 'count'");
	assert_int_equal(f->d.items[1].loc.line, 2);
	assert_int_equal(f->d.items[1].loc.col, 1);
	assert_string_equal(f->d.items[1].msg, "thing is missing the required key 'name'");
	release(f);
	/* Given as null: a type error, not "missing". */
	f = decode("name:\n");
	assert_int_equal(f->d.errors, 1);
	assert_null(strstr(f->d.items[0].msg, "missing"));
	release(f);
	/* A duplicate key is reported by the tree and decoded once, from the first. */
	f = decode("name: x\nname: y\n");
	assert_int_equal(f->d.errors, 1);
	assert_string_equal(f->t.name, "x");
	release(f);
}

static void strings_and_paths(void **state)
{
	struct fixture *f = accept("text", "'12: not a mapping'");

	assert_string_equal(f->t.text, "12: not a mapping");
	release(f);
	f = accept("text", "42");
	assert_string_equal(f->t.text, "42");
	release(f);
	refuse("text", "{a: 1}", "'text' must be a string, not a mapping");
	refuse("text", "~", "'text' must be a string, not a null");

	f = accept("path", "disk.img");                  /* relative: the file's directory */
	assert_string_equal(f->t.path, "/base/disk.img");
	release(f);
	f = accept("path", "../up/x.elf");
	assert_string_equal(f->t.path, "/base/../up/x.elf");
	release(f);
	f = accept("path", "/abs/x.elf");                /* absolute: unchanged */
	assert_string_equal(f->t.path, "/abs/x.elf");
	release(f);
	refuse("path", "[a]", "'path' must be a path, not a list");
}

static void sizes(void **state)
{
	static const struct { const char *text; uint64_t value; } good[] = {
		{ "0", 0 }, { "4096", 4096 }, { "4K", 4096 }, { "4KiB", 4096 }, { "64M", 64ULL << 20 },
		{ "1G", 1ULL << 30 }, { "2T", 2ULL << 40 }, { "'16M'", 16ULL << 20 },
		{ "9223372036854775807", INT64_MAX }, { "8388607T", 8388607ULL << 40 },
	};
	static const char *const bad[] = { "16m", "16MB", "1.5G", "-1", "0x10", "lots", "'16 M'",
					   "1P", "true" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct fixture *f = accept("size", good[i].text);
		assert_int_equal(f->t.size, good[i].value);
		assert_int_equal(f->t.size_at.col, 17);
		release(f);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse("size", bad[i], "'size' must be a size like 4K, 64M or 1G (or bytes), not");
	/* Beyond 2^63 - 1 (off_t and JSON are signed), and beyond 2^64. */
	refuse("size", "9223372036854775808", "'size' value '9223372036854775808' is too large");
	refuse("size", "8388608T", "is too large");
	refuse("size", "99999999999999999999", "is too large");
	refuse("size", "[1]", "'size' must be a size like 64M, not a list");
}

static void times(void **state)
{
	static const struct { const char *text; uint64_t value; } good[] = {
		{ "0ns", 0 }, { "100us", 100000 }, { "10ms", 10000000 }, { "2s", 2000000000 },
		{ "9223372036s", 9223372036000000000ULL },
	};
	static const char *const bad[] = { "10", "10m", "1.5ms", "10 ms", "-1s", "10MS", "ms" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct fixture *f = accept("time", good[i].text);
		assert_int_equal(f->t.time, good[i].value);
		release(f);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse("time", bad[i], "'time' must be a time with a unit (ns, us, ms, s) like 10ms");
	refuse("time", "9223372037s", "'time' value '9223372037s' is too large");
	refuse("time", "{}", "'time' must be a time like 10ms, not a mapping");
}

static void booleans(void **state)
{
	struct fixture *f = accept("flag", "true");

	assert_true(f->t.flag);
	release(f);
	f = accept("flag", "false");
	assert_false(f->t.flag);
	assert_int_equal(f->t.flag_at.line, 1);
	release(f);
	refuse("flag", "yes", "'flag' must be true or false, not 'yes'");
	refuse("flag", "True", "not 'True'");
	refuse("flag", "1", "not '1'");
	refuse("flag", "~", "'flag' must be true or false, not a null");
}

static void numbers(void **state)
{
	struct fixture *f = accept("u32", "0");

	assert_int_equal(f->t.u32, 0);
	release(f);
	f = accept("u32", "4294967295");
	assert_int_equal(f->t.u32, UINT32_MAX);
	release(f);
	f = accept("u32", "007");
	assert_int_equal(f->t.u32, 7);
	release(f);
	refuse("u32", "4294967296", "'u32' must be a whole number from 0 to 4294967295, not '4294967296'");
	refuse("u32", "-1", "not '-1'");
	refuse("u32", "+1", "not '+1'");
	refuse("u32", "1e3", "not '1e3'");
	refuse("u32", "0x10", "not '0x10'");
	refuse("u32", "99999999999999999999999", "whole number");
}

static void enums(void **state)
{
	struct fixture *f = decode("{name: x}");

	assert_int_equal(f->t.colour, 2);                /* init's default */
	assert_int_equal(f->t.colour_at.line, 0);
	release(f);
	f = accept("colour", "red");
	assert_int_equal(f->t.colour, 0);
	release(f);
	f = accept("colour", "green");
	assert_int_equal(f->t.colour, 1);
	release(f);
	refuse("colour", "Red", "'colour' must be one of red | green | blue, not 'Red'");
	refuse("colour", "purple", "not 'purple'");
	refuse("colour", "[red]", "'colour' must be a word, not a list");
}

static void cpu_lists(void **state)
{
	struct fixture *f = accept("cpus", "[0, 3, 1023]");

	assert_int_equal(f->t.ncpus, 3);
	assert_true(bh_cpuset_has(&f->t.cpus, 0));
	assert_true(bh_cpuset_has(&f->t.cpus, 3));
	assert_true(bh_cpuset_has(&f->t.cpus, 1023));
	assert_false(bh_cpuset_has(&f->t.cpus, 1));
	release(f);
	f = accept("cpus", "[]");
	assert_int_equal(f->t.ncpus, 0);
	assert_int_equal(f->t.cpus_at.line, 1);
	release(f);

	/* Listed twice: a warning at the second, counted once. */
	f = decode("{name: x, cpus: [1, 1]}");
	assert_int_equal(f->d.errors, 0);
	assert_int_equal(f->d.warnings, 1);
	assert_int_equal(f->d.items[0].loc.col, 21);
	assert_string_equal(f->d.items[0].msg, "CPU 1 is listed twice in 'cpus'");
	assert_int_equal(f->t.ncpus, 1);
	release(f);

	refuse("cpus", "0", "'cpus' must be a list of CPU numbers like [0, 1], not a scalar");
	refuse("cpus", "{a: 1}", "not a mapping");
	/* Bad entries are reported at the entry, the others kept. */
	f = decode("{name: x, cpus: [0, one, 1024, -1, [2]]}");
	assert_int_equal(f->d.errors, 4);
	assert_int_equal(f->d.items[0].loc.col, 21);
	assert_string_equal(f->d.items[0].msg, "'cpus' entries must be CPU numbers, not 'one'");
	assert_string_equal(f->d.items[1].msg, "CPU 1024 does not exist (bulkhead supports CPUs 0-1023)");
	assert_string_equal(f->d.items[2].msg, "'cpus' entries must be CPU numbers, not '-1'");
	assert_string_equal(f->d.items[3].msg, "'cpus' entries must be CPU numbers, not 'list'");
	assert_int_equal(f->t.ncpus, 1);
	release(f);
}

static void macs(void **state)
{
	static const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	struct fixture *f = accept("mac", "\"52:54:00:AB:cd:ef\"");

	assert_memory_equal(f->t.mac, want, 6);
	release(f);
	f = accept("mac", "52:54:00:ab:cd:ef");          /* unquoted works too */
	assert_memory_equal(f->t.mac, want, 6);
	release(f);
	static const char *const bad[] = { "\"52:54:00:ab:cd\"", "\"52:54:00:ab:cd:ef:01\"",
		"\"52-54-00-ab-cd-ef\"", "\"5:54:00:ab:cd:ef\"", "\"52:54:00:ab:cd:eg\"",
		"\"525400abcdef\"", "\"52:54:00:ab:cd:ef \"", "\"\"" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse("mac", bad[i], "is not a MAC address like \"52:54:00:12:34:56\"");
	refuse("mac", "[1]", "'mac' must be a MAC address, not a list");
}

static void references(void **state)
{
	struct fixture *f = accept("ref", "other");

	assert_string_equal(f->t.ref.name, "other");
	assert_int_equal(f->t.ref.idx, -1);
	assert_int_equal(f->t.ref.at.col, 16);
	release(f);
	refuse("ref", "[a]", "'ref' must be a name, not a list");

	f = accept("refs", "[a, b, c]");
	assert_int_equal(f->t.nrefs, 3);
	assert_string_equal(f->t.refs[2].name, "c");
	assert_int_equal(f->t.refs[2].at.col, 24);
	release(f);
	f = accept("refs", "[]");
	assert_int_equal(f->t.nrefs, 0);
	release(f);
	refuse("refs", "[a, b, c, d]", "'refs' lists 4 names; at most 3 are allowed");
	refuse("refs", "a", "'refs' must be a list of names, not a scalar");
	f = decode("{name: x, refs: [~, [b], c]}");
	assert_int_equal(f->d.errors, 2);
	assert_string_equal(f->d.items[0].msg, "'refs' entries must be names, not a null");
	assert_string_equal(f->d.items[1].msg, "'refs' entries must be names, not a list");
	assert_int_equal(f->t.nrefs, 1);
	assert_string_equal(f->t.refs[0].name, "c");
	release(f);
}

static void nested_mappings(void **state)
{
	struct fixture *f = accept("inner", "{count: 5}");

	assert_int_equal(f->t.inner.count, 5);
	assert_int_equal(f->t.inner.at.col, 18);
	release(f);
	refuse("inner", "[1]", "expected a mapping of keys to values for the inner, found a list");
	refuse("inner", "~", "expected a mapping of keys to values for the inner, found a null");
	f = decode("{name: x, inner: {count: 1, bogus: 2}}");
	assert_int_equal(f->d.errors, 1);
	assert_string_equal(f->d.items[0].msg, "unknown key 'bogus' in inner");
	release(f);
}

static void lists(void **state)
{
	struct fixture *f = decode("name: x\n"
				   "items:\n"
				   "  - {name: a, weight: 1K}\n"
				   "  - name: b\n");

	assert_int_equal(f->d.n, 0);
	assert_int_equal(f->t.nitems, 2);
	assert_string_equal(f->t.items[0].name, "a");
	assert_int_equal(f->t.items[0].weight, 1024);
	assert_int_equal(f->t.items[1].at.line, 4);
	assert_int_equal(f->t.items[1].at.col, 5);
	release(f);

	f = accept("items", "~");                       /* null: an empty list */
	assert_int_equal(f->t.nitems, 0);
	release(f);
	f = accept("items", "[]");
	assert_int_equal(f->t.nitems, 0);
	release(f);
	refuse("items", "[{name: a}, {name: b}, {name: c}]", "'items' has 3 entries; at most 2 are allowed");
	refuse("items", "{name: a}", "'items' must be a list of item entries, not a mapping");

	/* An entry that is not a mapping is reported and left out; the others are kept. */
	f = decode("{name: x, items: [plain, {name: b}]}");
	assert_int_equal(f->d.errors, 1);
	assert_int_equal(f->d.items[0].loc.col, 19);
	assert_string_equal(f->d.items[0].msg,
			    "expected a mapping of keys to values for the item, found a scalar");
	assert_int_equal(f->t.nitems, 1);
	assert_string_equal(f->t.items[0].name, "b");
	release(f);

	/* Errors inside entries carry their own positions. */
	f = decode("{name: x, items: [{weight: 1K}, {name: B}]}");
	assert_int_equal(f->d.errors, 2);
	assert_int_equal(f->d.items[0].loc.col, 19);
	assert_string_equal(f->d.items[0].msg, "item is missing the required key 'name'");
	assert_int_equal(f->d.items[1].loc.col, 40);
	assert_int_equal(f->t.nitems, 2);
	release(f);
}

/* The root itself must be a mapping. */
static void root_not_a_mapping(void **state)
{
	struct diag d;
	struct thing t;
	struct schema_ctx c = { .d = &d, .dir = "/" };
	struct ynode *root;

	memset(&t, 0, sizeof(t));
	diag_init(&d, "t.yaml");
	root = ytree_parse("- a\n- b\n", 8, &d);
	assert_non_null(root);
	schema_decode_map(&c, &thing_schema, root, &t);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.items[0].msg,
			    "expected a mapping of keys to values for the thing, found a list");
	schema_free(&thing_schema, &t);
	ytree_free(root);
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(name_rules),
		cmocka_unit_test(names_decoded),
		cmocka_unit_test(port_names),
		cmocka_unit_test(suggestions),
		cmocka_unit_test(unknown_keys),
		cmocka_unit_test(required_keys),
		cmocka_unit_test(strings_and_paths),
		cmocka_unit_test(sizes),
		cmocka_unit_test(times),
		cmocka_unit_test(booleans),
		cmocka_unit_test(numbers),
		cmocka_unit_test(enums),
		cmocka_unit_test(cpu_lists),
		cmocka_unit_test(macs),
		cmocka_unit_test(references),
		cmocka_unit_test(nested_mappings),
		cmocka_unit_test(lists),
		cmocka_unit_test(root_not_a_mapping),
	};
	return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
