/* The <string.h> of this libc-free firmware: the routines hal/runtime.c provides (the code
 * generated from the DBC clears its buffers with memset). */
#ifndef STRING_H
#define STRING_H

#include <stddef.h>

void *memset(void *dst, int value, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

#endif
