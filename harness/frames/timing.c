/*
 * How long a frame occupies the bus, in C: the same bit-by-bit construction as timing.py
 * (the specification, and the path HARNESS_NATIVE=0 takes), without Python per bit. A
 * replayed trace whose frames carry counters and CRCs rarely repeats a frame, so the
 * content cache does not help there: 60-140 us per new frame in Python, 6-11 us through
 * ctypes here. tests/test_can_timing.py holds the two equal.
 */
#include <stdint.h>

#define TRAILER_BITS (1 + 1 + 1 + 7 + 3) /* CRC delimiter, ACK slot and delimiter, EOF, IFS */
#define MAX_BITS 640

typedef struct {
    uint8_t bit[MAX_BITS];
    uint32_t n;
} bits_t;

static void put(bits_t *b, uint32_t value, uint32_t width) {
    for (uint32_t i = 0; i < width; i++) b->bit[b->n++] = (uint8_t)(value >> (width - 1 - i) & 1);
}

static uint32_t crc(const bits_t *b, uint32_t poly, uint32_t width) {
    uint32_t value = 0, top = 1u << (width - 1), mask = (1u << width) - 1;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t feedback = b->bit[i] ^ !!(value & top);
        value = (value << 1) & mask;
        if (feedback) value ^= poly;
    }
    return value;
}

/* Stuff bits among the first n bits: a complement bit after five equal bits. */
static uint32_t stuff_bits(const bits_t *b, uint32_t n) {
    uint32_t stuff = 0, run = 0;
    int last = -1;
    for (uint32_t i = 0; i < n; i++) {
        int bit = b->bit[i];
        if (bit == last) run++;
        else run = 1, last = bit;
        if (run == 5) {
            stuff++;
            last = 1 - bit, run = 1; /* the stuff bit starts a new run */
        }
    }
    return stuff;
}

enum { F_EXT = 1, F_FD = 2, F_BRS = 4, F_ESI = 8, F_REMOTE = 16 };

/* The frame's bits at the nominal rate, at the data rate, and its dynamic stuff bits. */
void harness_frame_bits(uint32_t id, uint32_t flags, uint32_t dlc, const uint8_t *data,
                        uint32_t length, uint32_t out[3]) {
    bits_t b;
    b.n = 0;
    uint32_t fd = !!(flags & F_FD), remote = !!(flags & F_REMOTE);
    put(&b, 0, 1); /* SOF */
    if (flags & F_EXT) {
        put(&b, id >> 18, 11);
        put(&b, 3, 2); /* SRR, IDE */
        put(&b, id & 0x3FFFF, 18);
        put(&b, fd ? 0 : remote, 1); /* RTR / RRS */
        put(&b, fd ? 2 : 0, 2);      /* FDF|r1, res|r0 */
    } else {
        put(&b, id, 11);
        put(&b, fd ? 0 : remote, 1); /* RRS / RTR */
        put(&b, 0, 1);               /* IDE */
        if (fd) put(&b, 2, 2);       /* FDF, res */
        else put(&b, 0, 1);          /* r0 */
    }
    if (fd) {
        put(&b, !!(flags & F_BRS), 1);
        put(&b, !!(flags & F_ESI), 1);
    }
    put(&b, dlc, 4);
    for (uint32_t i = 0; i < length; i++) put(&b, data[i], 8);
    uint32_t header = b.n;
    if (!fd) {
        put(&b, crc(&b, 0x4599, 15), 15);
        uint32_t stuff = stuff_bits(&b, b.n);
        out[0] = b.n + stuff + TRAILER_BITS, out[1] = 0, out[2] = stuff;
        return;
    }
    uint32_t stuff = stuff_bits(&b, header);
    uint32_t crc_width = length <= 16 ? 17 : 21;
    /* stuff count and CRC with a fixed stuff bit before the count and after every 4 bits */
    uint32_t fixed = 4 + crc_width + 1 + (4 + crc_width - 1) / 4;
    uint32_t total = header + stuff + fixed + TRAILER_BITS;
    if (!(flags & F_BRS)) {
        out[0] = total, out[1] = 0, out[2] = stuff;
        return;
    }
    /* the arbitration rate until the BRS bit and from the CRC delimiter on */
    uint32_t brs_index = header - 4 - 8 * length - 2;
    uint32_t nominal = brs_index + 1 + stuff_bits(&b, brs_index + 1) + TRAILER_BITS;
    out[0] = nominal, out[1] = total - nominal, out[2] = stuff;
}
