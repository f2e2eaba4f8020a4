/*
 * ACPI tables (see acpi.h): RSDP, XSDT and RSDT pointing at the FADT and the MADT; the
 * FADT at the FACS and the DSDT. The DSDT's AML is written here by hand: a PCI root
 * bridge (PNP0A03) with its resources and an INTA# routing table, and the _S5 sleep
 * object. Each table's checksum makes its bytes sum to zero.
 */
#include <stdbool.h>
#include <string.h>

#include "monitor/x86/acpi.h"
#include "monitor/x86/table_writer.h"

#define ACPI_ALIGN        16
#define ACPI_FACS_ALIGN   64
#define ACPI_OEM_ID       "BLKHD "         /* 6 bytes */
#define ACPI_OEM_TABLE    "BULKHEAD"       /* 8 bytes */
#define ACPI_CREATOR      "BHMN"

/* Table revisions (ACPI 6.x). */
#define RSDP_REVISION     2
#define XSDT_REVISION     1
#define RSDT_REVISION     1
#define FADT_REVISION     6
#define FADT_MINOR        0
#define MADT_REVISION     4
#define DSDT_REVISION     2                /* 64-bit integers in AML */
#define FACS_VERSION      2

/* FADT fields used (offsets from the table's start). */
#define FADT_FIRMWARE_CTRL    36
#define FADT_DSDT             40
#define FADT_SCI_INT          46
#define FADT_PM1A_EVT_BLK     56
#define FADT_PM1A_CNT_BLK     64
#define FADT_PM1_EVT_LEN      88
#define FADT_PM1_CNT_LEN      89
#define FADT_P_LVL2_LAT       96
#define FADT_P_LVL3_LAT       98
#define FADT_CENTURY          108
#define FADT_IAPC_BOOT_ARCH   109
#define FADT_FLAGS            112
#define FADT_RESET_REG        116
#define FADT_RESET_VALUE      128
#define FADT_MINOR_VERSION    131
#define FADT_X_DSDT           140
#define FADT_X_PM1A_EVT_BLK   148
#define FADT_X_PM1A_CNT_BLK   172

#define FADT_LAT_NO_C2        101          /* > 100: C2 not supported */
#define FADT_LAT_NO_C3        1001         /* > 1000: C3 not supported */
/* IA-PC boot architecture flags: legacy ISA devices (the UART, the RTC) present; no
 * 8042 keyboard controller; no VGA. MSI stays allowed (bit 3 clear). */
#define IAPC_LEGACY_DEVICES   0x0001
#define IAPC_NO_VGA           0x0004
/* FADT flags: WBINVD works, C1 on every CPU, no fixed power or sleep button. */
#define FADT_F_WBINVD         (1u << 0)
#define FADT_F_PROC_C1        (1u << 2)
#define FADT_F_PWR_BUTTON     (1u << 4)
#define FADT_F_SLP_BUTTON     (1u << 5)
#define FADT_F_RESET_REG_SUP  (1u << 10)

/* Generic Address Structure: system I/O space. */
#define GAS_SYSTEM_IO         1
#define GAS_ACCESS_BYTE       1
#define GAS_ACCESS_WORD       2

/* MADT. */
#define MADT_PCAT_COMPAT      1            /* dual 8259s present: Linux masks them */
#define MADT_LAPIC            0
#define MADT_IOAPIC           1
#define MADT_ISO              2
#define MADT_LAPIC_NMI        4
#define MADT_LAPIC_ENABLED    1
#define MADT_ALL_CPUS         0xff
/* MPS INTI flags: polarity bits 1-0, trigger mode bits 3-2. */
#define INTI_ACTIVE_HIGH      0x1
#define INTI_LEVEL            (0x3 << 2)
#define LAPIC_LINT1           1

