/*
 * The M_CAN data path in C: the registers an ISR touches on every frame, the RX store, the TX
 * fetch at TXBAR, the TX FIFO and event FIFO indices and the interrupt lines.
 *
 * The Python model (model.py) is the specification and handles everything else: the
 * configuration, INIT/CCE, cancellation, error frames, bus-off, internal loopback. Both work
 * on one state, this struct: the Python register file's values are views of `regs`, and the
 * model's TX requests, counters and FIFO indices are properties over the fields below. A
 * function here that meets anything it does not serve (a write the Python model would log,
 * an element outside the message RAM, a register with configuration side effects) changes
 * nothing and returns DECLINED; the caller then runs the Python model on the same state.
 * A differential test (tests/test_mcan_native.py) holds the two paths equal.
 *
 * Register offsets and fields come from the board header that `harness regs` generates from
 * the Python declaration, so the layout is declared once.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "asilb_m4.h"

#define W(reg) (offsetof(MCAN_Type, reg) / 4)
#define GET(reg, f, v) (((uint32_t)(v) & MCAN_##reg##_##f##_Msk) >> MCAN_##reg##_##f##_Pos)
#define PUT(reg, f, x) ((((uint32_t)(x)) << MCAN_##reg##_##f##_Pos) & MCAN_##reg##_##f##_Msk)
#define CLR(reg, f) (~(uint32_t)MCAN_##reg##_##f##_Msk)
#define IRQ(bit) MCAN_IR_##bit##_Msk

#define WORDS 256 /* the block spans 0x400 bytes */
#define DECLINED 1
#define SERVED 0

enum { F_EXT = 1, F_FD = 2, F_BRS = 4, F_ESI = 8, F_REMOTE = 16 };
enum { A_REJECT = 3, A_FIFO0 = 1, A_FIFO1 = 2, A_PRIO_FIFO0 = 5, A_PRIO_FIFO1 = 6 };

static const uint8_t FD_LENGTHS[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};

typedef struct {
    uint32_t start, size, watermark, overwrite, data_field, element_bytes;
} mcan_fifo;

/* A frame as the bus carries it. Mirrored by NativeFrame in native.py. */
typedef struct {
    uint64_t timestamp_ns;
    uint32_t id, flags, length, remote_length;
    uint8_t data[64];
} mcan_frame;

typedef struct {
    uint64_t requested_at; /* ns, at its TXBAR */
    uint32_t marker, event;
    mcan_frame frame; /* as it will be sent (FDOE/BRSE applied) */
} mcan_tx;

/* Everything a snapshot holds comes first; mirrored by McanCore in native.py. */
typedef struct {
    uint32_t regs[WORDS];
    uint32_t setup_valid, fd, monitoring, loopback;
    uint32_t dedicated, fifo_queue, queue_mode, tx_start, tx_element_bytes;
    uint32_t event_start, event_size, event_watermark;
    mcan_fifo fifos[2];
    uint32_t pending; /* TX requests held (the model's _pending) */
    int32_t offered, looping;
    uint32_t tec, rec, fifo_get, fifo_used;
    uint32_t recovering; /* from bus-off (the model's recovery deadline is armed) */
    uint32_t lines; /* the levels last given to the interrupt lines */
    mcan_tx tx[32];
} mcan_core;

typedef struct {
    mcan_core s;
    /* access masks per word, from the declaration; served_*: handled here */
    uint32_t write_only[WORDS], read_clear[WORDS], replace[WORDS], one_to_clear[WORDS];
    uint32_t one_to_set[WORDS], defined[WORDS], unmodelled[WORDS];
    uint8_t served_read[WORDS], served_write[WORDS];
    uint8_t *ram;
    uint32_t ram_size;
    const uint64_t *cycles;
    uint64_t hz;
    void (*set_lines)(uint32_t levels); /* the interrupt lines' new levels (Python: NVIC) */
    void (*wake_bus)(void);             /* TX requests were added */
    uint64_t served, declined; /* accesses and bus events handled here / left to Python */
    struct scs_state *nvic;    /* the native NVIC the lines go to (then not set_lines) */
    uint32_t irqs[2];          /* its IRQ numbers of lines 0 and 1 */
    struct can_bus *bus;       /* the native bus it is on (then TX requests go there, not Python) */
} mcan_state;

