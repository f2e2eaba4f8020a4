/*
 * The passes that turn a decoded system file into a compiled system, in the order
 * load.c runs them. Each reports to the diag and skips what an earlier pass found
 * broken (an unresolved reference has idx -1).
 */
#ifndef BH_COMPILE_H
#define BH_COMPILE_H

#include "config/system.h"

void cfg_check_names(struct bh_system *sys, struct diag *d);          /* resolve.c */
void cfg_resolve(struct bh_system *sys, struct diag *d);              /* resolve.c */
void cfg_apply_defaults(struct bh_system *sys, const struct bh_host *host,
			struct diag *d);                               /* defaults.c */
void cfg_check_resources(struct bh_system *sys, const struct bh_host *host,
			 struct diag *d);                              /* check_resources.c */
void cfg_check_io(struct bh_system *sys, struct diag *d);             /* check_io.c */
void cfg_check_comm(struct bh_system *sys, struct diag *d);           /* check_comm.c */
void cfg_check_images(struct bh_system *sys, struct diag *d);         /* check_images.c */
void cfg_layout(struct bh_system *sys, struct diag *d);               /* layout.c */

#endif
