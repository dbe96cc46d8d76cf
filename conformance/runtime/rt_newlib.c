/* newlib's system calls for the gcc build: its stdio writes through semihosting, its heap
 * grows from the end of .bss towards the stack. Everything else is newlib's own code. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "rt.h"

extern char end, _estack, _stack_size;

void conformance_libc_flush(void) { fflush(stdout); fflush(stderr); }

int _write(int fd, const char *buf, int len) {
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    conformance_write(buf, (unsigned)len); /* one console for both, as on QEMU */
    return len;
}

void *_sbrk(ptrdiff_t incr) {
    static char *brk = &end;
    char *limit = &_estack - (uintptr_t)&_stack_size;
    if (brk + incr > limit) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *old = brk;
    brk += incr;
    return old;
}

int _read(int fd, char *buf, int len) { (void)fd; (void)buf; (void)len; return 0; }
int _close(int fd) { (void)fd; return -1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int code) { conformance_exit(code); }