/* AML opcodes (ACPI 6.x, 20.2). */
#define AML_ZERO              0x00
#define AML_ONE               0x01
#define AML_NAME              0x08
#define AML_BYTE              0x0a
#define AML_WORD              0x0b
#define AML_DWORD             0x0c
#define AML_QWORD             0x0e
#define AML_SCOPE             0x10
#define AML_BUFFER            0x11
#define AML_PACKAGE           0x12
#define AML_EXT               0x5b
#define AML_DEVICE            0x82         /* after AML_EXT */
#define AML_ROOT              0x5c         /* '\' */
#define AML_STRING            0x0d
/* EisaId("PNP0A03"): a PCI host bridge, in EISA's compressed form. */
#define EISA_PNP0A03          0x030ad041u

/* Resource descriptors (ACPI 6.x, 6.4). */
#define RES_IO                0x47         /* small: I/O port, 8 bytes */
#define RES_END               0x79         /* small: end tag, 2 bytes */
#define RES_DWORD_ADDR        0x87         /* large: DWord address space */
#define RES_WORD_ADDR         0x88         /* large: Word address space */
#define RES_SPACE_MEM         0
#define RES_SPACE_IO          1
#define RES_SPACE_BUS         2
/* General flags: producer, positive decode, minimum and maximum fixed. */
#define RES_PRODUCER_FIXED    0x0c
#define RES_IO_ENTIRE_RANGE   0x03
#define RES_MEM_RW_UNCACHED   0x01
#define IO_DECODE16           0x01

#define PCI_SLOTS             32
#define PCI_CONFIG_PORT       0xcf8
#define PCI_CONFIG_LEN        8

static void align(struct tbl_writer *w, size_t a)
{
	while (w->ok && w->off % a)
		tbl_put8(w, 0);
}

uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
	return tbl_checksum(p, n);
}

/* The common 36-byte header; length and checksum are set by table_end. */
static size_t table_begin(struct tbl_writer *w, const char sig[4], uint8_t revision)
{
	size_t at;

	align(w, ACPI_ALIGN);
	at = w->off;
	tbl_put(w, sig, 4);
	tbl_put32(w, 0);                            /* length */
	tbl_put8(w, revision);
	tbl_put8(w, 0);                             /* checksum */
	tbl_put(w, ACPI_OEM_ID, 6);
	tbl_put(w, ACPI_OEM_TABLE, 8);
	tbl_put32(w, 1);                            /* OEM revision */
	tbl_put(w, ACPI_CREATOR, 4);
	tbl_put32(w, 1);                            /* creator revision */
	return at;
}

static void table_end(struct tbl_writer *w, size_t at)
{
	if (!w->ok)
		return;
	tbl_set32(w->p + at + 4, (uint32_t)(w->off - at));
	w->p[at + 9] = acpi_checksum(w->p + at, w->off - at);
}

/* ---- AML ------------------------------------------------------------------------ */

/* A PkgLength is written after its contents are known: 4 bytes are reserved, then the
 * contents move down to follow the shortest encoding (ACPI 6.x, 20.2.4). */
static size_t aml_open(struct tbl_writer *w)
{
	size_t at = w->off;

	tbl_put32(w, 0);
	return at;
}

