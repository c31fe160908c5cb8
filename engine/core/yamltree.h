/*
 * yamltree: YAML text → a tree of nodes that keep their line and column
 * (libyaml's event API). Anchors, aliases, tags and duplicate keys are
 * refused; depth is bounded.
 */
#ifndef MM_YAMLTREE_H
#define MM_YAMLTREE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "diag.h"

enum pnode_kind { PN_SCALAR, PN_MAP, PN_SEQ };

struct pnode {
	enum pnode_kind kind;
	int line, col;        /* 1-based */
	char *scalar;         /* PN_SCALAR */
	int plain;            /* unquoted scalar: may be a bool or number */
	size_t n;             /* entries of a map or seq */
	struct pnode **keys;  /* PN_MAP: key scalars */
	struct pnode **items; /* PN_MAP values, PN_SEQ items */
};

/* Value node of key in a map, or NULL. */
const struct pnode *pnode_get(const struct pnode *map, const char *key);
/* Parses YAML into a node tree (exposed for the fuzzer and tests). Caller frees with pnode_free. */
int yaml_to_pnode(const char *text, size_t len, struct pnode **out, struct diags *d);
void pnode_free(struct pnode *);
/* The node as JSON, every scalar a string (for drift comparisons). Caller frees. */
cJSON *pnode_to_json(const struct pnode *);

#endif
