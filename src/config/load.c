/*
 * Entry points of the configuration module: read a system file, decode it against the
 * schema and run the compile passes, collecting every diagnostic on the way.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/compile.h"
#include "config/schema_system.h"
#include "config/system.h"
#include "config/ytree.h"

int cfg_read(const char *path, char **text, size_t *len)
{
	size_t cap = YTREE_MAX_BYTES + 1, got = 0;
	struct stat st;
	char *buf;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	buf = malloc(cap + 1);
	if (!buf)
		abort();
	/* Read at most one byte past the limit: enough to know the file is too big. */
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;
			close(fd);
			free(buf);
			return err;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

static char *dir_of(const char *path)
{
	char *copy = strdup(path), *dir, resolved[PATH_MAX];

	if (!copy)
		abort();
	dir = dirname(copy);
	dir = strdup(realpath(dir, resolved) ? resolved : dir);
	free(copy);
	if (!dir)
		abort();
	return dir;
}

struct bh_system *cfg_load_text(const char *path, const char *text, size_t len,
				const struct bh_host *host, struct diag *d)
{
	struct bh_system *sys;
	struct ynode *root = ytree_parse(text, len, d);
	struct schema_ctx ctx = { .d = d };

	if (!root)
		return NULL;
	sys = calloc(1, sizeof(*sys));
	if (!sys)
		abort();
	sys->file = strdup(path);
	sys->dir = dir_of(path);
	ctx.dir = sys->dir;
	schema_decode_map(&ctx, &cfg_file_schema, root, sys);
	ytree_free(root);

	cfg_check_names(sys, d);
	cfg_resolve(sys, d);
	cfg_apply_defaults(sys, host, d);
	cfg_check_comm(sys, d);         /* sizes the channels, which count as memory */
	cfg_check_resources(sys, host, d);
	cfg_check_io(sys, d);
	cfg_check_images(sys, d);
	cfg_layout(sys, d);
	return sys;
}

struct bh_system *cfg_load_file(const char *path, const struct bh_host *host, struct diag *d)
{
	char *text;
	size_t len;
	struct bh_system *sys;
	int rc = cfg_read(path, &text, &len);

	if (rc) {
		diag_error(d, (struct bh_loc){ 0, 0 }, "cannot read the file: %s", strerror(-rc));
		return NULL;
	}
	sys = cfg_load_text(path, text, len, host, d);
	free(text);
	return sys;
}

void cfg_free(struct bh_system *sys)
{
	if (!sys)
		return;
	schema_free(&cfg_file_schema, sys);
	free(sys->file);
	free(sys->dir);
	free(sys);
}

int cfg_find_partition(const struct bh_system *sys, const char *name)
{
	for (unsigned i = 0; i < sys->npartitions; i++)
		if (sys->partitions[i].name && !strcmp(sys->partitions[i].name, name))
			return (int)i;
	return -1;
}

int cfg_find_server(const struct bh_system *sys, const char *name)
{
	for (unsigned i = 0; i < sys->nservers; i++)
		if (sys->servers[i].name && !strcmp(sys->servers[i].name, name))
			return (int)i;
	return -1;
}