void bus_request(struct can_bus *b, uint64_t at_ns); /* network/bus.c */

void scs_set_line(struct scs_state *s, uint32_t irq, uint32_t level); /* core/native.c */

static int count(mcan_state *m, int result) {
    if (result == SERVED) m->served++;
    else m->declined++;
    return result;
}

uint32_t mcan_sizeof_core(void) { return sizeof(mcan_core); }
uint32_t mcan_sizeof_state(void) { return sizeof(mcan_state); }

/* out of INIT and not recovering from bus-off: taking part in bus traffic */
static int on_bus(const mcan_state *m) {
    return !GET(CCCR, INIT, m->s.regs[W(CCCR)]) && !m->s.recovering;
}

static uint64_t now_ns(const mcan_state *m) {
    return (uint64_t)((unsigned __int128)*m->cycles * 1000000000u / m->hz);
}

/* Mcan._wake_bus: TX requests were added. On a native bus (and not in internal loopback,
 * which the Python model runs) the bus hears it here. */
static void wake_bus(mcan_state *m) {
    if (!m->bus || m->s.monitoring) m->wake_bus();
    else if (m->s.pending && on_bus(m)) bus_request(m->bus, now_ns(m));
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t lane_mask(uint32_t offset, uint32_t size) {
    uint32_t m = size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
    return m << (8 * (offset & 3));
}
static int in_ram(const mcan_state *m, uint32_t offset, uint32_t length) {
    return (uint64_t)offset + length <= m->ram_size;
}

void mcan_update_interrupts(mcan_state *m) {
    uint32_t *r = m->s.regs;
    uint32_t active = r[W(IR)] & r[W(IE)], select = r[W(ILS)], enable = r[W(ILE)];
    uint32_t levels = ((active & ~select) && GET(ILE, EINT0, enable))
                    | ((active & select) && GET(ILE, EINT1, enable)) << 1;
    /* the Python model sets both lines on every update; setting a low line again is a no-op */
    if (levels != m->s.lines || levels) {
        m->s.lines = levels;
        if (m->nvic) {
            scs_set_line(m->nvic, m->irqs[0], levels & 1);
            scs_set_line(m->nvic, m->irqs[1], levels >> 1 & 1);
        } else {
            m->set_lines(levels);
        }
    }
}

/* ---- frames in the message RAM ---- */

uint32_t can_dlc_of(const mcan_frame *f) { /* also network/bus.c's */
    if (f->flags & F_REMOTE) return f->remote_length;
    if (f->length <= 8) return f->length;
    for (uint32_t d = 9; d < 16; d++)
        if (FD_LENGTHS[d] == f->length) return d;
    return 15;
}

static uint32_t id_word(const mcan_frame *f) {
    uint32_t id = f->flags & F_EXT ? f->id : f->id << 18;
    return PUT(ELEMENT_T0, ESI, !!(f->flags & F_ESI)) | PUT(ELEMENT_T0, XTD, !!(f->flags & F_EXT))
         | PUT(ELEMENT_T0, RTR, !!(f->flags & F_REMOTE)) | PUT(ELEMENT_T0, ID, id);
}

static void read_tx_element(const uint8_t *p, mcan_tx *t) {
    uint32_t t0 = rd32(p), t1 = rd32(p + 4);
    uint32_t ext = GET(ELEMENT_T0, XTD, t0), id = GET(ELEMENT_T0, ID, t0);
    uint32_t fd = GET(ELEMENT_T1, FDF, t1), dlc = GET(ELEMENT_T1, DLC, t1);
    uint32_t remote = GET(ELEMENT_T0, RTR, t0) && !fd;
    mcan_frame *f = &t->frame;
    memset(f, 0, sizeof *f);
    f->id = ext ? id : id >> 18;
    f->flags = (ext ? F_EXT : 0) | (fd ? F_FD : 0) | (remote ? F_REMOTE : 0)
             | (fd && GET(ELEMENT_T1, BRS, t1) ? F_BRS : 0)
             | (fd && GET(ELEMENT_T0, ESI, t0) ? F_ESI : 0);
    f->length = remote ? 0 : fd ? FD_LENGTHS[dlc] : (dlc < 8 ? dlc : 8);
    f->remote_length = remote ? (dlc < 8 ? dlc : 8) : 0;
    memcpy(f->data, p + 8, f->length);
    t->marker = GET(ELEMENT_T1, MM, t1);
    t->event = GET(ELEMENT_T1, EFC, t1);
}

/* FDOE / BRSE cleared: the frame goes out as a classic frame / without a bit-rate switch */
static void as_sent(const mcan_state *m, mcan_frame *f) {
    uint32_t cccr = m->s.regs[W(CCCR)];
    if (f->flags & F_FD && !GET(CCCR, FDOE, cccr)) {
        f->flags &= F_EXT;
        if (f->length > 8) f->length = 8;
    } else if (f->flags & F_BRS && !GET(CCCR, BRSE, cccr)) {
        f->flags &= ~(uint32_t)F_BRS;
    }
}

/* ---- fault confinement on success (ISO 11898-1) ---- */

static void set_status(mcan_state *m, uint32_t passive, uint32_t warning) {
    uint32_t *r = m->s.regs, psr = r[W(PSR)];
    uint32_t new = (psr & CLR(PSR, EP) & CLR(PSR, EW) & CLR(PSR, BO))
                 | PUT(PSR, EP, passive) | PUT(PSR, EW, warning);
    uint32_t changed = psr ^ new;
    r[W(PSR)] = new;
    uint32_t raised = (changed & MCAN_PSR_EP_Msk ? IRQ(EP) : 0)
                    | (changed & MCAN_PSR_EW_Msk ? IRQ(EW) : 0)
                    | (changed & MCAN_PSR_BO_Msk ? IRQ(BO) : 0);
    if (raised) {
        r[W(IR)] |= raised;
        mcan_update_interrupts(m);
    }
}

static void show_counters(mcan_state *m) {
    uint32_t *r = m->s.regs, tec = m->s.tec, rec = m->s.rec, rx_passive = rec >= 128;
    r[W(ECR)] = (r[W(ECR)] & CLR(ECR, TEC) & CLR(ECR, REC) & CLR(ECR, RP))
              | PUT(ECR, TEC, tec < 255 ? tec : 255) | PUT(ECR, REC, rec < 127 ? rec : 127)
              | PUT(ECR, RP, rx_passive);
    set_status(m, tec >= 128 || rx_passive, tec >= 96 || rec >= 96);
}

static void count_success(mcan_state *m, const mcan_frame *f, int received) {
    if (received)
        m->s.rec = m->s.rec >= 128 ? 120 : m->s.rec ? m->s.rec - 1 : 0;
    else if (m->s.tec)
        m->s.tec--;
    uint32_t *r = m->s.regs, psr = r[W(PSR)] & CLR(PSR, LEC);
    if (f->flags & F_BRS) psr &= CLR(PSR, DLEC);
    if (received && f->flags & F_FD)
        psr |= PUT(PSR, RFDF, 1) | PUT(PSR, RBRS, !!(f->flags & F_BRS))
             | PUT(PSR, RESI, !!(f->flags & F_ESI));
    r[W(PSR)] = psr;
    if (m->s.tec || m->s.rec || r[W(ECR)] & (MCAN_ECR_TEC_Msk | MCAN_ECR_REC_Msk | MCAN_ECR_RP_Msk))
        show_counters(m);
}

/* ---- receive: filters and the RX FIFOs ---- */

/* The FIFO a frame goes to, with its filter index (-1: accepted as non-matching); -1: none.
 * Returns DECLINED for what the Python model logs or raises on. */
static int filter(const mcan_state *m, const mcan_frame *f, int *fifo, int *index) {
    const uint32_t *r = m->s.regs;
    uint32_t gfc = r[W(GFC)], ext = f->flags & F_EXT;
    *fifo = -1;
    if (f->flags & F_REMOTE && (ext ? GET(GFC, RRFE, gfc) : GET(GFC, RRFS, gfc))) return SERVED;
    uint32_t ident = ext ? f->id & r[W(XIDAM)] : f->id;
    uint32_t count = ext ? GET(XIDFC, LSE, r[W(XIDFC)]) : GET(SIDFC, LSS, r[W(SIDFC)]);
    uint32_t start = 4 * (ext ? GET(XIDFC, FLESA, r[W(XIDFC)]) : GET(SIDFC, FLSSA, r[W(SIDFC)]));
    uint32_t size = ext ? 8 : 4;
    if (!in_ram(m, start, count * size)) return DECLINED;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p = m->ram + start + i * size;
        uint32_t kind, action, id1, id2;
        if (ext) {
            uint32_t f0 = rd32(p), f1 = rd32(p + 4);
            kind = f1 >> 30, action = f0 >> 29, id1 = f0 & 0x1FFFFFFF, id2 = f1 & 0x1FFFFFFF;
        } else {
            uint32_t s0 = rd32(p);
            kind = s0 >> 30, action = s0 >> 27 & 7, id1 = s0 >> 16 & 0x7FF, id2 = s0 & 0x7FF;
        }
        if (action == 0 || kind == 3) continue;
        int match = kind == 0 ? id1 <= ident && ident <= id2
                  : kind == 1 ? ident == id1 || ident == id2
                  : (ident & id2) == (id1 & id2);
        if (!match) continue;
        *index = (int)i;
        if (action == A_FIFO0 || action == A_PRIO_FIFO0) *fifo = 0;
        else if (action == A_FIFO1 || action == A_PRIO_FIFO1) *fifo = 1;
        else if (action != A_REJECT) return DECLINED; /* logged as unmodelled by the model */
        return SERVED;
    }
    uint32_t non_matching = ext ? GET(GFC, ANFE, gfc) : GET(GFC, ANFS, gfc);
    if (non_matching < 2) *fifo = (int)non_matching, *index = -1;
    return SERVED;
}

