/*
 * Per-port counters of net servers. A server reports each port's counters as it runs
 * (a `counters` event at most once a second while they change, and at the end); the
 * supervisor keeps the latest report per port rather than logging every one, folds it
 * into the port's totals when the server process ends (its counters start again from
 * zero after a restart), and logs those totals then: one `counters` event per port per
 * server life in events.jsonl. `status` shows totals plus the running process's count.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup.h"

struct sup_port_counters {
	json_t *key;         /* {partition, device} or {uplink}: identifies the port */
	json_t *total;       /* summed over ended server processes; NULL: none yet */
	json_t *latest;      /* the running process's last report; NULL: none */
};

struct sup_counters {
	struct sup_port_counters *port;
	unsigned n, cap;
};

static const char *const key_names[] = { "partition", "device", "network", "mac", "uplink" };

static bool is_count(const char *name, json_t *v)
{
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
		if (!strcmp(name, key_names[i]))
			return false;
	return json_is_integer(v) && strcmp(name, "event") && strcmp(name, "server");
}

static bool same_port(json_t *key, json_t *obj)
{
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++) {
		json_t *a = json_object_get(key, key_names[i]), *b = json_object_get(obj, key_names[i]);

		if (!!a != !!b || (a && !json_equal(a, b)))
			return false;
	}
	return true;
}

static struct sup_port_counters *find_port(struct sup_server *v, json_t *obj)
{
	struct sup_counters *c = v->counters;

	if (!c && !(c = v->counters = calloc(1, sizeof(*c))))
		return NULL;
	for (unsigned i = 0; i < c->n; i++)
		if (same_port(c->port[i].key, obj))
			return &c->port[i];
	if (c->n == c->cap) {
		unsigned cap = c->cap ? 2 * c->cap : 8;
		struct sup_port_counters *p = realloc(c->port, cap * sizeof(*p));

		if (!p)
			return NULL;
		c->port = p;
		c->cap = cap;
	}
	c->port[c->n].key = json_object();
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++) {
		json_t *k = json_object_get(obj, key_names[i]);

		if (k)
			json_object_set(c->port[c->n].key, key_names[i], k);
	}
	c->port[c->n].total = c->port[c->n].latest = NULL;
	return &c->port[c->n++];
}

/* a + b, counts only, either may be NULL; a new object. */
static json_t *sum(json_t *a, json_t *b)
{
	json_t *out = json_object(), *v;
	const char *name;

	json_object_foreach(a, name, v)
		if (is_count(name, v))
			json_object_set_new(out, name, json_integer(json_integer_value(v)));
	json_object_foreach(b, name, v)
		if (is_count(name, v))
			json_object_set_new(out, name, json_integer(json_integer_value(v) +
				json_integer_value(json_object_get(out, name))));
	return out;
}

bool sup_counters_event(struct sup_server *v, json_t *obj)
{
	const char *ev = json_string_value(json_object_get(obj, "event"));
	struct sup_port_counters *p;

	if (!ev || strcmp(ev, "counters"))
		return false;
	p = find_port(v, obj);
	if (p) {
		json_decref(p->latest);
		p->latest = json_incref(obj);
	}
	json_decref(obj);
	return true;
}

json_t *sup_counters_json(const struct sup_server *v)
{
	json_t *a = json_array();
	const struct sup_counters *c = v->counters;

	for (unsigned i = 0; c && i < c->n; i++) {
		json_t *o = json_deep_copy(c->port[i].key);
		json_t *t = sum(c->port[i].total, c->port[i].latest);

		json_object_update(o, t);
		json_decref(t);
		json_array_append_new(a, o);
	}
	return a;
}

void sup_counters_fold(struct sup *s, struct sup_server *v)
{
	struct sup_counters *c = v->counters;

	for (unsigned i = 0; c && i < c->n; i++) {
		struct sup_port_counters *p = &c->port[i];
		json_t *t, *ev;

		if (!p->latest)
			continue;
		t = sum(p->total, p->latest);
		json_decref(p->total);
		json_decref(p->latest);
		p->total = t;
		p->latest = NULL;
		ev = json_pack("{s:s, s:s}", "event", "counters", "server", v->cfg->name);
		json_object_update(ev, p->key);
		json_object_update(ev, t);
		sup_log_event(s, ev);
	}
}

void sup_counters_free(struct sup_server *v)
{
	struct sup_counters *c = v->counters;

	for (unsigned i = 0; c && i < c->n; i++) {
		json_decref(c->port[i].key);
		json_decref(c->port[i].total);
		json_decref(c->port[i].latest);
	}
	if (c)
		free(c->port);
	free(c);
	v->counters = NULL;
}
