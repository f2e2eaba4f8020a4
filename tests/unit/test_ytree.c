/*
 * Unit tests for src/config/ytree.c: the YAML tree a system file is read into, with
 * positions, and the limits that keep hostile input from costing memory or time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/ytree.h"

/* Parses a NUL-terminated text; the diag is initialised here and freed by the caller. */
static struct ynode *parse(const char *text, struct diag *d)
{
	diag_init(d, "test.yaml");
	return ytree_parse(text, strlen(text), d);
}

/* Asserts that d holds exactly one item, an error at line:col whose message contains
 * text (col 0: any column). */
static void assert_one_error(const struct diag *d, unsigned line, unsigned col, const char *text)
{
	assert_int_equal(d->n, 1);
	assert_int_equal(d->errors, 1);
	assert_int_equal(d->items[0].severity, DIAG_ERROR);
	assert_int_equal(d->items[0].loc.line, line);
	if (col)
		assert_int_equal(d->items[0].loc.col, col);
	if (!strstr(d->items[0].msg, text))
		fail_msg("message '%s' lacks '%s'", d->items[0].msg, text);
}

static void tree_shape(void **state)
{
	struct diag d;
	struct ynode *root = parse("system:\n"
				   "  name: demo\n"
				   "  cpus: [0, 1]\n"
				   "list:\n"
				   "  - {a: 1}\n"
				   "  - plain\n"
				   "  - 'quoted'\n", &d);
	const struct ynode *sys, *cpus, *list;

	assert_non_null(root);
	assert_int_equal(d.n, 0);
	assert_int_equal(root->kind, YNODE_MAP);
	assert_int_equal(root->n, 2);
	assert_string_equal(root->keys[0]->scalar, "system");
	assert_string_equal(root->keys[1]->scalar, "list");

	sys = ytree_get(root, "system");
	assert_non_null(sys);
	assert_int_equal(sys->kind, YNODE_MAP);
	assert_string_equal(ytree_get(sys, "name")->scalar, "demo");
	cpus = ytree_get(sys, "cpus");
	assert_int_equal(cpus->kind, YNODE_SEQ);
	assert_int_equal(cpus->n, 2);
	assert_null(cpus->keys);
	assert_string_equal(cpus->vals[1]->scalar, "1");

	list = ytree_get(root, "list");
	assert_int_equal(list->n, 3);
	assert_int_equal(list->vals[0]->kind, YNODE_MAP);
	assert_string_equal(ytree_get(list->vals[0], "a")->scalar, "1");
	assert_true(list->vals[1]->plain);
	assert_false(list->vals[2]->plain);
	assert_string_equal(list->vals[2]->scalar, "quoted");

	assert_null(ytree_get(root, "absent"));
	assert_null(ytree_get(cpus, "0"));            /* not a mapping */
	assert_null(ytree_get_key(root, "absent"));
	assert_string_equal(ytree_kind_name(sys), "mapping");
	assert_string_equal(ytree_kind_name(cpus), "list");
	assert_string_equal(ytree_kind_name(list->vals[1]), "scalar");
	ytree_free(root);
	diag_free(&d);
}

/* Lines and columns are 1-based, columns count characters (not bytes), keys and values
 * have their own positions, and a block mapping starts at its first key. */
static void lines_and_columns(void **state)
{
	struct diag d;
	struct ynode *root = parse("# comment\n"
				   "system:\n"
				   "  name: caf\xc3\xa9\n"
				   "  cpus: [0,  1]\n"
				   "x: {\xc3\xa9: [a, bb]}\n", &d);
	const struct ynode *sys, *cpus, *x;

	assert_non_null(root);
	assert_int_equal(d.n, 0);
	assert_int_equal(root->loc.line, 2);
	assert_int_equal(root->loc.col, 1);
	sys = ytree_get(root, "system");
	assert_int_equal(sys->loc.line, 3);
	assert_int_equal(sys->loc.col, 3);
	assert_int_equal(ytree_get_key(sys, "name")->loc.col, 3);
	assert_int_equal(ytree_get(sys, "name")->loc.col, 9);
	cpus = ytree_get(sys, "cpus");
	assert_int_equal(cpus->loc.line, 4);
	assert_int_equal(cpus->loc.col, 9);
	assert_int_equal(cpus->vals[0]->loc.col, 10);
	assert_int_equal(cpus->vals[1]->loc.col, 14);
	x = ytree_get(root, "x");
	assert_int_equal(x->loc.line, 5);
	assert_int_equal(x->loc.col, 4);
	/* "é" is one column: the list after it starts at column 8, "bb" at 12. */
	assert_int_equal(x->vals[0]->loc.col, 8);
	assert_int_equal(x->vals[0]->vals[1]->loc.col, 12);
	ytree_free(root);
	diag_free(&d);
}