/* RXF0S and RXF1S share one layout */
static uint32_t rxfs_pack(uint32_t fill, uint32_t get, uint32_t put, uint32_t full, uint32_t lost) {
    return PUT(RXF0S, F0FL, fill) | PUT(RXF0S, F0GI, get) | PUT(RXF0S, F0PI, put)
         | PUT(RXF0S, F0F, full) | PUT(RXF0S, RF0L, lost);
}

static const uint32_t RX_FLAGS[2][4] = {
    {IRQ(RF0N), IRQ(RF0W), IRQ(RF0F), IRQ(RF0L)},
    {IRQ(RF1N), IRQ(RF1W), IRQ(RF1F), IRQ(RF1L)},
};

/* Can the frame be stored without the model raising (fields that do not fit)? */
static int storable(const mcan_state *m, int n) {
    const mcan_fifo *q = &m->s.fifos[n];
    if (q->size == 0) return 1;
    uint32_t put = GET(RXF0S, F0PI, m->s.regs[n ? W(RXF1S) : W(RXF0S)]);
    return q->size <= 64 && in_ram(m, q->start + put * q->element_bytes, q->element_bytes);
}

static uint32_t store(mcan_state *m, int n, const mcan_frame *f, int index) {
    const mcan_fifo *q = &m->s.fifos[n];
    if (q->size == 0) return 0;
    uint32_t *status = &m->s.regs[n ? W(RXF1S) : W(RXF0S)];
    uint32_t fill = GET(RXF0S, F0FL, *status), get = GET(RXF0S, F0GI, *status);
    uint32_t put = GET(RXF0S, F0PI, *status), lost = GET(RXF0S, RF0L, *status);
    if (fill >= q->size) {
        if (!q->overwrite) {
            *status |= PUT(RXF0S, RF0L, 1);
            return RX_FLAGS[n][3];
        }
        get = (get + 1) % q->size;
        fill--;
    }
    mcan_frame stored = *f;
    if (stored.length > q->data_field) {
        stored.length = q->data_field;
        stored.flags = (stored.flags & (F_EXT | F_BRS | F_ESI)) | F_FD;
    }
    uint8_t *p = m->ram + q->start + put * q->element_bytes;
    uint32_t anmf = index < 0, fidx = index < 0 ? 0 : (uint32_t)index & 0x7F;
    wr32(p, id_word(&stored));
    wr32(p + 4, PUT(ELEMENT_R1, ANMF, anmf) | PUT(ELEMENT_R1, FIDX, fidx)
                | PUT(ELEMENT_R1, FDF, !!(stored.flags & F_FD))
                | PUT(ELEMENT_R1, BRS, !!(stored.flags & F_BRS))
                | PUT(ELEMENT_R1, DLC, can_dlc_of(&stored))
                | PUT(ELEMENT_R1, RXTS, (f->timestamp_ns / 1000) & 0xFFFF));
    memcpy(p + 8, stored.data, stored.length);
    fill++;
    *status = rxfs_pack(fill, get, (put + 1) % q->size, fill >= q->size, lost);
    uint32_t raised = RX_FLAGS[n][0];
    if (q->watermark && fill == q->watermark) raised |= RX_FLAGS[n][1];
    if (fill == q->size) raised |= RX_FLAGS[n][2];
    return raised;
}

