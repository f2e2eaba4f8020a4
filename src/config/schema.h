/*
 * A small declarative schema engine: tables of fields (key, type, where the value and
 * its position go in a struct) drive decoding of YAML mappings into the system model,
 * with one message per unknown key, wrong type, bad name or missing required key.
 */
#ifndef BH_SCHEMA_H
#define BH_SCHEMA_H

#include <stddef.h>
#include <sys/types.h>

#include "config/diag.h"
#include "config/ytree.h"

enum ftype {
	FT_NAME,      /* char *: [a-z0-9-]{1,32} */
	FT_PORTNAME,  /* char *: [A-Za-z0-9_-]{1,32} */
	FT_STRING,    /* char * */
	FT_PATH,      /* char *: resolved against the system file's directory */
	FT_SIZE,      /* uint64_t bytes */
	FT_TIME,      /* uint64_t ns */
	FT_BOOL,      /* bool */
	FT_U32,       /* uint32_t */
	FT_ENUM,      /* int index into enum_names */
	FT_CPUS,      /* struct bh_cpuset, count (unsigned) at count_off */
	FT_MAC,       /* uint8_t[6] */
	FT_REF,       /* struct bh_ref */
	FT_REFLIST,   /* struct bh_ref *, count at count_off */
	FT_MAP,       /* embedded struct described by sub */
	FT_LIST,      /* array of structs described by sub, count at count_off */
};

struct schema;

struct field {
	const char *key;
	enum ftype type;
	size_t off;                 /* where the value goes */
	ssize_t at_off;             /* where its struct bh_loc goes; -1 for nowhere */
	bool required;
	const char *const *enum_names;
	const struct schema *sub;
	size_t count_off;
	unsigned max;               /* FT_LIST / FT_REFLIST: most items accepted */
};

struct schema {
	const char *what;           /* "partition", "disk", ... for messages */
	size_t size;
	size_t at_off;              /* struct bh_loc of the whole mapping */
	void (*init)(void *obj);    /* fills defaults before decoding */
	const struct field *fields;
};

struct schema_ctx {
	struct diag *d;
	const char *dir;            /* the system file's directory */
};

/* Decodes mapping n into obj (of s->size bytes, zeroed by the caller). */
void schema_decode_map(struct schema_ctx *c, const struct schema *s, const struct ynode *n,
		       void *obj);

/* Frees everything schema_decode_map allocated inside obj (not obj itself). */
void schema_free(const struct schema *s, void *obj);

/* Closest key among candidates within edit distance 2, or NULL. */
const char *schema_suggest(const char *word, const char *const *candidates, size_t n);

bool schema_valid_name(const char *s);

#endif