/* A duplicate key is reported at the second occurrence; the tree is still returned
 * (so the rest of the file is checked) and lookups see the first value. */
static void duplicate_keys(void **state)
{
	struct diag d;
	struct ynode *root = parse("a: 1\n"
				   "b: {x: 1, y: 2, x: 3}\n"
				   "a: 2\n", &d);

	assert_non_null(root);
	assert_int_equal(d.errors, 2);
	assert_int_equal(d.items[0].loc.line, 2);
	assert_int_equal(d.items[0].loc.col, 17);
	assert_non_null(strstr(d.items[0].msg, "duplicate key 'x' (first given at line 2)"));
	assert_int_equal(d.items[1].loc.line, 3);
	assert_int_equal(d.items[1].loc.col, 1);
	assert_non_null(strstr(d.items[1].msg, "duplicate key 'a' (first given at line 1)"));
	assert_string_equal(ytree_get(root, "a")->scalar, "1");
	assert_string_equal(ytree_get(ytree_get(root, "b"), "x")->scalar, "1");
	ytree_free(root);
	diag_free(&d);
}

static void non_scalar_keys_refused(void **state)
{
	struct diag d;

	assert_null(parse("a: 1\n? [x, y]\n: 2\n", &d));
	assert_one_error(&d, 2, 3, "mapping keys must be plain names, not a list");
	diag_free(&d);
	assert_null(parse("{a: 1}: 2\n", &d));
	assert_one_error(&d, 1, 1, "not a mapping");
	diag_free(&d);
}

static void aliases_refused_anchors_allowed(void **state)
{
	struct diag d;
	struct ynode *root;

	assert_null(parse("a: &x [1, 2]\nb: *x\n", &d));
	assert_one_error(&d, 2, 4, "YAML aliases (*x) are not supported");
	diag_free(&d);
	/* The billion-laughs shape: refused at the first alias, nothing expanded. */
	assert_null(parse("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", &d));
	assert_int_equal(d.errors, 1);
	diag_free(&d);
	/* Merge keys are aliases too. */
	assert_null(parse("base: &b {x: 1}\nderived: {<<: *b}\n", &d));
	assert_one_error(&d, 2, 15, "*b");
	diag_free(&d);

	root = parse("a: &x [1, 2]\n", &d);
	assert_non_null(root);
	assert_int_equal(d.n, 0);
	ytree_free(root);
	diag_free(&d);
}

static void one_document_only(void **state)
{
	struct diag d;
	struct ynode *root;

	assert_null(parse("a: 1\n---\nb: 2\n", &d));
	assert_one_error(&d, 2, 1, "a system file holds one YAML document");
	diag_free(&d);
	assert_null(parse("--- {a: 1}\n--- {b: 2}\n", &d));
	assert_one_error(&d, 2, 1, "one YAML document");
	diag_free(&d);

	root = parse("---\na: 1\n...\n", &d);      /* explicit start and end: fine */
	assert_non_null(root);
	assert_int_equal(d.n, 0);
	assert_string_equal(ytree_get(root, "a")->scalar, "1");
	ytree_free(root);
	diag_free(&d);
}

/* "a: " then n nested flow lists: the root mapping is level 1, so n lists reach level
 * n + 1. */
static char *nested(int n)
{
	char *s = malloc((size_t)n * 2 + 8);
	int len = sprintf(s, "a: ");

	assert_non_null(s);
	memset(s + len, '[', (size_t)n);
	memset(s + len + n, ']', (size_t)n);
	strcpy(s + len + 2 * n, "\n");
	return s;
}