/* Filter a frame into its FIFO (the model's _accept). */
static int accept(mcan_state *m, const mcan_frame *f, int commit) {
    if (f->flags & F_FD && !m->s.fd) return SERVED;
    int fifo, index;
    if (filter(m, f, &fifo, &index) == DECLINED) return DECLINED;
    if (fifo < 0) return SERVED;
    if (!commit) return storable(m, fifo) ? SERVED : DECLINED;
    m->s.regs[W(IR)] |= store(m, fifo, f, index);
    return SERVED;
}

/* A frame from the bus (the model's receive). */
int mcan_receive(mcan_state *m, const mcan_frame *f) {
    if (!m->s.setup_valid) return count(m, DECLINED);
    if (!on_bus(m) || (m->s.monitoring && m->s.loopback)) return count(m, SERVED);
    if (accept(m, f, 0) == DECLINED) return count(m, DECLINED);
    count_success(m, f, 1);
    accept(m, f, 1);
    mcan_update_interrupts(m);
    return count(m, SERVED);
}

static int acknowledge(mcan_state *m, int n, uint32_t index, int commit) {
    const mcan_fifo *q = &m->s.fifos[n];
    uint32_t *status = &m->s.regs[n ? W(RXF1S) : W(RXF0S)];
    uint32_t fill = GET(RXF0S, F0FL, *status), get = GET(RXF0S, F0GI, *status);
    if (!q->size || !fill) return SERVED;
    uint32_t released = (index + 64 * q->size - get) % q->size + 1;
    if (released > fill || q->size > 64) return DECLINED; /* logged by the model */
    if (commit)
        *status = (*status & CLR(RXF0S, F0FL) & CLR(RXF0S, F0GI) & CLR(RXF0S, F0F))
                | PUT(RXF0S, F0FL, fill - released) | PUT(RXF0S, F0GI, (index + 1) % q->size);
    return SERVED;
}

