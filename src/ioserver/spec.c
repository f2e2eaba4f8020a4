/*
 * The connection specs of the command line: supervised `--conn fd=N,partition=NAME,...`,
 * standalone `--disk FILE[,offset=N,size=N,readonly]`, and net uplinks `--uplink
 * network=NET,fd=M` / `--uplink tap=IFNAME`. Parsing only: what the fds hold is checked
 * by main.c and the class.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "ioserver/ioserver.h"
#include "ioserver/spec.h"

static int spec_uint(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static int spec_fd(const char *v, int *fd)
{
	uint64_t n;

	if (spec_uint(v, INT32_MAX, &n))
		return -EINVAL;
	*fd = (int)n;
	return 0;
}

/* Partition names: printable ASCII without the spec's own separators. */
static int spec_name(const char *v, char *out)
{
	size_t len = strlen(v);

	if (!len || len > IOS_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (v[i] <= ' ' || v[i] >= 0x7f || v[i] == ',' || v[i] == '=')
			return -EINVAL;
	memcpy(out, v, len + 1);
	return 0;
}

static int spec_bool(const char *v, bool *out)
{
	if (!strcmp(v, "0") || !strcmp(v, "1")) {
		*out = v[0] == '1';
		return 0;
	}
	return -EINVAL;
}

int ios_spec_parse_mac(const char *v, uint8_t mac[6])
{
	unsigned b[6];
	char end;

	if (strlen(v) != 17 ||
	    sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		if ((i < 5 && v[3 * i + 2] != ':') || !isxdigit((unsigned char)v[3 * i]) ||
		    !isxdigit((unsigned char)v[3 * i + 1]))
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

/* A guest's address: unicast and not all zeros. */
static int spec_mac(const char *v, struct ios_conn_spec *spec)
{
	static const uint8_t zero[6];

	if (ios_spec_parse_mac(v, spec->mac) || (spec->mac[0] & 1) ||
	    !memcmp(spec->mac, zero, sizeof(zero)))
		return -EINVAL;
	spec->has_mac = true;
	return 0;
}

void ios_spec_default(struct ios_conn_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->fd = spec->disk_fd = spec->out_fd = -1;
	spec->size = IOS_SIZE_UNSET;
}

/* What a bad value of key should have been, for the message. */
static const char *spec_conn_hint(const char *key)
{
	if (!strcmp(key, "mac"))
		return " (a unicast address like 02:62:68:00:01:00, not all zeros)";
	if (!strcmp(key, "rate"))
		return " (bytes per second, greater than 0)";
	if (!strcmp(key, "burst"))
		return " (bytes, at least 1518: one Ethernet frame)";
	if (!strcmp(key, "network") || !strcmp(key, "partition"))
		return " (1 to 64 printable characters without ',' or '=')";
	return "";
}

/* One key=value of a --conn spec. */
static int spec_conn_item(struct ios_conn_spec *spec, const char *key, const char *v)
{
	uint64_t n;

	if (!strcmp(key, "fd"))
		return spec_fd(v, &spec->fd);
	if (!strcmp(key, "partition"))
		return spec_name(v, spec->partition);
	if (!strcmp(key, "device")) {
		if (spec_uint(v, 255, &n))
			return -EINVAL;
		spec->device = (unsigned)n;
		return 0;
	}
	if (!strcmp(key, "disk-fd"))
		return spec_fd(v, &spec->disk_fd);
	if (!strcmp(key, "offset"))
		return spec_uint(v, INT64_MAX, &spec->offset);
	if (!strcmp(key, "size"))
		return spec_uint(v, INT64_MAX, &spec->size);
	if (!strcmp(key, "readonly"))
		return spec_bool(v, &spec->readonly);
	if (!strcmp(key, "out"))
		return spec_fd(v, &spec->out_fd);
	if (!strcmp(key, "network"))
		return spec_name(v, spec->network);
	if (!strcmp(key, "mac"))
		return spec_mac(v, spec);
	if (!strcmp(key, "rate"))
		return spec_uint(v, IOS_RATE_MAX, &spec->rate) || !spec->rate ? -EINVAL : 0;
	if (!strcmp(key, "burst"))
		return spec_uint(v, IOS_RATE_MAX, &spec->burst) || spec->burst < IOS_BURST_MIN ?
		       -EINVAL : 0;
	return -ENOENT;
}

int ios_spec_parse_conn(const char *text, struct ios_conn_spec *spec, char *bad, size_t badlen)
{
	char buf[512], *save = NULL;

	ios_spec_default(spec);
	if (strlen(text) >= sizeof(buf)) {
		snprintf(bad, badlen, "too long");
		return -EINVAL;
	}
	strcpy(buf, text);
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int rc;

		if (!eq) {
			snprintf(bad, badlen, "'%s' is not KEY=VALUE", item);
			return -EINVAL;
		}
		*eq = 0;
		rc = spec_conn_item(spec, item, eq + 1);
		if (rc == -ENOENT) {
			snprintf(bad, badlen, "unknown key '%s'", item);
			return -EINVAL;
		}
		if (rc) {
			snprintf(bad, badlen, "bad value '%s' for %s%s", eq + 1, item,
				 spec_conn_hint(item));
			return -EINVAL;
		}
	}
	if (spec->fd < 0 || !spec->partition[0]) {
		snprintf(bad, badlen, "fd= and partition= are required");
		return -EINVAL;
	}
	if (spec->burst && !spec->rate) {
		snprintf(bad, badlen, "burst= needs rate=");
		return -EINVAL;
	}
	if (spec->rate && !spec->burst)
		spec->burst = IOS_BURST_DEFAULT;
	return 0;
}

int ios_spec_parse_uplink(const char *text, struct ios_uplink_spec *u, char *bad,
			  size_t badlen)
{
	char buf[512], *save = NULL;

	memset(u, 0, sizeof(*u));
	u->fd = -1;
	if (strlen(text) >= sizeof(buf)) {
		snprintf(bad, badlen, "too long");
		return -EINVAL;
	}
	strcpy(buf, text);
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		const char *v = eq ? eq + 1 : "";
		int rc;

		if (!eq) {
			snprintf(bad, badlen, "'%s' is not KEY=VALUE", item);
			return -EINVAL;
		}
		*eq = 0;
		if (!strcmp(item, "network")) {
			rc = spec_name(v, u->network);
		} else if (!strcmp(item, "fd")) {
			rc = spec_fd(v, &u->fd);
		} else if (!strcmp(item, "tap")) {
			rc = !*v || strlen(v) >= sizeof(u->tap) || strpbrk(v, "/: \t\n") ? -EINVAL : 0;
			if (!rc)
				strcpy(u->tap, v);
		} else {
			snprintf(bad, badlen, "unknown key '%s' (network=, fd= or tap=)", item);
			return -EINVAL;
		}
		if (rc) {
			snprintf(bad, badlen, "bad value '%s' for %s%s", v, item,
				 !strcmp(item, "tap") ? " (an interface name of 1 to 15 characters)" :
				 "");
			return -EINVAL;
		}
	}
	if (u->tap[0] ? u->fd >= 0 || u->network[0] : u->fd < 0 || !u->network[0]) {
		snprintf(bad, badlen, "give network=NET,fd=M (supervised) or tap=IFNAME "
			 "(standalone)");
		return -EINVAL;
	}
	return 0;
}

int ios_spec_parse_disk(const char *text, char *path, size_t pathlen, struct ios_conn_spec *spec,
			char *bad, size_t badlen)
{
	char buf[4096], *save = NULL, *item;

	if (strlen(text) >= sizeof(buf)) {
		snprintf(bad, badlen, "too long");
		return -EINVAL;
	}
	strcpy(buf, text);
	item = strtok_r(buf, ",", &save);
	if (!item || strlen(item) >= pathlen) {
		snprintf(bad, badlen, "no file name");
		return -EINVAL;
	}
	strcpy(path, item);
	while ((item = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(item, '=');

		if (!strcmp(item, "readonly")) {
			spec->readonly = true;
			continue;
		}
		if (eq && !strncmp(item, "offset=", 7) && !units_parse_size(eq + 1, &spec->offset))
			continue;
		if (eq && !strncmp(item, "size=", 5) && !units_parse_size(eq + 1, &spec->size))
			continue;
		snprintf(bad, badlen, "bad option '%s'", item);
		return -EINVAL;
	}
	return 0;
}
