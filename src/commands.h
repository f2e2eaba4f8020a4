/*
 * The subcommands of the one bulkhead binary. Each lives with the module it drives;
 * main.c only dispatches.
 */
#ifndef BH_COMMANDS_H
#define BH_COMMANDS_H

int cfg_cmd_check(int argc, char **argv);   /* src/config/cli.c */
int sup_cmd_run(int argc, char **argv);     /* src/supervisor/run.c */
int ctl_cmd_ctl(int argc, char **argv);     /* src/supervisor/ctl.c */
int mon_cmd_monitor(int argc, char **argv); /* src/monitor/main.c */
int io_cmd_ioserver(int argc, char **argv);  /* src/ioserver/main.c */

#endif
