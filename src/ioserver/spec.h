/*
 * Parsing the I/O server's connection specs (--conn) and standalone disks (--disk).
 * Errors are -EINVAL with a short description of the offending item in bad[].
 */
#ifndef BH_IOSERVER_SPEC_H
#define BH_IOSERVER_SPEC_H

#include <stddef.h>

#include "ioserver/ioserver.h"

#define IOS_SIZE_UNSET UINT64_MAX      /* no size given: the rest of the disk */

void ios_spec_default(struct ios_conn_spec *spec);
int ios_spec_parse_conn(const char *text, struct ios_conn_spec *spec, char *bad, size_t badlen);
int ios_spec_parse_disk(const char *text, char *path, size_t pathlen, struct ios_conn_spec *spec,
			char *bad, size_t badlen);

#endif
