/* Conformance runtime: vector table, reset, semihosted console and exit, the SysTick that
 * interrupts the program at arbitrary instructions, and the FP-context canaries.
 *
 * The same image runs on the harness and on QEMU's mps2-an386. What changes between runs is
 * two words in flash that the harness patches before it starts the core (no rebuild):
 *   conformance_tick_reload  SysTick period in core cycles; 0 = no tick (the QEMU reference)
 *   conformance_fp_clobber   1 = enable the FPU, fill s0-s31/FPSCR with canaries before main,
 *                            let the tick handler clobber s0-s15/FPSCR, check them after main
 */
#include "rt.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(int argc, char **argv);

/* In flash, by a section of their own: gcc would put a const volatile object in .data. */
#define CONFIG __attribute__((used, section(".conformance_config")))
CONFIG const volatile uint32_t conformance_tick_reload = 0;
CONFIG const volatile uint32_t conformance_fp_clobber = 0;
__attribute__((used)) volatile uint32_t conformance_ticks; /* ticks taken, read by the sweep */

/* rt_asm.S */
void SysTick_Handler(void);
extern const uint32_t conformance_fp_canaries[33]; /* s0-s31, FPSCR */
void conformance_fp_fill(void);                     /* load the canaries */
void conformance_fp_dump(uint32_t out[33]);         /* store s0-s31, FPSCR */

/* newlib's stdio flush for the gcc build (rt_newlib.c); absent in the clang build */
__attribute__((weak)) void conformance_libc_flush(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

int conformance_semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The console is written with SYS_WRITE0: QEMU's ARM semihosting has no pre-opened handle
 * 1 (a program would SYS_OPEN ":tt" first), while WRITE0 reaches the console on both. The
 * programs print text, never a NUL. */
static char out_buf[256 + 1];
static unsigned out_len;

void conformance_flush(void) {
    if (out_len) {
        out_buf[out_len] = 0;
        conformance_semihost(SYS_WRITE0, out_buf);
        out_len = 0;
    }
}

void conformance_putc(char c) {
    out_buf[out_len++] = c;
    if (c == '\n' || out_len == sizeof out_buf - 1) conformance_flush();
}

void conformance_write(const char *buf, unsigned len) {
    for (unsigned i = 0; i < len; i++) conformance_putc(buf[i]);
}

static void put_hex(uint32_t v) {
    for (int i = 28; i >= 0; i -= 4) conformance_putc("0123456789ABCDEF"[(v >> i) & 15]);
}

void conformance_exit(int code) {
    if (conformance_libc_flush) conformance_libc_flush();
    SYST_CSR = 0;
    if (conformance_fp_clobber) {
        uint32_t now[33];
        conformance_fp_dump(now);
        for (unsigned i = 0; i < 33; i++) {
            if (now[i] == conformance_fp_canaries[i]) continue;
            conformance_write("FP context corrupted: ", 22);
            if (i == 32) {
                conformance_write("FPSCR", 5);
            } else {
                conformance_putc('s');
                if (i >= 10) conformance_putc((char)('0' + i / 10));
                conformance_putc((char)('0' + i % 10));
            }
            conformance_write(" = 0x", 5);
            put_hex(now[i]);
            conformance_putc('\n');
        }
    }
    conformance_flush();
    if (code == 0) {
        conformance_semihost(SYS_EXIT, (const void *)ADP_STOPPED_APPLICATION_EXIT);
    } else {
        uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
        conformance_semihost(SYS_EXIT_EXTENDED, block);
    }
    for (;;) {
    }
}

__attribute__((noreturn)) void Reset_Handler(void) {
    for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
    for (uint32_t *d = &_sbss; d < &_ebss;) *d++ = 0;
    if (conformance_fp_clobber) {
        SCB_CPACR |= 0xFu << 20; /* CP10, CP11: full access */
        __asm__ volatile("dsb\n\tisb" ::: "memory");
        conformance_fp_fill();
    }
    uint32_t reload = conformance_tick_reload;
    if (reload) {
        SYST_RVR = reload - 1; /* period = RVR + 1 cycles */
        SYST_CVR = 0;
        SYST_CSR = 7;          /* processor clock, interrupt, enable */
    }
    static char arg0[] = "conformance", arg1[] = "1"; /* "1": print every global's hash */
    char *argv[] = {arg0, arg1, 0};
    conformance_exit(main(2, argv));
}

/* Any other exception: say which, and stop with a non-zero status. */
__attribute__((noreturn)) void Default_Handler(void) {
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    SYST_CSR = 0;
    conformance_write("\n*** unexpected exception 0x", 28);
    put_hex(ipsr);
    conformance_putc('\n');
    conformance_exit((int)(128 + (ipsr & 0x1FF)));
}

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t conformance_vectors[32] = {
    (vector_t)(uintptr_t)&_estack,
    (vector_t)Reset_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler,
    SysTick_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
};
