/* The C library of the clang build (zig's freestanding target has none): a printf that
 * covers what csmith's programs print, putchar/puts on the semihosted console, and the
 * string and memory functions the compiler and csmith.h call. Written for clarity, built
 * with -fno-builtin so that no loop here is turned back into a call to itself. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "rt.h"

int putchar(int c) {
    conformance_putc((char)c);
    return (unsigned char)c;
}

int puts(const char *s) {
    while (*s) conformance_putc(*s++);
    conformance_putc('\n');
    return 1;
}

void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++) {
        if (*x != *y) return *x - *y;
    }
    return 0;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

int strcmp(const char *a, const char *b) {
    for (; *a && *a == *b; a++, b++) {
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
    for (; n && *a && *a == *b; n--, a++, b++) {
    }
    return n ? (unsigned char)*a - (unsigned char)*b : 0;
}

/* ---- printf: flags - 0 + space #, width and precision (also *), length hh h l ll z j t,
 * conversions d i u o x X c s p % ---- */

struct spec {
    int left, zero, plus, space, alt;
    int width, prec; /* prec < 0: none */
};

static int emit_padding(char c, int n) {
    for (int i = 0; i < n; i++) conformance_putc(c);
    return n > 0 ? n : 0;
}

static int emit_number(const struct spec *sp, unsigned long long v, int negative, unsigned base,
                       int upper) {
    char digits[24];
    int nd = 0;
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    while (v) {
        digits[nd++] = set[v % base];
        v /= base;
    }
    int prec = sp->prec < 0 ? 1 : sp->prec;
    int zeros = prec > nd ? prec - nd : 0;
    if (sp->alt && base == 8 && zeros == 0 && (nd == 0 || digits[nd - 1] != '0')) zeros = 1;
    const char *prefix = "";
    if (negative) prefix = "-";
    else if (sp->plus) prefix = "+";
    else if (sp->space) prefix = " ";
    else if (sp->alt && base == 16 && nd) prefix = upper ? "0X" : "0x";
    int plen = (int)strlen(prefix);
    int body = plen + zeros + nd;
    int pad = sp->width > body ? sp->width - body : 0;
    int count = 0;
    if (!sp->left && !(sp->zero && sp->prec < 0)) count += emit_padding(' ', pad);
    for (int i = 0; i < plen; i++) conformance_putc(prefix[i]);
    if (!sp->left && sp->zero && sp->prec < 0) count += emit_padding('0', pad);
    count += emit_padding('0', zeros);
    for (int i = nd - 1; i >= 0; i--) conformance_putc(digits[i]);
    if (sp->left) count += emit_padding(' ', pad);
    return count + plen + nd;
}

int vprintf(const char *fmt, va_list ap) {
    int count = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            conformance_putc(*fmt);
            count++;
            continue;
        }
        struct spec sp = {0, 0, 0, 0, 0, 0, -1};
        for (;; fmt++) {
            char f = fmt[1];
            if (f == '-') sp.left = 1;
            else if (f == '0') sp.zero = 1;
            else if (f == '+') sp.plus = 1;
            else if (f == ' ') sp.space = 1;
            else if (f == '#') sp.alt = 1;
            else break;
        }
        fmt++;
        if (*fmt == '*') {
            sp.width = va_arg(ap, int);
            if (sp.width < 0) {
                sp.left = 1;
                sp.width = -sp.width;
            }
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9') sp.width = sp.width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            sp.prec = 0;
            if (*fmt == '*') {
                sp.prec = va_arg(ap, int);
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9') sp.prec = sp.prec * 10 + (*fmt++ - '0');
            }
        }
        int len = 0; /* 0 int, 1 long, 2 long long, -1 short, -2 char, 3 size_t/ptrdiff_t */
        for (;; fmt++) {
            if (*fmt == 'l') len = len == 1 ? 2 : 1;
            else if (*fmt == 'h') len = len == -1 ? -2 : -1;
            else if (*fmt == 'j') len = 2;
            else if (*fmt == 'z' || *fmt == 't') len = 3;
            else break;
        }
        char conv = *fmt;
        if (conv == 'd' || conv == 'i') {
            long long v;
            if (len == 2) v = va_arg(ap, long long);
            else if (len == 1) v = va_arg(ap, long);
            else v = va_arg(ap, int);
            if (len == -1) v = (short)v;
            if (len == -2) v = (signed char)v;
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            count += emit_number(&sp, mag, v < 0, 10, 0);
        } else if (conv == 'u' || conv == 'o' || conv == 'x' || conv == 'X') {
            unsigned long long v;
            if (len == 2) v = va_arg(ap, unsigned long long);
            else if (len == 1) v = va_arg(ap, unsigned long);
            else v = va_arg(ap, unsigned int);
            if (len == -1) v = (unsigned short)v;
            if (len == -2) v = (unsigned char)v;
            unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
            count += emit_number(&sp, v, 0, base, conv == 'X');
        } else if (conv == 'p') {
            struct spec pp = sp;
            pp.alt = 1;
            count += emit_number(&pp, (uintptr_t)va_arg(ap, void *), 0, 16, 0);
        } else if (conv == 'c') {
            int pad = sp.width > 1 ? sp.width - 1 : 0;
            if (!sp.left) count += emit_padding(' ', pad);
            conformance_putc((char)va_arg(ap, int));
            if (sp.left) count += emit_padding(' ', pad);
            count++;
        } else if (conv == 's') {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            int n = (int)strlen(s);
            if (sp.prec >= 0 && sp.prec < n) n = sp.prec;
            int pad = sp.width > n ? sp.width - n : 0;
            if (!sp.left) count += emit_padding(' ', pad);
            for (int i = 0; i < n; i++) conformance_putc(s[i]);
            if (sp.left) count += emit_padding(' ', pad);
            count += n;
        } else if (conv == '%') {
            conformance_putc('%');
            count++;
        } else {
            if (!conv) break;
            conformance_putc('%'); /* unknown conversion: print it as written */
            conformance_putc(conv);
            count += 2;
        }
    }
    return count;
}

int printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}
