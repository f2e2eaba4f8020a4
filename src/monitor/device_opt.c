/*
 * The --device option: TYPE,slot=N,(fd=FD|socket=PATH)[,isolation=window|shared].
 * Checked completely here, before anything is set up; the message names the field.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "monitor/mon.h"
#include "monitor/virtio.h"

static int opt_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno || *end || *v > max ? -EINVAL : 0;
}

/* Each key may appear once; the socket path is copied. */
int mon_device_parse(const char *arg, struct mon_device *d, const char **why)
{
	char buf[512], *save = NULL, *tok;
	bool have_slot = false, have_iso = false;
	unsigned long v;
	struct stat st;

	*d = (struct mon_device){ .fd = -1, .arg = arg };
	if (strlen(arg) >= sizeof(buf)) {
		*why = "too long";
		return -EINVAL;
	}
	strcpy(buf, arg);
	tok = strtok_r(buf, ",", &save);
	if (!tok || !(d->type = vdev_type_find(tok))) {
		*why = "TYPE must be blk, console, net or rng";
		return -EINVAL;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');

		if (!val) {
			*why = "fields after TYPE are KEY=VALUE";
			return -EINVAL;
		}
		*val++ = 0;
		if (!strcmp(tok, "slot") && !have_slot) {
			if (opt_uint(val, 31, &v) || v < 1) {
				*why = "slot must be 1 to 31";
				return -EINVAL;
			}
			d->slot = v;
			have_slot = true;
		} else if (!strcmp(tok, "fd") && d->fd < 0 && !d->socket[0]) {
			if (opt_uint(val, INT_MAX, &v) || fstat((int)v, &st) || !S_ISSOCK(st.st_mode)) {
				*why = "fd is not an open socket";
				return -EBADF;
			}
			d->fd = (int)v;
		} else if (!strcmp(tok, "socket") && d->fd < 0 && !d->socket[0]) {
			if (!*val || strlen(val) >= sizeof(d->socket)) {
				*why = "socket must be a path of 1 to 107 bytes";
				return -EINVAL;
			}
			strcpy(d->socket, val);
		} else if (!strcmp(tok, "isolation") && !have_iso) {
			if (!strcmp(val, "shared"))
				d->shared = true;
			else if (strcmp(val, "window")) {
				*why = "isolation must be window or shared";
				return -EINVAL;
			}
			have_iso = true;
		} else {
			*why = "unknown or repeated field (or both fd and socket)";
			return -EINVAL;
		}
	}
	if (!have_slot) {
		*why = "slot=N is required";
		return -EINVAL;
	}
	if (d->fd < 0 && !d->socket[0]) {
		*why = "fd=FD or socket=PATH is required";
		return -EINVAL;
	}
	return 0;
}
