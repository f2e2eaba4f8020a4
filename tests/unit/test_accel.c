/* Unit tests for src/supervisor/accel.c: the accelerator probe of `engine: qemu`
 * partitions. Each case builds a fake host under a temporary directory (dev/kvm,
 * sys/module/kvm_pvm, proc/cpuinfo) and checks what the probe finds and what is
 * chosen from it, with and without BH_QEMU_ACCEL's override. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "supervisor/accel.h"

struct fake {
	char root[64];
};

static void put(const struct fake *f, const char *rel, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void dir(const struct fake *f, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	strcpy(f->root, "/tmp/bh-accel-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	dir(f, "dev");
	dir(f, "sys");
	dir(f, "sys/module");
	dir(f, "proc");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

#define INTEL_CPU "processor\t: 0\nvendor_id\t: GenuineIntel\n" \
	"flags\t\t: fpu vme de pse tsc msr pae vmx sse sse2 ht\n" \
	"vmx flags\t: vnmi preemption_timer\n\nprocessor\t: 1\n" \
	"flags\t\t: fpu vme de pse tsc msr pae vmx sse sse2 ht\n"
#define AMD_CPU "processor\t: 0\nvendor_id\t: AuthenticAMD\n" \
	"flags\t\t: fpu vme de pse tsc msr pae svm sse4a\n"
/* A guest CPU without the flag; "svm_lock" and "vmxe" must not count. */
#define PLAIN_CPU "processor\t: 0\nflags\t\t: fpu vme svm_lock vmxe hypervisor\n" \
	"bugs\t\t: vmx spectre\n"

static void choose(const struct fake *f, const char *override, struct sup_accel *acc)
{
	struct sup_accel_host h;

	sup_accel_probe(f->root, &h);
	assert_int_equal(sup_accel_choose(override, &h, acc), 0);
}

static void test_hardware_kvm_is_chosen(void **state)
{
	struct fake *f = *state;
	struct sup_accel acc;

	put(f, "dev/kvm", "");
	put(f, "proc/cpuinfo", INTEL_CPU);
	choose(f, NULL, &acc);
	assert_string_equal(acc.accel, "kvm");
	assert_string_equal(acc.cpu, "host");
	assert_string_equal(acc.reason, "hardware-assisted KVM (svm/vmx, not PVM)");
	choose(f, "auto", &acc);
	assert_string_equal(acc.accel, "kvm");
	put(f, "proc/cpuinfo", AMD_CPU);
	choose(f, "", &acc);
	assert_string_equal(acc.accel, "kvm");
}

static void test_pvm_means_tcg(void **state)
{
	struct fake *f = *state;
	struct sup_accel acc;

	put(f, "dev/kvm", "");
	put(f, "proc/cpuinfo", AMD_CPU);
	dir(f, "sys/module/kvm_pvm");
	choose(f, NULL, &acc);
	assert_string_equal(acc.accel, "tcg");
	assert_string_equal(acc.cpu, "max");
	assert_non_null(strstr(acc.reason, "PVM"));
}

static void test_no_kvm_means_tcg(void **state)
{
	struct fake *f = *state;
	struct sup_accel acc;

	put(f, "proc/cpuinfo", INTEL_CPU);
	choose(f, NULL, &acc);
	assert_string_equal(acc.accel, "tcg");
	assert_string_equal(acc.reason, "no /dev/kvm");
}

static void test_unopenable_kvm_means_tcg(void **state)
{
	struct sup_accel_host h = { .kvm_err = EACCES, .hw_virt = true };
	struct sup_accel acc;

	(void)state;
	assert_int_equal(sup_accel_choose(NULL, &h, &acc), 0);
	assert_string_equal(acc.accel, "tcg");
	assert_string_equal(acc.reason, "cannot open /dev/kvm read-write: Permission denied");
}

static void test_no_hw_flag_means_tcg(void **state)
{
	struct fake *f = *state;
	struct sup_accel acc;

	put(f, "dev/kvm", "");
	put(f, "proc/cpuinfo", PLAIN_CPU);
	choose(f, NULL, &acc);
	assert_string_equal(acc.accel, "tcg");
	assert_non_null(strstr(acc.reason, "no svm or vmx"));
	/* no cpuinfo at all: no flag either */
	char path[256];
	snprintf(path, sizeof(path), "%s/proc/cpuinfo", f->root);
	assert_int_equal(unlink(path), 0);
	choose(f, NULL, &acc);
	assert_string_equal(acc.accel, "tcg");
}

/* A flags line longer than the probe's line buffer: the flag at its end is found. */
static void test_long_flags_line(void **state)
{
	struct fake *f = *state;
	struct sup_accel acc;
	size_t n = 20000;
	char *text = malloc(n + 64);
	size_t len = (size_t)sprintf(text, "processor\t: 0\nflags\t\t:");

	while (len < n)
		len += (size_t)sprintf(text + len, " f%zu", len);
	strcpy(text + len, " svm\n");
	put(f, "dev/kvm", "");
	put(f, "proc/cpuinfo", text);
	free(text);
	choose(f, NULL, &acc);
	assert_string_equal(acc.accel, "kvm");
}

static void test_override(void **state)
{
	struct sup_accel_host pvm = { .pvm = true, .hw_virt = true };
	struct sup_accel_host hw = { .hw_virt = true };
	struct sup_accel acc;

	(void)state;
	assert_int_equal(sup_accel_choose("kvm", &pvm, &acc), 0);
	assert_string_equal(acc.accel, "kvm");
	assert_string_equal(acc.cpu, "host");
	assert_string_equal(acc.reason, "BH_QEMU_ACCEL=kvm");
	assert_int_equal(sup_accel_choose("tcg", &hw, &acc), 0);
	assert_string_equal(acc.accel, "tcg");
	assert_string_equal(acc.cpu, "max");
	assert_string_equal(acc.reason, "BH_QEMU_ACCEL=tcg");
	assert_int_equal(sup_accel_choose("hvf", &hw, &acc), -EINVAL);
	assert_int_equal(sup_accel_choose("KVM", &hw, &acc), -EINVAL);
	assert_int_equal(sup_accel_choose("tcg ", &hw, &acc), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hardware_kvm_is_chosen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvm_means_tcg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_kvm_means_tcg, setup, teardown),
		cmocka_unit_test(test_unopenable_kvm_means_tcg),
		cmocka_unit_test_setup_teardown(test_no_hw_flag_means_tcg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_flags_line, setup, teardown),
		cmocka_unit_test(test_override),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
