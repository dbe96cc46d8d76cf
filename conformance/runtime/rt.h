/* The conformance runtime shared by both builds (see conformance/README in the report). */
#ifndef CONFORMANCE_RT_H
#define CONFORMANCE_RT_H

#include <stdint.h>

#define SYS_WRITEC 0x03
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

int conformance_semihost(int op, const void *arg);
/* Buffered console: flushed with SYS_WRITE at each newline, when full and at exit. */
void conformance_putc(char c);
void conformance_write(const char *buf, unsigned len);
void conformance_flush(void);
__attribute__((noreturn)) void conformance_exit(int code);

#endif
