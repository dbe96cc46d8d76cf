/*
 * Fault-safe reads of flash that may be torn: an uncorrectable ECC unit makes the load a
 * precise BusFault (CFSR.PRECISERR, BFAR). Such reads go through probe_read32, whose single
 * load instruction (probe_load_insn) the fault handler recognises in the stacked PC: it then
 * resumes at probe_fail_path (which returns -1) and clears the fault status. Any other
 * BusFault is passed on to HardFault_Handler (the firmware's: the bootloader resets, the
 * application stops as before).
 */
#include "boot.h"

volatile uint32_t probe_faults;

/* int probe_read32(uint32_t address, uint32_t *value): r0 = address, r1 = value. */
__asm__(
    "  .syntax unified\n"
    "  .thumb\n"
    "  .section .text.probe_read32,\"ax\",%progbits\n"
    "  .global probe_read32\n"
    "  .global probe_load_insn\n"
    "  .global probe_fail_path\n"
    "  .type probe_read32, %function\n"
    "  .thumb_func\n"
    "probe_read32:\n"
    "probe_load_insn:\n"
    "  ldr r2, [r0]\n"
    "  str r2, [r1]\n"
    "  movs r0, #0\n"
    "  bx lr\n"
    "probe_fail_path:\n"
    "  movs r0, #0\n"
    "  subs r0, r0, #1\n"
    "  bx lr\n"
    "  .size probe_read32, . - probe_read32\n"
    "\n"
    "  .section .text.BusFault_Handler,\"ax\",%progbits\n"
    "  .global BusFault_Handler\n"
    "  .type BusFault_Handler, %function\n"
    "  .thumb_func\n"
    "BusFault_Handler:\n"
    "  tst lr, #4\n"
    "  ite eq\n"
    "  mrseq r0, msp\n"
    "  mrsne r0, psp\n"
    "  push {r4, lr}\n"
    "  bl probe_fixup\n"
    "  pop {r4, lr}\n"
    "  cmp r0, #0\n"
    "  beq 1f\n"
    "  bx lr\n"
    "1:\n"
    "  b.w HardFault_Handler\n"
    "  .size BusFault_Handler, . - BusFault_Handler\n"
    "  .text\n");

extern const char probe_load_insn[], probe_fail_path[];

#define CFSR_BFSR 0x0000FF00u   /* BusFault status bits (write 1 to clear) */
#define HFSR_FORCED (1u << 30)

int probe_fixup(uint32_t *frame) {
    if ((frame[6] & ~1u) != ((uint32_t)probe_load_insn & ~1u)) return 0;
    frame[6] = (uint32_t)probe_fail_path & ~1u; /* the stacked return address */
    SCS->CFSR = CFSR_BFSR;
    SCS->HFSR = HFSR_FORCED; /* when it came escalated to HardFault */
    probe_faults++;
    return 1;
}

void probe_enable(void) {
    SCS->SHCSR |= SCS_SHCSR_BUSFAULTENA_Msk;
    __asm volatile("dsb\n isb" ::: "memory");
}

int probe_read_bytes(uint32_t address, void *dst, uint32_t length) {
    uint8_t *out = dst;
    uint32_t word = address & ~3u, end = address + length;
    for (; word < end; word += 4u) {
        uint32_t value;
        if (probe_read32(word, &value) != 0) return -1;
        for (uint32_t i = 0; i < 4u; i++) {
            uint32_t at = word + i;
            if (at >= address && at < end) out[at - address] = (uint8_t)(value >> (8u * i));
        }
    }
    return 0;
}
