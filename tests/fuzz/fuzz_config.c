/*
 * libFuzzer harness for the system-file loader: any bytes go through cfg_load_text
 * (YAML tree, schema, every compile pass) on a fixed fake host, the diagnostics are
 * printed as 'bulkhead check' prints them, the system goes through cfg_to_json when it
 * is sound, and everything is freed, so AddressSanitizer and UBSan see every path a
 * hostile file can take. Built with -Dfuzz=true; run by 'make fuzz'.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/system.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* An UBSan report stops the run like a crash, so libFuzzer saves the input. (Built with
 * -fno-sanitize-recover instead, the checks' edges vanish from the coverage map.) */
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* Relative paths in the input resolve against this file's directory, so inputs
 * copied from tests/configs reach their images and disks when the fuzzer runs from
 * the repository's top directory (as 'make fuzz' does). */
#define FUZZ_PATH "tests/configs/valid/fuzz.yaml"

static const struct bh_host *fake_host(void)
{
	static struct bh_host host;

	if (!host.ncpus) {
		bh_cpuset_set(&host.online, 0);
		bh_cpuset_set(&host.online, 1);
		host.ncpus = 2;
		host.mem_bytes = 8ULL << 30;
	}
	return &host;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	struct diag d;
	struct bh_system *sys;

	if (!sink && !(sink = fopen("/dev/null", "we")))
		abort();
	diag_init(&d, FUZZ_PATH);
	sys = cfg_load_text(FUZZ_PATH, (const char *)data, size, fake_host(), &d);
	diag_print(&d, sink);
	if (sys && !d.errors) {
		char *json = cfg_to_json(sys);
		free(json);
	}
	cfg_free(sys);
	diag_free(&d);
	return 0;
}
