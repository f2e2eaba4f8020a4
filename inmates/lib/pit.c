/*
 * 8254 PIT driver: command-word encoding, the periodic channel 0 and the one-shot
 * channel 2 whose output bit is read back through the port-0x61 system-control latch.
 */
#include <inmate/io.h>
#include <inmate/pit.h>

#define PIT_CH0_DATA       0x40
#define PIT_CH2_DATA       0x42
#define PIT_COMMAND        0x43
#define PIT_PORT_B         0x61       /* gate and output of channel 2 */

#define PIT_SEL_CH0        (0u << 6)
#define PIT_SEL_CH2        (2u << 6)
#define PIT_ACCESS_LOHI    (3u << 4)
#define PIT_MODE_ONESHOT   (0u << 1)  /* mode 0: interrupt on terminal count */
#define PIT_MODE_RATE      (2u << 1)  /* mode 2: rate generator */
#define PIT_BINARY         0

#define PIT_PORTB_GATE2    0x01
#define PIT_PORTB_SPEAKER  0x02
#define PIT_PORTB_OUT2     0x20

#define PIT_MIN_HZ         (PIT_HZ / PIT_MAX_COUNT + 1)

static void pit_load(uint16_t port, uint32_t count)
{
	/* 65536 is encoded as 0; the low byte then high byte (PIT_ACCESS_LOHI). */
	outb(port, count & 0xff);
	outb(port, (count >> 8) & 0xff);
}

uint32_t pit_start_periodic(uint32_t hz)
{
	uint32_t divisor;

	if (hz < PIT_MIN_HZ || hz > PIT_HZ)
		return 0;
	divisor = (PIT_HZ + hz / 2) / hz;
	if (divisor < 2)
		divisor = 2;   /* mode 2 forbids a count of 1 */
	outb(PIT_COMMAND, PIT_SEL_CH0 | PIT_ACCESS_LOHI | PIT_MODE_RATE | PIT_BINARY);
	pit_load(PIT_CH0_DATA, divisor);
	return divisor;
}

void pit_stop(void)
{
	/* A one-shot with the longest count: at most one more edge, then silence. */
	outb(PIT_COMMAND, PIT_SEL_CH0 | PIT_ACCESS_LOHI | PIT_MODE_ONESHOT | PIT_BINARY);
	pit_load(PIT_CH0_DATA, PIT_MAX_COUNT);
}

void pit_oneshot_start(uint16_t count)
{
	uint8_t b = inb(PIT_PORT_B);

	/* Gate on, speaker off: the channel counts but makes no sound. */
	outb(PIT_PORT_B, (b & ~PIT_PORTB_SPEAKER) | PIT_PORTB_GATE2);
	outb(PIT_COMMAND, PIT_SEL_CH2 | PIT_ACCESS_LOHI | PIT_MODE_ONESHOT | PIT_BINARY);
	pit_load(PIT_CH2_DATA, count);
}

int pit_oneshot_wait(uint64_t max_polls)
{
	for (uint64_t i = 0; i < max_polls; i++)
		if (inb(PIT_PORT_B) & PIT_PORTB_OUT2)
			return 0;
	return -1;
}
