/* The few C runtime routines the compiler emits calls to (no libc in -nostdlib builds). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

void *memset(void *dst, int value, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)value;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

/* ARM EABI helpers: note the argument order of memset differs. */
void __aeabi_memset(void *dst, size_t n, int value) { memset(dst, value, n); }
void __aeabi_memset4(void *dst, size_t n, int value) { memset(dst, value, n); }
void __aeabi_memset8(void *dst, size_t n, int value) { memset(dst, value, n); }
void __aeabi_memclr(void *dst, size_t n) { memset(dst, 0, n); }
void __aeabi_memclr4(void *dst, size_t n) { memset(dst, 0, n); }
void __aeabi_memclr8(void *dst, size_t n) { memset(dst, 0, n); }
void __aeabi_memcpy(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
void __aeabi_memcpy4(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
void __aeabi_memcpy8(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