/* ---- transmit ---- */

/* A TX element wholly inside the message RAM (the model would read a truncated one) */
static int element_fits(const mcan_state *m, uint32_t offset) {
    if (!in_ram(m, offset, 8)) return 0;
    uint32_t t1 = rd32(m->ram + offset + 4), dlc = GET(ELEMENT_T1, DLC, t1);
    return in_ram(m, offset + 8, GET(ELEMENT_T1, FDF, t1) ? FD_LENGTHS[dlc] : 8);
}

static uint32_t tx_buffers(const mcan_state *m) { return m->s.dedicated + m->s.fifo_queue; }
static uint32_t low_bits(uint32_t n) { return n >= 32 ? 0xFFFFFFFFu : (1u << n) - 1; }

static uint32_t fifo_get_index(const mcan_state *m) {
    return m->s.dedicated + m->s.fifo_get % (m->s.fifo_queue ? m->s.fifo_queue : 1);
}

static uint32_t fifo_put_index(const mcan_state *m) {
    uint32_t get = fifo_get_index(m);
    return m->s.dedicated + (get - m->s.dedicated + m->s.fifo_used) % m->s.fifo_queue;
}

uint32_t mcan_txfqs(const mcan_state *m) {
    if (!m->s.fifo_queue) return 0;
    if (m->s.queue_mode) {
        uint32_t pending = m->s.regs[W(TXBRP)];
        for (uint32_t i = m->s.dedicated; i < tx_buffers(m); i++)
            if (!(pending >> i & 1)) return PUT(TXFQS, TFQPI, i);
        return PUT(TXFQS, TFQF, 1);
    }
    uint32_t free = m->s.fifo_queue - m->s.fifo_used;
    return PUT(TXFQS, TFFL, free) | PUT(TXFQS, TFGI, fifo_get_index(m))
         | PUT(TXFQS, TFQPI, fifo_put_index(m)) | PUT(TXFQS, TFQF, free == 0);
}