static void aml_close(struct tbl_writer *w, size_t at)
{
	size_t body, total;
	unsigned n;

	if (!w->ok)
		return;
	body = w->off - at - 4;
	n = body + 1 < 0x40 ? 1 : body + 2 < 0x1000 ? 2 : body + 3 < 0x100000 ? 3 : 4;
	total = body + n;
	if (total >= 0x10000000) {
		w->ok = false;
		return;
	}
	memmove(w->p + at + n, w->p + at + 4, body);
	if (n == 1) {
		w->p[at] = (uint8_t)total;
	} else {
		w->p[at] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			w->p[at + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	w->off = at + n + body;
}

static void aml_int(struct tbl_writer *w, uint64_t v)
{
	if (v <= 1) {
		tbl_put8(w, v ? AML_ONE : AML_ZERO);
	} else if (v <= 0xff) {
		tbl_put8(w, AML_BYTE);
		tbl_put8(w, (uint8_t)v);
	} else if (v <= 0xffff) {
		tbl_put8(w, AML_WORD);
		tbl_put16(w, (uint16_t)v);
	} else if (v <= 0xffffffffu) {
		tbl_put8(w, AML_DWORD);
		tbl_put32(w, (uint32_t)v);
	} else {
		tbl_put8(w, AML_QWORD);
		tbl_put64(w, v);
	}
}

/* Name(NAME, ...): the value follows. NAME is one 4-character segment. */
static void aml_name(struct tbl_writer *w, const char seg[4])
{
	tbl_put8(w, AML_NAME);
	tbl_put(w, seg, 4);
}

/* Device (NAME) {: the caller writes the contents, then aml_close()s what this returns. */
static size_t aml_device_open(struct tbl_writer *w, const char name[4])
{
	size_t at;

	tbl_put8(w, AML_EXT);
	tbl_put8(w, AML_DEVICE);
	at = aml_open(w);
	tbl_put(w, name, 4);
	return at;
}

/* An I/O port resource descriptor: LEN ports at PORT, 16-bit decode. */
static void res_io(struct tbl_writer *w, uint16_t port, uint8_t len)
{
	tbl_put8(w, RES_IO);
	tbl_put8(w, IO_DECODE16);
	tbl_put16(w, port);                         /* minimum base */
	tbl_put16(w, port);                         /* maximum base */
	tbl_put8(w, 1);                             /* alignment */
	tbl_put8(w, len);
}

static void word_addr(struct tbl_writer *w, uint8_t space, uint8_t type_flags,
		      uint16_t min, uint16_t max)
{
	tbl_put8(w, RES_WORD_ADDR);
	tbl_put16(w, 13);                           /* bytes after the length field */
	tbl_put8(w, space);
	tbl_put8(w, RES_PRODUCER_FIXED);
	tbl_put8(w, type_flags);
	tbl_put16(w, 0);                            /* granularity */
	tbl_put16(w, min);
	tbl_put16(w, max);
	tbl_put16(w, 0);                            /* translation offset */
	tbl_put16(w, (uint16_t)(max - min + 1));
}

/* _CRS of the root bridge: bus 0; the configuration ports; every other I/O port; the
 * PCI memory window. */
static void pci_crs(struct tbl_writer *w, const struct acpi_config *c)
{
	uint8_t res[128];
	struct tbl_writer r = { .p = res, .len = sizeof(res), .ok = true };
	size_t at;

	word_addr(&r, RES_SPACE_BUS, 0, 0, 0);
	res_io(&r, PCI_CONFIG_PORT, PCI_CONFIG_LEN);
	word_addr(&r, RES_SPACE_IO, RES_IO_ENTIRE_RANGE, 0, PCI_CONFIG_PORT - 1);
	word_addr(&r, RES_SPACE_IO, RES_IO_ENTIRE_RANGE, PCI_CONFIG_PORT + PCI_CONFIG_LEN,
		  0xffff);
	tbl_put8(&r, RES_DWORD_ADDR);
	tbl_put16(&r, 23);
	tbl_put8(&r, RES_SPACE_MEM);
	tbl_put8(&r, RES_PRODUCER_FIXED);
	tbl_put8(&r, RES_MEM_RW_UNCACHED);
	tbl_put32(&r, 0);                           /* granularity */
	tbl_put32(&r, c->pci_mmio_base);
	tbl_put32(&r, c->pci_mmio_end);
	tbl_put32(&r, 0);                           /* translation offset */
	tbl_put32(&r, c->pci_mmio_end - c->pci_mmio_base + 1);
	tbl_put8(&r, RES_END);
	tbl_put8(&r, 0);                            /* no checksum */
	if (!r.ok) {
		w->ok = false;
		return;
	}
	aml_name(w, "_CRS");
	tbl_put8(w, AML_BUFFER);
	at = aml_open(w);
	aml_int(w, r.off);
	tbl_put(w, res, r.off);
	aml_close(w, at);
}

/* _PRT: INTA# of every slot but the host bridge's to its IOAPIC pin, as a GSI (no
 * link devices). Each entry is Package { address (slot << 16 | 0xFFFF: any function),
 * pin (0: INTA#), source (0: a GSI), GSI }. */
static void pci_prt(struct tbl_writer *w, const struct acpi_config *c)
{
	size_t at, e;

	aml_name(w, "_PRT");
	tbl_put8(w, AML_PACKAGE);
	at = aml_open(w);
	tbl_put8(w, PCI_SLOTS - 1);                 /* number of elements */
	for (unsigned s = 1; s < PCI_SLOTS; s++) {
		tbl_put8(w, AML_PACKAGE);
		e = aml_open(w);
		tbl_put8(w, 4);
		aml_int(w, (uint64_t)s << 16 | 0xffff);
		aml_int(w, 0);
		aml_int(w, 0);
		aml_int(w, c->pci_pin_base + s % 8);
		aml_close(w, e);
	}
	aml_close(w, at);
}

/* Device (PEVT) { Name (_HID, "QEMU0001"), Name (_CRS, ResourceTemplate () { IO (Decode16,
 * port, port, 1, 1) }) }: the panic notification device, as Linux's pvpanic-mmio driver
 * finds it. */
static void pvpanic_device(struct tbl_writer *w, uint16_t port)
{
	static const char hid[] = "QEMU0001";
	size_t dev, buf;

	dev = aml_device_open(w, "PEVT");
	aml_name(w, "_HID");
	tbl_put8(w, AML_STRING);
	tbl_put(w, hid, sizeof(hid));               /* with its terminating NUL */
	aml_name(w, "_CRS");
	tbl_put8(w, AML_BUFFER);
	buf = aml_open(w);
	aml_int(w, 10);                             /* IO descriptor (8) + end tag (2) */
	res_io(w, port, 1);
	tbl_put8(w, RES_END);
	tbl_put8(w, 0);
	aml_close(w, buf);
	aml_close(w, dev);
}

static void dsdt_body(struct tbl_writer *w, const struct acpi_config *c)
{
	size_t scope, dev, pkg;

	/* Scope (\_SB) { Device (PCI0) { _HID, _UID, _CRS, _PRT } } */
	tbl_put8(w, AML_SCOPE);
	scope = aml_open(w);
	tbl_put8(w, AML_ROOT);
	tbl_put(w, "_SB_", 4);
	dev = aml_device_open(w, "PCI0");
	aml_name(w, "_HID");
	tbl_put8(w, AML_DWORD);
	tbl_put32(w, EISA_PNP0A03);
	aml_name(w, "_UID");
	aml_int(w, 0);
	pci_crs(w, c);
	pci_prt(w, c);
	aml_close(w, dev);
	if (c->pvpanic_port)
		pvpanic_device(w, c->pvpanic_port);
	aml_close(w, scope);
	/* Name (_S5, Package () { SLP_TYPa, SLP_TYPb, 0, 0 }): how to power off. */
	aml_name(w, "_S5_");
	tbl_put8(w, AML_PACKAGE);
	pkg = aml_open(w);
	tbl_put8(w, 4);
	aml_int(w, ACPI_S5_SLP_TYP);
	aml_int(w, ACPI_S5_SLP_TYP);
	aml_int(w, 0);
	aml_int(w, 0);
	aml_close(w, pkg);
}

/* ---- tables --------------------------------------------------------------------- */

static void gas_io(uint8_t *p, uint16_t port, uint8_t bytes, uint8_t access)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = (uint8_t)(bytes * 8);            /* register bit width */
	p[2] = 0;                               /* bit offset */
	p[3] = access;
	tbl_set64(p + 4, port);
}

static size_t fadt(struct tbl_writer *w, const struct acpi_config *c, uint32_t facs,
		   uint32_t dsdt)
{
	size_t at = table_begin(w, "FACP", FADT_REVISION);
	uint8_t *f;

	tbl_put(w, (uint8_t[ACPI_FADT_SIZE - ACPI_HEADER_SIZE]){ 0 },
	    ACPI_FADT_SIZE - ACPI_HEADER_SIZE);
	if (!w->ok)
		return at;
	f = w->p + at;
	/* The FACS is below 4 GiB: FIRMWARE_CTRL, and X_FIRMWARE_CTRL must stay 0. */
	tbl_set32(f + FADT_FIRMWARE_CTRL, facs);
	tbl_set32(f + FADT_DSDT, dsdt);
	tbl_set16(f + FADT_SCI_INT, c->sci_irq);
	/* SMI_CMD stays 0: the platform is always in ACPI mode (no hand-over). */
	tbl_set32(f + FADT_PM1A_EVT_BLK, c->pm1a_evt);
	tbl_set32(f + FADT_PM1A_CNT_BLK, c->pm1a_cnt);
	f[FADT_PM1_EVT_LEN] = ACPI_PM1_EVT_LEN;
	f[FADT_PM1_CNT_LEN] = ACPI_PM1_CNT_LEN;
	tbl_set16(f + FADT_P_LVL2_LAT, FADT_LAT_NO_C2);
	tbl_set16(f + FADT_P_LVL3_LAT, FADT_LAT_NO_C3);
	f[FADT_CENTURY] = c->rtc_century;
	tbl_set16(f + FADT_IAPC_BOOT_ARCH, IAPC_LEGACY_DEVICES | IAPC_NO_VGA);
	tbl_set32(f + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_PWR_BUTTON |
	      FADT_F_SLP_BUTTON | (c->reset_port ? FADT_F_RESET_REG_SUP : 0));
	/* Linux's first reboot method (also a panic's with panic=-1) is this register. */
	if (c->reset_port) {
		gas_io(f + FADT_RESET_REG, c->reset_port, ACPI_RESET_LEN, GAS_ACCESS_BYTE);
		f[FADT_RESET_VALUE] = c->reset_value;
	}
	f[FADT_MINOR_VERSION] = FADT_MINOR;
	tbl_set64(f + FADT_X_DSDT, dsdt);
	gas_io(f + FADT_X_PM1A_EVT_BLK, c->pm1a_evt, ACPI_PM1_EVT_LEN, GAS_ACCESS_WORD);
	gas_io(f + FADT_X_PM1A_CNT_BLK, c->pm1a_cnt, ACPI_PM1_CNT_LEN, GAS_ACCESS_WORD);
	table_end(w, at);
	return at;
}

static void madt_iso(struct tbl_writer *w, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	tbl_put8(w, MADT_ISO);
	tbl_put8(w, 10);
	tbl_put8(w, 0);                             /* bus: ISA */
	tbl_put8(w, irq);
	tbl_put32(w, gsi);
	tbl_put16(w, flags);
}

static size_t madt(struct tbl_writer *w, const struct acpi_config *c)
{
	size_t at = table_begin(w, "APIC", MADT_REVISION);

	tbl_put32(w, c->lapic_addr);
	tbl_put32(w, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < c->ncpus; i++) {
		tbl_put8(w, MADT_LAPIC);
		tbl_put8(w, 8);
		tbl_put8(w, (uint8_t)i);                /* ACPI processor UID */
		tbl_put8(w, (uint8_t)i);                /* APIC ID */
		tbl_put32(w, MADT_LAPIC_ENABLED);
	}
	tbl_put8(w, MADT_IOAPIC);
	tbl_put8(w, 12);
	tbl_put8(w, c->ioapic_id);
	tbl_put8(w, 0);
	tbl_put32(w, c->ioapic_addr);
	tbl_put32(w, 0);                            /* its first GSI */
	/* ISA IRQs are GSIs of the same number, KVM's default routing: the PIT's IRQ 0
	 * arrives on pin 0 (not pin 2 as on PC chipsets), so there is no override for it.
	 * The SCI is level triggered, active high (never raised: no ACPI events). */
	madt_iso(w, c->sci_irq, c->sci_irq, INTI_ACTIVE_HIGH | INTI_LEVEL);
	tbl_put8(w, MADT_LAPIC_NMI);
	tbl_put8(w, 6);
	tbl_put8(w, MADT_ALL_CPUS);
	tbl_put16(w, 0);                            /* flags: as the bus says */
	tbl_put8(w, LAPIC_LINT1);
	table_end(w, at);
	return at;
}

static size_t facs(struct tbl_writer *w)
{
	size_t at;

	align(w, ACPI_FACS_ALIGN);
	at = w->off;
	tbl_put(w, "FACS", 4);
	tbl_put32(w, ACPI_FACS_SIZE);
	tbl_put(w, (uint8_t[ACPI_FACS_SIZE - 8]){ 0 }, ACPI_FACS_SIZE - 8);
	if (w->ok)
		w->p[at + 32] = FACS_VERSION;
	return at;
}

static size_t dsdt(struct tbl_writer *w, const struct acpi_config *c)
{
	size_t at = table_begin(w, "DSDT", DSDT_REVISION);

	dsdt_body(w, c);
	table_end(w, at);
	return at;
}

/* XSDT (64-bit entries) or RSDT (32-bit) listing the tables at the given offsets. */
static size_t sdt(struct tbl_writer *w, bool x, uint32_t gpa, const size_t *tables,
		  unsigned n)
{
	size_t at = table_begin(w, x ? "XSDT" : "RSDT", x ? XSDT_REVISION : RSDT_REVISION);

	for (unsigned i = 0; i < n; i++) {
		if (x)
			tbl_put64(w, gpa + tables[i]);
		else
			tbl_put32(w, (uint32_t)(gpa + tables[i]));
	}
	table_end(w, at);
	return at;
}

size_t acpi_build(uint8_t *buf, size_t len, uint32_t gpa, const struct acpi_config *c)
{
	struct tbl_writer w = { .p = buf, .len = len, .ok = true };
	size_t t_facs, t_dsdt, t_xsdt, t_rsdt, tables[2];
	uint8_t *rsdp;

	if (!c->ncpus || c->ncpus > ACPI_MAX_CPUS || c->ioapic_pins < 16 ||
	    c->pci_pin_base + 8 > c->ioapic_pins || c->sci_irq >= 16 ||
	    c->pci_mmio_end <= c->pci_mmio_base || gpa % ACPI_ALIGN)
		return 0;
	/* The RSDP first (36 bytes, filled in last), then the tables. */
	tbl_put(&w, (uint8_t[ACPI_RSDP_SIZE]){ 0 }, ACPI_RSDP_SIZE);
	t_facs = facs(&w);
	t_dsdt = dsdt(&w, c);
	tables[0] = fadt(&w, c, gpa + (uint32_t)t_facs, gpa + (uint32_t)t_dsdt);
	tables[1] = madt(&w, c);
	t_xsdt = sdt(&w, true, gpa, tables, 2);
	t_rsdt = sdt(&w, false, gpa, tables, 2);
	if (!w.ok)
		return 0;

	rsdp = buf;
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, ACPI_OEM_ID, 6);
	rsdp[15] = RSDP_REVISION;
	tbl_set32(rsdp + 16, gpa + (uint32_t)t_rsdt);
	tbl_set32(rsdp + 20, ACPI_RSDP_SIZE);
	tbl_set64(rsdp + 24, gpa + (uint64_t)t_xsdt);
	rsdp[8] = acpi_checksum(rsdp, 20);      /* ACPI 1.0 part */
	rsdp[32] = acpi_checksum(rsdp, ACPI_RSDP_SIZE);
	return w.off;
}
