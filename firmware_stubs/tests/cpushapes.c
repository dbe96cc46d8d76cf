/*
 * Instruction shapes that Unicorn 2.1.4 executed wrongly with its virtual TLB (UC_TLB_VIRTUAL),
 * kept as regression tests. Each routine is hand-written assembly, so no compiler version can
 * change the shape; each returns a count that is only right when every instruction ran.
 * The test reads the `result_*` words once `done` is set.
 */
#include "hal.h"

volatile uint32_t result_it_store_branch;
volatile uint32_t result_itte_backedge;
volatile uint32_t result_unaligned_ldr, result_aligned_ldm;
volatile uint32_t done;
volatile uint32_t sink;
static volatile uint32_t table[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/*
 * Shape 1: an IT block whose conditional store does not execute, then a branch. With the
 * virtual TLB the first instruction at the branch target was skipped, silently.
 * `cmp r0, r1; it ls; strls.w r4, [r11]; b 2f` with r0 > r1, four times: returns 4.
 */
__attribute__((naked, noinline)) static uint32_t it_store_branch(volatile uint32_t *where) {
    __asm volatile(
        "push {r4, r5, r11, lr}\n"
        "mov r11, r0\n"        /* the store's address (never written: the condition fails) */
        "movs r5, #0\n"        /* counter */
        "movs r2, #4\n"        /* iterations */
        "movs r4, #0xAA\n"
        "1:\n"
        "movs r0, #9\n"
        "movs r1, #3\n"
        "cmp r0, r1\n"
        "it ls\n"
        "strls.w r4, [r11]\n"
        "b 2f\n"
        ".balign 4\n"
        "2:\n"
        "adds r5, #1\n"        /* the target's first instruction: must run every time */
        "subs r2, #1\n"
        "bne 1b\n"
        "mov r0, r5\n"
        "pop {r4, r5, r11, pc}\n");
}

/*
 * Shape 2: an `itte` block as the last thing in a loop body, its last (else) instruction
 * executed, then the back-edge. A stale IT state carried across the branch made the load at
 * the loop head skip. Sums table[0..7] (36) and counts the odd entries (4): returns 36*16+4.
 */
__attribute__((naked, noinline)) static uint32_t itte_backedge(volatile uint32_t *values) {
    __asm volatile(
        "push {r4, r5, r6, lr}\n"
        "movs r3, #8\n"        /* entries left */
        "movs r5, #0\n"        /* sum */
        "movs r6, #0\n"        /* odd count */
        "1:\n"
        "ldr r4, [r0], #4\n"   /* must run every iteration */
        "adds r5, r5, r4\n"
        "subs r3, #1\n"
        "tst r4, #1\n"
        "itte ne\n"
        "addne r6, #1\n"
        "strne r6, [r0, #-4]\n"
        "streq r4, [r0, #-4]\n"
        "cmp r3, #0\n"
        "bne 1b\n"
        "lsls r0, r5, #4\n"
        "add r0, r6\n"
        "pop {r4, r5, r6, pc}\n");
}

/* What stays allowed: a plain LDR at an odd address (CCR.UNALIGN_TRP = 0), an aligned LDM. */
static volatile uint8_t bytes[8] = {0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87};

__attribute__((naked, noinline)) static uint32_t unaligned_ldr(volatile uint8_t *p) {
    __asm volatile("ldr r0, [r0, #1]\n bx lr\n");
}

__attribute__((naked, noinline)) static uint32_t aligned_ldm(volatile uint32_t *p) {
    __asm volatile("ldm r0, {r1, r2}\n adds r0, r1, r2\n bx lr\n");
}

int main(void) {
    result_unaligned_ldr = unaligned_ldr(bytes);
    result_aligned_ldm = aligned_ldm(table);
    result_it_store_branch = it_store_branch(&sink);
    result_itte_backedge = itte_backedge(table);
    done = 1;
    for (;;) __asm volatile("wfi");
}
