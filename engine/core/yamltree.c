/*
 * YAML → struct pnode tree with libyaml's event parser. Each node keeps the
 * line and column libyaml marks it with, so any later error can point at
 * it. Anchors and aliases are refused: a plan reviewed in git should read
 * the same as it runs.
 */
#include "yamltree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"
#include "util.h"

#define MAX_DEPTH 64

static struct pnode *pnode_new(enum pnode_kind kind, const yaml_mark_t *m)
{
	struct pnode *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

void pnode_free(struct pnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			pnode_free(n->keys[i]);
		pnode_free(n->items[i]);
	}
	free(n->keys);
	free(n->items);
	free(n->scalar);
	free(n);
}

static void pnode_append(struct pnode *parent, struct pnode *key, struct pnode *item)
{
	parent->items = xrealloc(parent->items, (parent->n + 1) * sizeof(*parent->items));
	if (parent->kind == PN_MAP) {
		parent->keys = xrealloc(parent->keys, (parent->n + 1) * sizeof(*parent->keys));
		parent->keys[parent->n] = key;
	}
	parent->items[parent->n++] = item;
}

struct ybuilder {
	yaml_parser_t parser;
	struct diags *d;
	int failed;
};

static struct pnode *parse_node(struct ybuilder *yb, yaml_event_t *ev, int depth);

static int next_event(struct ybuilder *yb, yaml_event_t *ev)
{
	if (yaml_parser_parse(&yb->parser, ev))
		return 0;
	diag_add(yb->d, (int)yb->parser.problem_mark.line + 1, (int)yb->parser.problem_mark.column + 1,
		 "invalid YAML: %s%s%s", yb->parser.problem ? yb->parser.problem : "syntax error",
		 yb->parser.context ? " " : "", yb->parser.context ? yb->parser.context : "");
	yb->failed = 1;
	return -1;
}

static int map_has_key(const struct pnode *map, const char *key)
{
	for (size_t i = 0; i < map->n; i++)
		if (map->keys[i]->kind == PN_SCALAR && !strcmp(map->keys[i]->scalar, key))
			return 1;
	return 0;
}

/* Reads children until the matching end event; ev holds the start event. */
static struct pnode *parse_collection(struct ybuilder *yb, yaml_event_t *start, int depth)
{
	int is_map = start->type == YAML_MAPPING_START_EVENT;
	yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	struct pnode *n = pnode_new(is_map ? PN_MAP : PN_SEQ, &start->start_mark);

	for (;;) {
		yaml_event_t ev;
		struct pnode *key = NULL, *val;

		if (next_event(yb, &ev) < 0)
			goto fail;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return n;
		}
		if (is_map) {
			key = parse_node(yb, &ev, depth + 1);
			yaml_event_delete(&ev);
			if (!key)
				goto fail;
			if (key->kind != PN_SCALAR) {
				diag_add(yb->d, key->line, key->col, "a key must be a plain string");
			} else if (map_has_key(n, key->scalar)) {
				diag_add(yb->d, key->line, key->col, "duplicate key '%s'", key->scalar);
			}
			if (next_event(yb, &ev) < 0) {
				pnode_free(key);
				goto fail;
			}
		}
		val = parse_node(yb, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!val) {
			pnode_free(key);
			goto fail;
		}
		pnode_append(n, key, val);
	}
fail:
	pnode_free(n);
	return NULL;
}

static struct pnode *parse_node(struct ybuilder *yb, yaml_event_t *ev, int depth)
{
	struct pnode *n;

	if (depth > MAX_DEPTH) {
		diag_add(yb->d, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "nesting deeper than %d levels", MAX_DEPTH);
		yb->failed = 1;
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n = pnode_new(PN_SCALAR, &ev->start_mark);
		n->scalar = xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		return n;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: return parse_collection(yb, ev, depth);
	case YAML_ALIAS_EVENT:
		diag_add(yb->d, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "YAML aliases are not supported in plans: write the value out");
		yb->failed = 1;
		return NULL;
	default:
		diag_add(yb->d, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			 "unexpected YAML event");
		yb->failed = 1;
		return NULL;
	}
}

/* Skips STREAM_START and DOCUMENT_START; the root is the first node. */
static int parse_document(struct ybuilder *yb, struct pnode **root)
{
	yaml_event_t ev;

	for (;;) {
		if (next_event(yb, &ev) < 0)
			return -1;
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		break;
	}
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		diag_add(yb->d, 1, 1, "the plan is empty");
		return -1;
	}
	*root = parse_node(yb, &ev, 0);
	yaml_event_delete(&ev);
	if (!*root)
		return -1;
	if (next_event(yb, &ev) < 0)
		return -1;
	yaml_event_delete(&ev); /* DOCUMENT_END */
	if (next_event(yb, &ev) < 0)
		return -1;
	if (ev.type != YAML_STREAM_END_EVENT) {
		diag_add(yb->d, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
			 "a plan holds one YAML document; found another");
		yb->failed = 1;
	}
	yaml_event_delete(&ev);
	return 0;
}

int yaml_to_pnode(const char *text, size_t len, struct pnode **out, struct diags *d)
{
	struct ybuilder yb = { .d = d };
	struct pnode *root = NULL;

	*out = NULL;
	if (!yaml_parser_initialize(&yb.parser)) {
		diag_add(d, 1, 1, "cannot initialise the YAML parser");
		return MM_ERR;
	}
	yaml_parser_set_input_string(&yb.parser, (const unsigned char *)text, len);
	parse_document(&yb, &root);
	yaml_parser_delete(&yb.parser);
	/* A tree with a duplicate key is still returned, so the schema checks
	 * can report everything else in the same run. */
	*out = root;
	return root && !yb.failed ? 0 : MM_EINVAL;
}

cJSON *pnode_to_json(const struct pnode *n)
{
	cJSON *out;

	if (n->kind == PN_SCALAR)
		return cJSON_CreateString(n->scalar);
	out = n->kind == PN_MAP ? cJSON_CreateObject() : cJSON_CreateArray();
	for (size_t i = 0; i < n->n; i++) {
		cJSON *v = pnode_to_json(n->items[i]);

		if (n->kind == PN_MAP)
			cJSON_AddItemToObject(out, n->keys[i]->kind == PN_SCALAR ? n->keys[i]->scalar : "?", v);
		else
			cJSON_AddItemToArray(out, v);
	}
	return out;
}

const struct pnode *pnode_get(const struct pnode *map, const char *key)
{
	if (!map || map->kind != PN_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (map->keys[i]->kind == PN_SCALAR && !strcmp(map->keys[i]->scalar, key))
			return map->items[i];
	return NULL;
}