static void depth_limit(void **state)
{
	struct diag d;
	struct ynode *root;
	char *ok = nested(YTREE_MAX_DEPTH - 1), *deep = nested(YTREE_MAX_DEPTH),
	     *deeper = nested(10000);

	root = parse(ok, &d);
	assert_non_null(root);
	assert_int_equal(d.n, 0);
	ytree_free(root);
	diag_free(&d);

	assert_null(parse(deep, &d));
	/* The list that opens level 33 is the 32nd '[', at column 4 + 31. */
	assert_one_error(&d, 1, 4 + YTREE_MAX_DEPTH - 1, "nesting deeper than 32 levels");
	diag_free(&d);

	assert_null(parse(deeper, &d));                /* stops early, one error */
	assert_one_error(&d, 1, 35, "nesting deeper");
	diag_free(&d);

	free(ok);
	free(deep);
	free(deeper);
}

static void size_limit(void **state)
{
	struct diag d;
	struct ynode *root;
	char *text = malloc(YTREE_MAX_BYTES + 2);

	assert_non_null(text);
	/* Exactly the limit: a comment that fills 1 MiB is an empty document. */
	memset(text, ' ', YTREE_MAX_BYTES);
	text[0] = '#';
	text[YTREE_MAX_BYTES - 1] = '\n';
	diag_init(&d, "big.yaml");
	root = ytree_parse(text, YTREE_MAX_BYTES, &d);
	assert_non_null(root);
	assert_int_equal(d.n, 0);
	assert_int_equal(root->kind, YNODE_MAP);
	assert_int_equal(root->n, 0);
	ytree_free(root);
	diag_free(&d);

	/* One byte more is refused before parsing. */
	text[YTREE_MAX_BYTES] = '\n';
	diag_init(&d, "big.yaml");
	assert_null(ytree_parse(text, YTREE_MAX_BYTES + 1, &d));
	assert_one_error(&d, 1, 1, "file is larger than 1048576 bytes");
	diag_free(&d);
	free(text);
}

static void node_and_key_limits(void **state)
{
	struct diag d;
	size_t n = YTREE_MAX_NODES + 10, len = 0;
	char *text = malloc(n * 2 + 16);

	assert_non_null(text);
	/* 200010 scalars in one list: over the node limit, within the size limit. */
	len += (size_t)sprintf(text, "a: [");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "0,");
	strcpy(text + len - 1, "]\n");
	assert_true(strlen(text) < YTREE_MAX_BYTES);
	assert_null(parse(text, &d));
	assert_one_error(&d, 1, 0, "too many YAML nodes (more than 200000)");
	diag_free(&d);

	/* 1025 keys in one mapping. */
	len = 0;
	for (unsigned i = 0; i <= YTREE_MAX_KEYS; i++)
		len += (size_t)sprintf(text + len, "k%u: 0\n", i);
	assert_null(parse(text, &d));
	assert_one_error(&d, 1, 1, "mapping with more than 1024 keys");
	diag_free(&d);

	/* 1024 keys are fine. */
	len = 0;
	for (unsigned i = 0; i < YTREE_MAX_KEYS; i++)
		len += (size_t)sprintf(text + len, "k%u: 0\n", i);
	{
		struct ynode *root = parse(text, &d);
		assert_non_null(root);
		assert_int_equal(root->n, YTREE_MAX_KEYS);
		ytree_free(root);
		diag_free(&d);
	}
	free(text);
}

static void nul_characters(void **state)
{
	struct diag d;
	static const char raw[] = "a: x\0y\n";

	/* Written as an escape in a double-quoted string. */
	assert_null(parse("a: ok\nb: \"x\\0y\"\n", &d));
	assert_one_error(&d, 2, 4, "value contains a NUL character");
	diag_free(&d);

	/* A raw NUL byte is a control character for YAML's reader. */
	diag_init(&d, "test.yaml");
	assert_null(ytree_parse(raw, sizeof(raw) - 1, &d));
	assert_one_error(&d, 1, 5, "character 0x00 is not allowed");
	diag_free(&d);
}

static void empty_documents(void **state)
{
	static const char *const empties[] = { "", "\n\n", "# only a comment\n", "---\n",
					       "~\n", "null\n", "--- ~\n...\n" };

	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		struct diag d;
		struct ynode *root = parse(empties[i], &d);

		assert_non_null(root);
		assert_int_equal(d.n, 0);
		assert_int_equal(root->kind, YNODE_MAP);
		assert_int_equal(root->n, 0);
		assert_int_not_equal(root->loc.line, 0);
		ytree_free(root);
		diag_free(&d);
	}
}

/* A document that is a scalar or a list is returned as such: the schema layer says
 * what it expected. */