/* The model's _fifo_requests: only the put index may be requested, when not full. */
static int fifo_requests(mcan_state *m, uint32_t *requested, int commit) {
    uint32_t fifo_bits = low_bits(m->s.fifo_queue) << m->s.dedicated;
    uint32_t for_fifo = *requested & fifo_bits;
    if (!for_fifo) return SERVED;
    uint32_t used = m->s.fifo_used;
    uint32_t accepted = used < m->s.fifo_queue ? for_fifo & (1u << fifo_put_index(m)) : 0;
    if (for_fifo != accepted) return DECLINED; /* logged by the model */
    if (commit) {
        m->s.fifo_get = fifo_get_index(m) - m->s.dedicated;
        m->s.fifo_used = used + 1;
    }
    *requested = (*requested & ~fifo_bits) | accepted;
    return SERVED;
}

static int txbar(mcan_state *m, uint32_t written, int commit) {
    uint32_t *r = m->s.regs;
    if (m->s.monitoring && !m->s.loopback) return DECLINED; /* logged by the model */
    uint32_t valid = low_bits(tx_buffers(m));
    if (written & ~valid) return DECLINED;
    uint32_t requested = written & valid & ~r[W(TXBRP)];
    if (m->s.fifo_queue && !m->s.queue_mode && fifo_requests(m, &requested, commit) == DECLINED)
        return DECLINED;
    for (uint32_t bits = requested; bits; bits &= bits - 1)
        if (!element_fits(m, m->s.tx_start + (uint32_t)__builtin_ctz(bits) * m->s.tx_element_bytes))
            return DECLINED;
    if (!commit) return SERVED;
    r[W(TXBAR)] = 0; /* the add request is taken at once */
    uint64_t now = now_ns(m);
    for (uint32_t bits = requested; bits; bits &= bits - 1) {
        uint32_t index = (uint32_t)__builtin_ctz(bits);
        mcan_tx *t = &m->s.tx[index];
        read_tx_element(m->ram + m->s.tx_start + index * m->s.tx_element_bytes, t);
        as_sent(m, &t->frame);
        t->requested_at = now;
        m->s.pending |= 1u << index;
    }
    r[W(TXBRP)] |= requested;
    r[W(TXBTO)] &= ~requested;
    r[W(TXBCF)] &= ~requested;
    if (requested) wake_bus(m);
    return SERVED;
}

uint64_t can_arbitration_key(const mcan_frame *f) {
    uint32_t rtr = !!(f->flags & F_REMOTE);
    if (f->flags & F_EXT)
        return (uint64_t)(f->id >> 18) << 21 | 1u << 20 | 1u << 19 | (f->id & 0x3FFFF) << 1 | rtr;
    return (uint64_t)f->id << 21 | rtr << 20;
}

/* The request that goes to arbitration at `now`: lowest ID, then lowest buffer; -1: none.
 * The frame offered (ESI set while error passive) is copied to `out`. */
int32_t mcan_offer(mcan_state *m, uint64_t now, mcan_frame *out) {
    m->s.offered = -1;
    if (!m->s.pending || !on_bus(m) || m->s.monitoring) return -1;
    int fifo_mode = m->s.fifo_queue && !m->s.queue_mode;
    uint32_t oldest = fifo_mode ? fifo_get_index(m) : 0;
    int32_t best = -1;
    uint64_t best_key = 0;
    for (uint32_t bits = m->s.pending; bits; bits &= bits - 1) {
        uint32_t i = (uint32_t)__builtin_ctz(bits);
        const mcan_tx *t = &m->s.tx[i];
        if (t->requested_at > now) continue;
        if (fifo_mode && i >= m->s.dedicated && i != oldest) continue;
        uint64_t key = can_arbitration_key(&t->frame);
        if (best < 0 || key < best_key) best = (int32_t)i, best_key = key;
    }
    if (best < 0) return -1;
    m->s.offered = best;
    *out = m->s.tx[best].frame;
    if (out->flags & F_FD && GET(PSR, EP, m->s.regs[W(PSR)])) out->flags |= F_ESI;
    return best;
}

