/*
 * Decoding YAML trees into model structs from field tables. Every problem is reported
 * with the position of the offending key or value and decoding carries on, so one run
 * lists them all.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "config/schema.h"
#include "config/system.h"

#define FIELD_PTR(obj, off, type) ((type *)((char *)(obj) + (off)))

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

bool schema_valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > BH_MAX_NAME)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
			return false;
	return true;
}

static bool valid_port_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > BH_MAX_NAME)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* Damerau-free Levenshtein distance, bounded: words here are short. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

const char *schema_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < n; i++) {
		size_t dist = edit_distance(word, candidates[i]);
		if (dist < best_d) {
			best_d = dist;
			best = candidates[i];
		}
	}
	return best;
}

static void report_unknown_key(struct schema_ctx *c, const struct schema *s,
			       const struct ynode *key)
{
	const char *names[64];
	size_t n = 0;
	const char *hint;

	for (const struct field *f = s->fields; f->key && n < 64; f++)
		names[n++] = f->key;
	hint = schema_suggest(key->scalar, names, n);
	if (hint)
		diag_error(c->d, key->loc, "unknown key '%s' in %s; did you mean '%s'?",
			   key->scalar, s->what, hint);
	else
		diag_error(c->d, key->loc, "unknown key '%s' in %s", key->scalar, s->what);
}

static bool want_scalar(struct schema_ctx *c, const struct field *f, const struct ynode *v,
			const char *expect)
{
	if (v->kind == YNODE_SCALAR && !ytree_is_null(v))
		return true;
	diag_error(c->d, v->loc, "'%s' must be %s, not a %s", f->key, expect, ytree_kind_name(v));
	return false;
}

static char *resolve_path(const char *dir, const char *path)
{
	char *out;

	if (path[0] == '/' || !dir || !*dir)
		return xstrdup(path);
	if (asprintf(&out, "%s/%s", dir, path) < 0)
		abort();
	return out;
}

static void decode_enum(struct schema_ctx *c, const struct field *f, const struct ynode *v,
			int *out)
{
	char list[256] = "";

	for (int i = 0; f->enum_names[i]; i++) {
		if (!strcmp(v->scalar, f->enum_names[i])) {
			*out = i;
			return;
		}
		if (i)
			strncat(list, " | ", sizeof(list) - strlen(list) - 1);
		strncat(list, f->enum_names[i], sizeof(list) - strlen(list) - 1);
	}
	diag_error(c->d, v->loc, "'%s' must be one of %s, not '%s'", f->key, list, v->scalar);
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end;
}

static void decode_cpus(struct schema_ctx *c, const struct field *f, const struct ynode *v,
			void *obj)
{
	struct bh_cpuset *set = FIELD_PTR(obj, f->off, struct bh_cpuset);
	unsigned *count = FIELD_PTR(obj, f->count_off, unsigned);

	if (v->kind != YNODE_SEQ) {
		diag_error(c->d, v->loc, "'%s' must be a list of CPU numbers like [0, 1], not a %s",
			   f->key, ytree_kind_name(v));
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct ynode *it = v->vals[i];
		uint64_t cpu;

		if (it->kind != YNODE_SCALAR || !parse_u64(it->scalar, &cpu)) {
			diag_error(c->d, it->loc, "'%s' entries must be CPU numbers, not '%s'", f->key,
				   it->kind == YNODE_SCALAR ? it->scalar : ytree_kind_name(it));
			continue;
		}
		if (cpu >= BH_MAX_CPUS) {
			diag_error(c->d, it->loc, "CPU %llu does not exist (bulkhead supports CPUs 0-%d)",
				   (unsigned long long)cpu, BH_MAX_CPUS - 1);
			continue;
		}
		if (bh_cpuset_has(set, (unsigned)cpu)) {
			diag_warning(c->d, it->loc, "CPU %llu is listed twice in '%s'",
				     (unsigned long long)cpu, f->key);
			continue;
		}
		bh_cpuset_set(set, (unsigned)cpu);
		(*count)++;
	}
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return false;
		mac[i] = (uint8_t)strtoul((char[3]){ s[0], s[1], 0 }, NULL, 16);
		s += 2;
		if (i < 5 && *s++ != ':')
			return false;
	}
	return *s == '\0';
}

static void decode_ref(const struct ynode *v, struct bh_ref *ref)
{
	ref->name = xstrdup(v->scalar);
	ref->idx = -1;
	ref->at = v->loc;
}

static void decode_reflist(struct schema_ctx *c, const struct field *f, const struct ynode *v,
			   void *obj)
{
	struct bh_ref **refs = FIELD_PTR(obj, f->off, struct bh_ref *);
	unsigned *count = FIELD_PTR(obj, f->count_off, unsigned);

	if (v->kind != YNODE_SEQ) {
		diag_error(c->d, v->loc, "'%s' must be a list of names, not a %s", f->key,
			   ytree_kind_name(v));
		return;
	}
	if (v->n > f->max) {
		diag_error(c->d, v->loc, "'%s' lists %zu names; at most %u are allowed", f->key,
			   v->n, f->max);
		return;
	}
	*refs = calloc(v->n ? v->n : 1, sizeof(**refs));
	if (!*refs)
		abort();
	for (size_t i = 0; i < v->n; i++) {
		if (v->vals[i]->kind != YNODE_SCALAR || ytree_is_null(v->vals[i])) {
			diag_error(c->d, v->vals[i]->loc, "'%s' entries must be names, not a %s",
				   f->key, ytree_kind_name(v->vals[i]));
			continue;
		}
		decode_ref(v->vals[i], &(*refs)[(*count)++]);
	}
}

static void decode_list(struct schema_ctx *c, const struct field *f, const struct ynode *v,
			void *obj)
{
	void **items = FIELD_PTR(obj, f->off, void *);
	unsigned *count = FIELD_PTR(obj, f->count_off, unsigned);

	if (ytree_is_null(v))
		return;
	if (v->kind != YNODE_SEQ) {
		diag_error(c->d, v->loc, "'%s' must be a list of %s entries, not a %s", f->key,
			   f->sub->what, ytree_kind_name(v));
		return;
	}
	if (v->n > f->max) {
		diag_error(c->d, v->loc, "'%s' has %zu entries; at most %u are allowed", f->key,
			   v->n, f->max);
		return;
	}
	*items = calloc(v->n ? v->n : 1, f->sub->size);
	if (!*items)
		abort();
	/* An entry that is not a mapping is reported and left out, so no later check
	 * complains about the keys it lacks. */
	for (size_t i = 0; i < v->n; i++) {
		void *item = (char *)*items + (size_t)*count * f->sub->size;

		schema_decode_map(c, f->sub, v->vals[i], item);
		if (v->vals[i]->kind == YNODE_MAP)
			(*count)++;
		else
			memset(item, 0, f->sub->size);  /* nothing was allocated in it */
	}
}

