/*
 * A YAML document as a small tree of mappings, sequences and scalars, each node
 * remembering its line and column. Built with libyaml's event parser under hard limits
 * (size, depth, no aliases) so hostile input cannot exhaust memory or time.
 */
#ifndef BH_YTREE_H
#define BH_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/diag.h"

#define YTREE_MAX_BYTES (1u << 20)   /* system files are small; refuse anything larger */
#define YTREE_MAX_DEPTH 32
#define YTREE_MAX_NODES 200000
#define YTREE_MAX_KEYS  1024         /* per mapping; keeps duplicate detection cheap */

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_kind kind;
	struct bh_loc loc;
	char *scalar;           /* YNODE_SCALAR: NUL-terminated text */
	bool plain;             /* YNODE_SCALAR: unquoted (so `~`/`null` mean null) */
	size_t n;               /* MAP: pairs; SEQ: items */
	struct ynode **keys;    /* MAP only: scalar keys */
	struct ynode **vals;    /* MAP: values; SEQ: items */
};

/* Parses text[0..len). On success returns the root (a mapping, possibly empty for an
 * empty document); on failure reports to d and returns NULL. */
struct ynode *ytree_parse(const char *text, size_t len, struct diag *d);
void ytree_free(struct ynode *root);

/* Looks up key in a mapping; NULL when absent or when m is not a mapping. */
const struct ynode *ytree_get(const struct ynode *m, const char *key);
/* The key node itself (for its position); NULL when absent. */
const struct ynode *ytree_get_key(const struct ynode *m, const char *key);
/* True for an unquoted ~, null, Null, NULL or empty scalar. */
bool ytree_is_null(const struct ynode *n);
const char *ytree_kind_name(const struct ynode *n);

#endif