uint64_t mcan_pending_since(const mcan_state *m) {
    uint64_t first = UINT64_MAX;
    if (!on_bus(m) || m->s.monitoring) return first;
    for (uint32_t bits = m->s.pending; bits; bits &= bits - 1) {
        uint64_t at = m->s.tx[__builtin_ctz(bits)].requested_at;
        if (at < first) first = at;
    }
    return first;
}

static int fifo_release(mcan_state *m) {
    uint32_t get = fifo_get_index(m), used = m->s.fifo_used;
    while (used && !(m->s.pending >> get & 1)) {
        get = m->s.dedicated + (get - m->s.dedicated + 1) % m->s.fifo_queue;
        used--;
    }
    m->s.fifo_get = get - m->s.dedicated;
    m->s.fifo_used = used;
    return used == 0;
}

static uint32_t store_event(mcan_state *m, const mcan_frame *f, uint32_t marker) {
    uint32_t size = m->s.event_size, *status = &m->s.regs[W(TXEFS)];
    if (!size) return 0;
    uint32_t fill = GET(TXEFS, EFFL, *status), get = GET(TXEFS, EFGI, *status);
    uint32_t put = GET(TXEFS, EFPI, *status), lost = GET(TXEFS, TEFL, *status);
    if (fill >= size) {
        *status |= PUT(TXEFS, TEFL, 1);
        return IRQ(TEFL);
    }
    uint8_t *p = m->ram + m->s.event_start + put * 8;
    wr32(p, id_word(f));
    wr32(p + 4, PUT(ELEMENT_E1, MM, marker) | PUT(ELEMENT_E1, ET, 1)
                | PUT(ELEMENT_E1, FDF, !!(f->flags & F_FD)) | PUT(ELEMENT_E1, BRS, !!(f->flags & F_BRS))
                | PUT(ELEMENT_E1, DLC, can_dlc_of(f)) | PUT(ELEMENT_E1, TXTS, (f->timestamp_ns / 1000) & 0xFFFF));
    fill++;
    *status = PUT(TXEFS, EFFL, fill) | PUT(TXEFS, EFGI, get) | PUT(TXEFS, EFPI, (put + 1) % size)
            | PUT(TXEFS, EFF, fill >= size) | PUT(TXEFS, TEFL, lost);
    uint32_t raised = IRQ(TEFN);
    if (m->s.event_watermark && fill == m->s.event_watermark) raised |= IRQ(TEFW);
    if (fill == size) raised |= IRQ(TEFF);
    return raised;
}

static int acknowledge_events(mcan_state *m, uint32_t index, int commit) {
    uint32_t size = m->s.event_size, *status = &m->s.regs[W(TXEFS)];
    uint32_t fill = GET(TXEFS, EFFL, *status), get = GET(TXEFS, EFGI, *status);
    if (!size || !fill) return SERVED;
    uint32_t released = (index + 32 * size - get) % size + 1;
    if (released > fill) return DECLINED; /* logged by the model */
    if (commit)
        *status = PUT(TXEFS, EFFL, fill - released) | PUT(TXEFS, EFGI, (index + 1) % size)
                | (*status & MCAN_TXEFS_EFPI_Msk) | PUT(TXEFS, EFF, fill - released >= size)
                | (*status & MCAN_TXEFS_TEFL_Msk);
    return SERVED;
}

/* The offered request was sent; `f` is the frame as the bus delivered it (timestamped). */
int mcan_transmitted(mcan_state *m, const mcan_frame *f) {
    int32_t index = m->s.offered;
    if (index < 0) return count(m, SERVED);
    if (!m->s.setup_valid || !(m->s.pending >> index & 1)) return count(m, DECLINED);
    const mcan_tx *t = &m->s.tx[index];
    uint32_t fifo_mode = m->s.fifo_queue && !m->s.queue_mode;
    uint32_t event = t->event && m->s.event_size;
    if (event && !in_ram(m, m->s.event_start + m->s.event_size * 8, 0)) return count(m, DECLINED);
    /* In loopback the frame is also received: decided before anything changes, so the TX
     * event (which may overwrite filters or FIFO elements) must not come first. */
    if (m->s.loopback && (event || accept(m, f, 0) == DECLINED)) return count(m, DECLINED);
    m->s.offered = -1;
    uint32_t bit = 1u << index, *r = m->s.regs;
    m->s.pending &= ~bit;
    r[W(TXBRP)] &= ~bit;
    r[W(TXBTO)] |= bit;
    count_success(m, f, 0);
    uint32_t raised = r[W(TXBTIE)] & bit ? IRQ(TC) : 0;
    if ((uint32_t)index >= m->s.dedicated && fifo_mode && fifo_release(m)) raised |= IRQ(TFE);
    if (t->event) raised |= store_event(m, f, t->marker);
    r[W(IR)] |= raised;
    if (m->s.loopback) accept(m, f, 1);
    mcan_update_interrupts(m);
    return count(m, SERVED);
}

