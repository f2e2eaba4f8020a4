/*
 * vconsole: writes lines through virtio-console port 0 (and says so on the UART), then
 * waits until the device has consumed every buffer. Lines read
 * "NAME: virtio-console line I of N" plus one long line that spans several transmit
 * buffers, so a log can be checked for all of them. Exits 0 when all were consumed.
 *
 * Arguments: [lines=N] (default 10), and the virtio options
 *   (dev=N no-event-idx no-indirect irq=msix|intx|poll qsize=N verbose).
 */
#include <inmate/inmate.h>

#define VCONSOLE_DEFAULT_LINES 10u
#define VCONSOLE_LONG_LINE     1300u     /* > 2 transmit buffers */
#define VCONSOLE_FLUSH_US      5000000u

int main(int argc, char **argv)
{
	struct virtio_opts o = { 0 };
	static struct vcon con;
	static char longline[VCONSOLE_LONG_LINE + 1];
	unsigned lines = VCONSOLE_DEFAULT_LINES;
	int err;

	for (int i = 1; i < argc; i++) {
		if (virtio_parse_opt(&o, argv[i]))
			continue;
		if (!strncmp(argv[i], "lines=", 6)) {
			lines = strtoul(argv[i] + 6, 0, 0);
			continue;
		}
		printf("vconsole: unknown argument '%s'\n", argv[i]);
		return 2;
	}
	err = vcon_open(&con, &o);
	if (err) {
		printf("vconsole: no usable virtio-console device (index %u): %s\n", o.index,
		       virtio_strerror(err));
		EXPECT_EQ(err, 0);
		return test_summary();
	}
	printf("vconsole: writing %u lines through virtio-console %02x:%02x.%x port 0 (%s)\n",
	       lines + 1, con.dev.pci.bus, con.dev.pci.slot, con.dev.pci.func,
	       virtio_irq_mode_name(con.dev.irq));
	for (unsigned i = 1; i <= lines; i++)
		EXPECT_GT(vcon_printf(&con, "%s: virtio-console line %u of %u\n", argv[0], i,
				      lines), 0);
	for (unsigned i = 0; i < VCONSOLE_LONG_LINE; i++)
		longline[i] = 'a' + i % 26;
	/* One write: the driver cuts it into VCON_TX_BYTES buffers. */
	EXPECT_GT(vcon_printf(&con, "%s: long line ", argv[0]), 0);
	EXPECT_EQ(vcon_write(&con, longline, VCONSOLE_LONG_LINE), VCONSOLE_LONG_LINE);
	EXPECT_GT(vcon_printf(&con, " end\n"), 0);
	err = vcon_flush(&con, VCONSOLE_FLUSH_US);
	EXPECT_EQ(err, 0);
	printf("vconsole: %lu bytes in %lu buffers %s; %lu kicks (%lu suppressed), "
	       "%lu interrupts\n", con.bytes_out, con.tx_chains,
	       err ? "NOT all consumed" : "all consumed by the device", con.tx.kicks,
	       con.tx.kicks_suppressed, con.dev.irq_count);
	EXPECT_FALSE(con.tx.broken);
	return test_summary();
}
