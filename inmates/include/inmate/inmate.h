/*
 * Everything the inmate runtime offers, in one include. Programs may include the
 * individual headers instead.
 */
#ifndef INMATE_INMATE_H
#define INMATE_INMATE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <inmate/alloc.h>
#include <inmate/cpu.h>
#include <inmate/io.h>
#include <inmate/ioapic.h>
#include <inmate/irq.h>
#include <inmate/lapic.h>
#include <inmate/pci.h>
#include <inmate/pic.h>
#include <inmate/pit.h>
#include <inmate/ports.h>
#include <inmate/printf.h>
#include <inmate/runtime.h>
#include <inmate/string.h>
#include <inmate/test.h>
#include <inmate/timer.h>
#include <inmate/tsc.h>
#include <inmate/uart.h>
#include <inmate/virtio.h>
#include <inmate/virtio_blk.h>
#include <inmate/virtio_console.h>
#include <inmate/virtio_rng.h>

#endif
