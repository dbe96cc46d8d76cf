/* Console output and exit through ARM semihosting (`bkpt 0xAB`), for the harness's tests. */
#include "hal.h"

__attribute__((section(".noinit"))) volatile uint32_t scenario; /* 1: an unsupported call */

static uint32_t semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

volatile uint32_t clock_cs;

int main(void) {
    if (scenario == 1) semihost(0x01, ":tt"); /* SYS_OPEN: not served */
    semihost(0x04, "hello ");                 /* SYS_WRITE0 */
    semihost(0x03, "w");                      /* SYS_WRITEC */
    static const char tail[] = "orld\n";
    const uint32_t block[3] = {1, (uint32_t)tail, sizeof tail - 1};
    semihost(0x05, block);                    /* SYS_WRITE to stdout */
    for (volatile int i = 0; i < 1200000; i++) {
    }
    clock_cs = semihost(0x10, 0);             /* SYS_CLOCK: centiseconds of virtual time */
    const uint32_t status[2] = {0x20026, 3};  /* ADP_Stopped_ApplicationExit, exit code 3 */
    semihost(0x20, status);                   /* SYS_EXIT_EXTENDED */
    for (;;) __asm volatile("wfi");
}