static void non_mapping_roots(void **state)
{
	struct diag d;
	struct ynode *root = parse("just words\n", &d);

	assert_non_null(root);
	assert_int_equal(root->kind, YNODE_SCALAR);
	ytree_free(root);
	diag_free(&d);
	root = parse("[1, 2]\n", &d);
	assert_non_null(root);
	assert_int_equal(root->kind, YNODE_SEQ);
	ytree_free(root);
	diag_free(&d);
}

static void invalid_utf8(void **state)
{
	struct diag d;

	/* A byte that cannot start a sequence, after a two-byte character on line 2. */
	assert_null(parse("a: 1\nb: \xc3\xa9 \xff\n", &d));
	assert_one_error(&d, 2, 6, "not valid UTF-8 text: invalid leading UTF-8 octet");
	diag_free(&d);
	/* A sequence cut short by an ASCII byte: reported at its leading byte. */
	assert_null(parse("name: caf\xc3\n", &d));
	assert_one_error(&d, 1, 10, "not valid UTF-8 text: invalid trailing UTF-8 octet");
	diag_free(&d);
	assert_null(parse("x: \"\xe2\x82\"\n", &d));
	assert_one_error(&d, 1, 5, "invalid trailing UTF-8 octet");
	diag_free(&d);
	/* Cut short by the end of the file. */
	assert_null(parse("a: \xc3", &d));
	assert_one_error(&d, 1, 4, "not valid UTF-8 text: incomplete UTF-8 octet sequence");
	diag_free(&d);
	/* An overlong encoding of '/'. */
	assert_null(parse("a: \xc0\xaf\n", &d));
	assert_one_error(&d, 1, 4, "not valid UTF-8 text");
	diag_free(&d);
}

static void syntax_errors(void **state)
{
	struct diag d;

	assert_null(parse("a: [1, 2\nb: 3\n", &d));
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.items[0].msg, "YAML syntax error"));
	assert_non_null(strstr(d.items[0].msg, "(line 1)"));   /* where the list began */
	diag_free(&d);
	assert_null(parse("a: 1\n b: 2\n", &d));
	assert_one_error(&d, 2, 3, "YAML syntax error: mapping values are not allowed");
	diag_free(&d);
	assert_null(parse("a: 'open\n", &d));
	assert_one_error(&d, 2, 1, "YAML syntax error");
	diag_free(&d);
	assert_null(parse("\ta: 1\n", &d));                     /* tab indentation */
	assert_int_equal(d.errors, 1);
	diag_free(&d);
}

static void null_scalars(void **state)
{
	struct diag d;
	struct ynode *root = parse("a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: 'null'\ng: nil\n"
				   "h: \"\"\n", &d);

	assert_non_null(root);
	assert_true(ytree_is_null(ytree_get(root, "a")));
	assert_true(ytree_is_null(ytree_get(root, "b")));
	assert_true(ytree_is_null(ytree_get(root, "c")));
	assert_true(ytree_is_null(ytree_get(root, "d")));
	assert_true(ytree_is_null(ytree_get(root, "e")));
	assert_false(ytree_is_null(ytree_get(root, "f")));    /* quoted: the word null */
	assert_false(ytree_is_null(ytree_get(root, "g")));
	assert_false(ytree_is_null(ytree_get(root, "h")));    /* quoted empty string */
	assert_false(ytree_is_null(root));
	assert_false(ytree_is_null(NULL));
	assert_string_equal(ytree_kind_name(ytree_get(root, "e")), "null");
	ytree_free(root);
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tree_shape),
		cmocka_unit_test(lines_and_columns),
		cmocka_unit_test(duplicate_keys),
		cmocka_unit_test(non_scalar_keys_refused),
		cmocka_unit_test(aliases_refused_anchors_allowed),
		cmocka_unit_test(one_document_only),
		cmocka_unit_test(depth_limit),
		cmocka_unit_test(size_limit),
		cmocka_unit_test(node_and_key_limits),
		cmocka_unit_test(nul_characters),
		cmocka_unit_test(empty_documents),
		cmocka_unit_test(non_mapping_roots),
		cmocka_unit_test(invalid_utf8),
		cmocka_unit_test(syntax_errors),
		cmocka_unit_test(null_scalars),
	};
	return cmocka_run_group_tests_name("ytree", tests, NULL, NULL);
}
