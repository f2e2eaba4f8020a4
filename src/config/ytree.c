/*
 * Event-driven YAML loading: libyaml tokenises, this file builds the tree. Duplicate
 * keys, non-scalar keys, aliases, multiple documents, excessive nesting and embedded NUL
 * characters are reported here, so the schema layer only sees well-formed trees.
 */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/ytree.h"

struct builder {
	yaml_parser_t parser;
	struct diag *d;
	const char *text;
	size_t len;
	size_t nodes;
	bool failed;
};

static struct bh_loc mark_loc(yaml_mark_t m)
{
	return (struct bh_loc){ (uint32_t)m.line + 1, (uint32_t)m.column + 1 };
}

/* libyaml's reader errors give a byte offset, not a line: count it ourselves. */
static struct bh_loc offset_loc(const char *text, size_t len, size_t off)
{
	struct bh_loc loc = { 1, 1 };
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			loc.line++;
			loc.col = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			loc.col++;
		}
	}
	return loc;
}

static void report_parser_error(struct builder *b)
{
	yaml_parser_t *p = &b->parser;
	const char *problem = p->problem ? p->problem : "malformed YAML";

	if (p->error == YAML_READER_ERROR && strstr(problem, "control characters")) {
		/* Valid UTF-8, but a character YAML does not allow (a raw NUL, say). */
		diag_error(b->d, offset_loc(b->text, b->len, p->problem_offset),
			   "character 0x%02x is not allowed in a system file: %s", p->problem_value,
			   problem);
	} else if (p->error == YAML_READER_ERROR) {
		/* libyaml points past a sequence cut short; back up to its leading byte. */
		size_t off = p->problem_offset < b->len ? p->problem_offset : b->len;
		if (strstr(problem, "trailing")) {
			while (off > 0 && ((unsigned char)b->text[off - 1] & 0xC0) == 0x80)
				off--;
			if (off > 0 && (unsigned char)b->text[off - 1] >= 0xC0)
				off--;
		}
		diag_error(b->d, offset_loc(b->text, b->len, off), "not valid UTF-8 text: %s",
			   problem);
	} else if (p->error == YAML_MEMORY_ERROR) {
		diag_error(b->d, (struct bh_loc){ 1, 1 }, "out of memory while parsing");
	} else if (p->context) {
		diag_error(b->d, mark_loc(p->problem_mark), "YAML syntax error: %s %s (line %zu)",
			   problem, p->context, p->context_mark.line + 1);
	} else {
		diag_error(b->d, mark_loc(p->problem_mark), "YAML syntax error: %s", problem);
	}
	b->failed = true;
}

static bool next_event(struct builder *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev)) {
		report_parser_error(b);
		return false;
	}
	return true;
}

static struct ynode *new_node(struct builder *b, enum ynode_kind kind, yaml_mark_t mark)
{
	struct ynode *n;

	if (++b->nodes > YTREE_MAX_NODES) {
		diag_error(b->d, mark_loc(mark), "too many YAML nodes (more than %d)", YTREE_MAX_NODES);
		b->failed = true;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		abort();
	n->kind = kind;
	n->loc = mark_loc(mark);
	return n;
}

static void push(struct ynode *n, struct ynode *key, struct ynode *val)
{
	if ((n->n & (n->n - 1)) == 0) {   /* grow at powers of two */
		size_t cap = n->n ? n->n * 2 : 4;
		n->vals = realloc(n->vals, cap * sizeof(*n->vals));
		if (n->kind == YNODE_MAP)
			n->keys = realloc(n->keys, cap * sizeof(*n->keys));
		if (!n->vals || (n->kind == YNODE_MAP && !n->keys))
			abort();
	}
	if (n->kind == YNODE_MAP)
		n->keys[n->n] = key;
	n->vals[n->n++] = val;
}

static struct ynode *build_node(struct builder *b, yaml_event_t *ev, int depth);

static struct ynode *build_scalar(struct builder *b, yaml_event_t *ev)
{
	struct ynode *n = new_node(b, YNODE_SCALAR, ev->start_mark);

	if (!n)
		return NULL;
	if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length)) {
		diag_error(b->d, n->loc, "value contains a NUL character");
		b->failed = true;
	}
	n->scalar = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
	if (!n->scalar)
		abort();
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return n;
}

/* Reads children until the matching end event. For mappings, children alternate
 * key, value. */
static struct ynode *build_collection(struct builder *b, yaml_event_t *start, int depth)
{
	bool is_map = start->type == YAML_MAPPING_START_EVENT;
	yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	struct ynode *n = new_node(b, is_map ? YNODE_MAP : YNODE_SEQ, start->start_mark);

