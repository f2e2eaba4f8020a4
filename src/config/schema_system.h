/*
 * The schema of a bulkhead system file (tables in schema_system.c).
 */
#ifndef BH_SCHEMA_SYSTEM_H
#define BH_SCHEMA_SYSTEM_H

#include "config/schema.h"

#define BH_DEFAULT_MAX_RESTARTS 3

/* The whole file: decodes into struct bh_system. */
extern const struct schema cfg_file_schema;

#endif
