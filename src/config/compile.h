/*
 * The passes that turn a decoded system file into a compiled system, in the order
 * load.c runs them. Each reports to the diag and skips what an earlier pass found
 * broken (an unresolved reference has idx -1).
 */
#ifndef BH_COMPILE_H
#define BH_COMPILE_H

#include "config/system.h"

/* A key given with a value the schema accepted. The decoder records a key's position
 * even when it refuses the value (so "needs a 'depth'" is not said of a given depth);
 * checks of the value itself use this, so a refused value is reported once and not
 * again as, say, "memory 0 is not a positive multiple of 2M". */
static inline bool cfg_valid_at(const struct diag *d, struct bh_loc at)
{
	return at.line && !diag_has_error_at(d, at);
}

/* An object's name for messages; "?" when the file left it out (reported already). */
static inline const char *cfg_name(const char *name)
{
	return name ? name : "?";
}

/* A key given with a value the schema refused. */
static inline bool cfg_refused_at(const struct diag *d, struct bh_loc at)
{
	return at.line && diag_has_error_at(d, at);
}

void cfg_check_names(struct bh_system *sys, struct diag *d);          /* resolve.c */
void cfg_resolve(struct bh_system *sys, struct diag *d);              /* resolve.c */
void cfg_apply_defaults(struct bh_system *sys, const struct bh_host *host,
			struct diag *d);                               /* defaults.c */
void cfg_check_comm(struct bh_system *sys, struct diag *d);           /* check_comm.c */
void cfg_check_resources(struct bh_system *sys, const struct bh_host *host,
			 struct diag *d);                              /* check_resources.c */
void cfg_check_io(struct bh_system *sys, struct diag *d);             /* check_io.c */
void cfg_check_images(struct bh_system *sys, struct diag *d);         /* check_images.c */
void cfg_layout(struct bh_system *sys, struct diag *d);               /* layout.c */

#endif
