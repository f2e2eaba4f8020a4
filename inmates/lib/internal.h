/*
 * Start-up hooks shared between runtime files; not part of the inmate API.
 */
#ifndef INMATE_INTERNAL_H
#define INMATE_INTERNAL_H

#include <bulkhead/bootinfo.h>

void bootinfo_init(const struct bh_bootinfo *raw);
void idt_init(void);
struct irq_frame;
void irq_dispatch(struct irq_frame *f);   /* called by the stubs in vectors.S */
void inmate_start(const struct bh_bootinfo *raw) __attribute__((noreturn));

#endif