static void decode_scalar_field(struct schema_ctx *c, const struct field *f,
				const struct ynode *v, void *obj)
{
	void *p = (char *)obj + f->off;
	uint64_t u;
	int rc;

	switch (f->type) {
	case FT_NAME:
		if (!want_scalar(c, f, v, "a name"))
			return;
		if (!schema_valid_name(v->scalar))
			diag_error(c->d, v->loc, "'%s' value '%s' is not a valid name: use 1 to %d "
				   "characters from a-z, 0-9 and '-'", f->key, v->scalar, BH_MAX_NAME);
		*(char **)p = xstrdup(v->scalar);
		break;
	case FT_PORTNAME:
		if (!want_scalar(c, f, v, "a port name"))
			return;
		if (!valid_port_name(v->scalar))
			diag_error(c->d, v->loc, "'%s' value '%s' is not a valid port name: use 1 to %d "
				   "characters from A-Z, a-z, 0-9, '_' and '-'", f->key, v->scalar,
				   BH_MAX_NAME);
		*(char **)p = xstrdup(v->scalar);
		break;
	case FT_STRING:
		if (want_scalar(c, f, v, "a string"))
			*(char **)p = xstrdup(v->scalar);
		break;
	case FT_PATH:
		if (want_scalar(c, f, v, "a path"))
			*(char **)p = resolve_path(c->dir, v->scalar);
		break;
	case FT_SIZE:
		if (!want_scalar(c, f, v, "a size like 64M"))
			return;
		rc = units_parse_size(v->scalar, &u);
		if (rc == -ERANGE || (!rc && u > INT64_MAX))    /* off_t and JSON are signed */
			diag_error(c->d, v->loc, "'%s' value '%s' is too large", f->key, v->scalar);
		else if (rc)
			diag_error(c->d, v->loc, "'%s' must be a size like 4K, 64M or 1G (or bytes), "
				   "not '%s'", f->key, v->scalar);
		else
			*(uint64_t *)p = u;
		break;
	case FT_TIME:
		if (!want_scalar(c, f, v, "a time like 10ms"))
			return;
		rc = units_parse_time(v->scalar, &u);
		if (rc == -ERANGE || (!rc && u > INT64_MAX))
			diag_error(c->d, v->loc, "'%s' value '%s' is too large", f->key, v->scalar);
		else if (rc)
			diag_error(c->d, v->loc, "'%s' must be a time with a unit (ns, us, ms, s) like "
				   "10ms, not '%s'", f->key, v->scalar);
		else
			*(uint64_t *)p = u;
		break;
	case FT_BOOL:
		if (!want_scalar(c, f, v, "true or false"))
			return;
		if (!strcmp(v->scalar, "true"))
			*(bool *)p = true;
		else if (!strcmp(v->scalar, "false"))
			*(bool *)p = false;
		else
			diag_error(c->d, v->loc, "'%s' must be true or false, not '%s'", f->key,
				   v->scalar);
		break;
	case FT_U32:
		if (!want_scalar(c, f, v, "a number"))
			return;
		if (!parse_u64(v->scalar, &u) || u > UINT32_MAX)
			diag_error(c->d, v->loc, "'%s' must be a whole number from 0 to %u, not '%s'",
				   f->key, UINT32_MAX, v->scalar);
		else
			*(uint32_t *)p = (uint32_t)u;
		break;
	case FT_ENUM:
		if (want_scalar(c, f, v, "a word"))
			decode_enum(c, f, v, (int *)p);
		break;
	case FT_MAC:
		if (!want_scalar(c, f, v, "a MAC address"))
			return;
		if (!parse_mac(v->scalar, (uint8_t *)p))
			diag_error(c->d, v->loc, "'%s' value '%s' is not a MAC address like "
				   "\"52:54:00:12:34:56\"", f->key, v->scalar);
		break;
	case FT_REF:
		if (want_scalar(c, f, v, "a name"))
			decode_ref(v, (struct bh_ref *)p);
		break;
	default:
		abort();
	}
}