	if (!n)
		return NULL;
	if (depth > YTREE_MAX_DEPTH) {
		diag_error(b->d, n->loc, "nesting deeper than %d levels", YTREE_MAX_DEPTH);
		b->failed = true;
		ytree_free(n);
		return NULL;
	}
	for (;;) {
		yaml_event_t ev;
		struct ynode *key = NULL, *val;

		if (!next_event(b, &ev))
			goto fail;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return n;
		}
		if (is_map) {
			key = build_node(b, &ev, depth + 1);
			yaml_event_delete(&ev);
			if (!key)
				goto fail;
			if (!next_event(b, &ev)) {
				ytree_free(key);
				goto fail;
			}
		}
		val = build_node(b, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!val) {
			ytree_free(key);
			goto fail;
		}
		if (n->n >= (is_map ? YTREE_MAX_KEYS : YTREE_MAX_NODES)) {
			diag_error(b->d, n->loc, "mapping with more than %d keys", YTREE_MAX_KEYS);
			b->failed = true;
			ytree_free(key);
			ytree_free(val);
			goto fail;
		}
		if (is_map && key->kind != YNODE_SCALAR) {
			diag_error(b->d, key->loc, "mapping keys must be plain names, not a %s",
				   ytree_kind_name(key));
			b->failed = true;
		} else if (is_map && ytree_get(n, key->scalar)) {
			diag_error(b->d, key->loc, "duplicate key '%s' (first given at line %u)",
				   key->scalar, ytree_get_key(n, key->scalar)->loc.line);
		}
		push(n, key, val);
	}
fail:
	ytree_free(n);
	return NULL;
}

static struct ynode *build_node(struct builder *b, yaml_event_t *ev, int depth)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return build_scalar(b, ev);
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		return build_collection(b, ev, depth);
	case YAML_ALIAS_EVENT:
		diag_error(b->d, mark_loc(ev->start_mark),
			   "YAML aliases (*%s) are not supported in system files",
			   (const char *)ev->data.alias.anchor);
		break;
	default:
		diag_error(b->d, mark_loc(ev->start_mark), "unexpected YAML structure");
		break;
	}
	b->failed = true;
	return NULL;
}

/* Expects STREAM-START, DOCUMENT-START, node, DOCUMENT-END, then STREAM-END. */
static struct ynode *build_document(struct builder *b)
{
	yaml_event_t ev;
	struct ynode *root = NULL;

	if (!next_event(b, &ev))
		return NULL;
	yaml_event_delete(&ev);                         /* stream start */
	if (!next_event(b, &ev))
		return NULL;
	if (ev.type == YAML_STREAM_END_EVENT) {         /* empty file */
		yaml_event_delete(&ev);
		root = new_node(b, YNODE_MAP, (yaml_mark_t){ 0 });
		return root;
	}
	yaml_event_delete(&ev);                         /* document start */
	if (!next_event(b, &ev))
		return NULL;
	root = build_node(b, &ev, 1);
	yaml_event_delete(&ev);
	if (!root)
		return NULL;
	if (!next_event(b, &ev))                        /* document end */
		goto fail;
	yaml_event_delete(&ev);
	if (!next_event(b, &ev))
		goto fail;
	if (ev.type != YAML_STREAM_END_EVENT) {
		diag_error(b->d, mark_loc(ev.start_mark),
			   "a system file holds one YAML document; found another here");
		yaml_event_delete(&ev);
		goto fail;
	}
	yaml_event_delete(&ev);
	return root;
fail:
	ytree_free(root);
	return NULL;
}

struct ynode *ytree_parse(const char *text, size_t len, struct diag *d)
{
	struct builder b = { .d = d, .text = text, .len = len };
	struct ynode *root;

	if (len > YTREE_MAX_BYTES) {
		/* cfg_read stops one byte past the limit, so len is not the file's size. */
		diag_error(d, (struct bh_loc){ 1, 1 }, "file is larger than %u bytes, the limit for "
			   "system files", YTREE_MAX_BYTES);
		return NULL;
	}
	if (!yaml_parser_initialize(&b.parser))
		abort();
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
	root = build_document(&b);
	yaml_parser_delete(&b.parser);
	if (b.failed) {
		ytree_free(root);
		return NULL;
	}
	if (root && ytree_is_null(root)) {           /* a document that is only "~" or blank */
		ytree_free(root);
		root = calloc(1, sizeof(*root));
		if (!root)
			abort();
		root->kind = YNODE_MAP;
		root->loc = (struct bh_loc){ 1, 1 };
	}
	return root;
}

void ytree_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			ytree_free(n->keys[i]);
		ytree_free(n->vals[i]);
	}
	free(n->keys);
	free(n->vals);
	free(n->scalar);
	free(n);
}

const struct ynode *ytree_get_key(const struct ynode *m, const char *key)
{
	if (!m || m->kind != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (m->keys[i]->kind == YNODE_SCALAR && !strcmp(m->keys[i]->scalar, key))
			return m->keys[i];
	return NULL;
}

const struct ynode *ytree_get(const struct ynode *m, const char *key)
{
	if (!m || m->kind != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (m->keys[i]->kind == YNODE_SCALAR && !strcmp(m->keys[i]->scalar, key))
			return m->vals[i];
	return NULL;
}

bool ytree_is_null(const struct ynode *n)
{
	if (!n || n->kind != YNODE_SCALAR || !n->plain)
		return false;
	return !*n->scalar || !strcmp(n->scalar, "~") || !strcmp(n->scalar, "null") ||
	       !strcmp(n->scalar, "Null") || !strcmp(n->scalar, "NULL");
}

const char *ytree_kind_name(const struct ynode *n)
{
	if (ytree_is_null(n))
		return "null";
	switch (n->kind) {
	case YNODE_MAP: return "mapping";
	case YNODE_SEQ: return "list";
	default:        return "scalar";
	}
}