/* ---- the register front ---- */

/* The value a write leaves, as RegisterFile.write computes it; DECLINED if it would log. */
static int written_value(const mcan_state *m, uint32_t w, uint32_t value, uint32_t lanes,
                         uint32_t *out) {
    uint32_t old = m->s.regs[w], rep = m->replace[w] & lanes;
    uint32_t new = (((old & ~rep) | (value & rep)) & ~(m->one_to_clear[w] & value))
                 | (m->one_to_set[w] & value);
    if (value & ~m->defined[w] || (new ^ old) & m->unmodelled[w]) return DECLINED;
    *out = new;
    return SERVED;
}

static int mmio_write(mcan_state *m, uint32_t offset, uint32_t size, uint32_t value) {
    uint32_t w = offset >> 2;
    if (w >= WORDS || !m->served_write[w] || (offset & 3) + size > 4) return DECLINED;
    uint32_t lanes = lane_mask(offset, size), new;
    value = (value << (8 * (offset & 3))) & lanes;
    if (written_value(m, w, value, lanes, &new) == DECLINED) return DECLINED;
    int needs_setup = w == W(TXBAR) || w == W(RXF0A) || w == W(RXF1A) || w == W(TXEFA);
    if (needs_setup && !m->s.setup_valid) return DECLINED;
    /* check first, so that a declined access leaves the state as it was */
    if ((w == W(TXBAR) && txbar(m, value, 0) == DECLINED)
        || (w == W(RXF0A) && acknowledge(m, 0, GET(RXF0A, F0AI, value), 0) == DECLINED)
        || (w == W(RXF1A) && acknowledge(m, 1, GET(RXF1A, F1AI, value), 0) == DECLINED)
        || (w == W(TXEFA) && acknowledge_events(m, GET(TXEFA, EFAI, value), 0) == DECLINED))
        return DECLINED;
    m->s.regs[w] = new;
    if (w == W(TXBAR)) txbar(m, value, 1);
    else if (w == W(RXF0A)) acknowledge(m, 0, GET(RXF0A, F0AI, value), 1);
    else if (w == W(RXF1A)) acknowledge(m, 1, GET(RXF1A, F1AI, value), 1);
    else if (w == W(TXEFA)) acknowledge_events(m, GET(TXEFA, EFAI, value), 1);
    else if (w == W(IR) || w == W(IE) || w == W(ILS) || w == W(ILE) || w == W(TXBTIE))
        mcan_update_interrupts(m);
    return SERVED;
}

static int mmio_read(mcan_state *m, uint32_t offset, uint32_t size, uint32_t *out) {
    uint32_t w = offset >> 2;
    if (w >= WORDS || !m->served_read[w] || (offset & 3) + size > 4) return DECLINED;
    if (w == W(TXFQS) && !m->s.setup_valid) return DECLINED;
    uint32_t value = w == W(TXFQS) ? mcan_txfqs(m) : m->s.regs[w];
    uint32_t lanes = lane_mask(offset, size), clear = m->read_clear[w] & lanes;
    if (clear) m->s.regs[w] &= ~clear;
    *out = ((value & ~m->write_only[w]) >> (8 * (offset & 3))) & (lanes >> (8 * (offset & 3)));
    return SERVED;
}

int mcan_mmio_write(mcan_state *m, uint32_t offset, uint32_t size, uint32_t value) {
    return count(m, mmio_write(m, offset, size, value));
}

int mcan_mmio_read(mcan_state *m, uint32_t offset, uint32_t size, uint32_t *out) {
    return count(m, mmio_read(m, offset, size, out));
}