static void decode_field(struct schema_ctx *c, const struct field *f, const struct ynode *v,
			 void *obj)
{
	switch (f->type) {
	case FT_CPUS:
		decode_cpus(c, f, v, obj);
		break;
	case FT_REFLIST:
		decode_reflist(c, f, v, obj);
		break;
	case FT_LIST:
		decode_list(c, f, v, obj);
		break;
	case FT_MAP:
		schema_decode_map(c, f->sub, v, (char *)obj + f->off);
		break;
	default:
		decode_scalar_field(c, f, v, obj);
	}
}

void schema_decode_map(struct schema_ctx *c, const struct schema *s, const struct ynode *n,
		       void *obj)
{
	uint64_t seen = 0;

	if (s->init)
		s->init(obj);
	*FIELD_PTR(obj, s->at_off, struct bh_loc) = n->loc;
	if (n->kind != YNODE_MAP) {
		diag_error(c->d, n->loc, "expected a mapping of keys to values for the %s, found a %s",
			   s->what, ytree_kind_name(n));
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *key = n->keys[i], *val = n->vals[i];
		const struct field *f;
		unsigned idx = 0;

		if (key->kind != YNODE_SCALAR)
			continue;                        /* reported by the tree builder */
		for (f = s->fields; f->key && strcmp(f->key, key->scalar); f++)
			idx++;
		if (!f->key) {
			report_unknown_key(c, s, key);
			continue;
		}
		if (seen & (1ULL << idx))
			continue;                        /* duplicate key, already reported */
		seen |= 1ULL << idx;
		if (f->at_off >= 0)
			*FIELD_PTR(obj, f->at_off, struct bh_loc) = val->loc;
		decode_field(c, f, val, obj);
	}
	for (unsigned idx = 0; s->fields[idx].key; idx++)
		if (s->fields[idx].required && !(seen & (1ULL << idx)))
			diag_error(c->d, n->loc, "%s is missing the required key '%s'", s->what,
				   s->fields[idx].key);
}

void schema_free(const struct schema *s, void *obj)
{
	for (const struct field *f = s->fields; f->key; f++) {
		void *p = (char *)obj + f->off;

		switch (f->type) {
		case FT_NAME: case FT_PORTNAME: case FT_STRING: case FT_PATH:
			free(*(char **)p);
			break;
		case FT_REF:
			free(((struct bh_ref *)p)->name);
			break;
		case FT_REFLIST: {
			struct bh_ref *refs = *(struct bh_ref **)p;
			unsigned n = *FIELD_PTR(obj, f->count_off, unsigned);
			for (unsigned i = 0; i < n; i++)
				free(refs[i].name);
			free(refs);
			break;
		}
		case FT_MAP:
			schema_free(f->sub, p);
			break;
		case FT_LIST: {
			char *items = *(char **)p;
			unsigned n = *FIELD_PTR(obj, f->count_off, unsigned);
			for (unsigned i = 0; i < n; i++)
				schema_free(f->sub, items + (size_t)i * f->sub->size);
			free(items);
			break;
		}
		default:
			break;
		}
	}
}
