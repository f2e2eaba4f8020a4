/*
 * Parsing the I/O server's connection specs (--conn), standalone disks (--disk), net
 * uplinks (--uplink) and MAC addresses.
 * Errors are -EINVAL with a short description of the offending item in bad[].
 */
#ifndef BH_IOSERVER_SPEC_H
#define BH_IOSERVER_SPEC_H

#include <stddef.h>

#include "ioserver/ioserver.h"

#define IOS_SIZE_UNSET UINT64_MAX      /* no size given: the rest of the disk */
#define IOS_RATE_MAX   (1ull << 40)    /* net: rate= and burst= bound (1 TiB) */
#define IOS_BURST_MIN  1518u           /* net: one Ethernet frame with a VLAN tag */
#define IOS_BURST_DEFAULT 65536u       /* net: burst= when only rate= is given */

void ios_spec_default(struct ios_conn_spec *spec);
int ios_spec_parse_conn(const char *text, struct ios_conn_spec *spec, char *bad, size_t badlen);
int ios_spec_parse_uplink(const char *text, struct ios_uplink_spec *u, char *bad,
			  size_t badlen);
/* XX:XX:XX:XX:XX:XX (either case) into mac; -EINVAL otherwise. */
int ios_spec_parse_mac(const char *v, uint8_t mac[6]);
int ios_spec_parse_disk(const char *text, char *path, size_t pathlen, struct ios_conn_spec *spec,
			char *bad, size_t badlen);

#endif
