/*
 * The CAN bus in C: arbitration, frame durations, delivery at the end of EOF, intermission,
 * injected error frames and the bus statistics, as harness/network/can.py's CanBus does them
 * (that Python class stays the reference: tests/test_can_bus_native.py drives both alike).
 *
 * A bus's events (the arbitration deadline, the delivery or error frame, the end of the
 * intermission) are queued here, on the network clock's counter: they take their sequence
 * numbers from the same counter as the Python events on that clock, at the moments the
 * Python bus schedules its own, and VirtualClock merges the two queues by (time, sequence).
 * Native M_CANs (peripherals/mcan/native.c) are called directly; every other node, and
 * whatever an M_CAN declines, goes to Python through the bus's callback.
 *
 * The network's lockstep (Network.step / advance_to in network.py, the reference) runs here
 * too: the next moment something may happen, every machine run to it (core/native.c's
 * harness_run_to), then the bus events up to it. A machine Python holds, or that stops for
 * Python, is handed to Python at that point; Python events on the network clock make Python
 * run the clock to that moment (it merges both queues).
 */
#include <stdint.h>
#include <string.h>

#define NEVER UINT64_MAX
#define MAX_NODES 32
#define MAX_BUSES 16
#define MAX_MACHINES 32
#define NS_PER_S 1000000000u
#define MAX_ERROR_IDS 64
#define LOG_SIZE 256 /* drained often: Python's memory stays flat */
#define INTERMISSION_BITS 3
#define ERROR_FRAME_BITS (6 + 8)
#define AFTER_CRC_BITS (1 + 1 + 7)
#define EXTENDED_KEY 0x80000000u
#define DECLINED 1
#define LAST (1ull << 62) /* clock.py's LAST */
#define KEEPS_READY_AT 1
#define DEAF 2
#define STAGED 4

enum { F_EXT = 1, F_FD = 2, F_BRS = 4, F_ESI = 8, F_REMOTE = 16 };

/* Same layout as mcan_frame (peripherals/mcan/native.c) and NativeFrame (Python). */
typedef struct {
    uint64_t timestamp_ns;
    uint32_t id, flags, length, remote_length;
    uint8_t data[64];
} bus_frame;

struct mcan_state;
int32_t mcan_offer(struct mcan_state *m, uint64_t now, bus_frame *out);
uint64_t mcan_pending_since(const struct mcan_state *m);
int mcan_transmitted(struct mcan_state *m, const bus_frame *f);
int mcan_receive(struct mcan_state *m, const bus_frame *f);
uint64_t can_arbitration_key(const bus_frame *f);
uint32_t can_dlc_of(const bus_frame *f);
void harness_frame_bits(uint32_t id, uint32_t flags, uint32_t dlc, const uint8_t *data,
                        uint32_t length, uint32_t out[3]);

/* What the bus asks of a Python node (or of an M_CAN's Python model). */
enum { OP_OFFER, OP_PENDING_SINCE, OP_TRANSMITTED, OP_RECEIVE, OP_BUS_ERROR };
typedef uint64_t (*node_call_fn)(uint32_t node, uint32_t op, uint64_t arg, bus_frame *frame);

typedef struct { uint64_t at, when, seq; } bus_event; /* at NEVER: not queued */

struct net_clock;

typedef struct can_bus {
    uint64_t bitrate, data_bitrate;
    uint32_t n_nodes;
    struct mcan_state *mcan[MAX_NODES]; /* NULL: a Python node */
    /* A Python node that keeps `ready_at` current (its pending_since(), NEVER: nothing
     * queued) is asked to offer only once a frame is ready, or, a FIFO that keeps its next
     * frame in `staged`, not asked at all; a deaf one hears nothing. */
    uint32_t python_flags[MAX_NODES];
    uint64_t ready_at[MAX_NODES];
    bus_frame staged[MAX_NODES];
    node_call_fn call;
    uint32_t busy, sender;
    uint64_t frame_start;
    bus_event arbitration, deliver, error, intermission;
    bus_frame frame; /* the frame on the bus */
    uint64_t errors_to_inject;
    uint32_t any_id, n_error_ids, error_ids[MAX_ERROR_IDS];
    uint64_t frames, errors, busy_ns;
    uint32_t n_logged, logged[LOG_SIZE]; /* ID keys delivered, for Python's per-ID counts */
    void (*drain)(void);                  /* the log is full: Python takes it */
    struct net_clock *clock;
} can_bus;

struct harness_ctx;
int harness_lockstep_state(struct harness_ctx *c, uint64_t *next_cycle); /* core/native.c */
int harness_run_to(void *uc, struct harness_ctx *c, uint64_t target);
enum { ADV_TARGET = 0 };

typedef struct {
    void *uc;
    struct harness_ctx *ctx;
    uint64_t hz;
} net_machine;

/* The network clock's counter (a VirtualClock's CycleCounter and NativeQueue), its buses
 * and, for the lockstep, its machines. */
typedef struct net_clock {
    uint64_t cycles, deadline, seq;
    uint64_t py_next_cycle, py_next_seq, native_next_cycle, native_next_seq;
    uint32_t failed; /* a Python callback raised: stop here, Python raises it */
    uint32_t stop;   /* Network.stop(): the advance under way ends after this moment */
    uint32_t n_buses;
    can_bus *buses[MAX_BUSES];
    uint64_t step_ns;
    uint32_t n_machines;
    net_machine machines[MAX_MACHINES];
    uint64_t (*machine_next)(uint32_t index);   /* Python: a held machine's next moment */
    void (*machine_run)(uint32_t index, uint32_t result, uint64_t target_ns); /* Python: on */
    void (*advance_clock)(uint64_t target_ns);  /* Python: the clock's events up to there */
} net_clock;

uint32_t bus_sizeof_bus(void) { return sizeof(can_bus); }
uint32_t bus_sizeof_clock(void) { return sizeof(net_clock); }

static int before(const bus_event *a, const bus_event *b) {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* The earliest queued event of all buses, or NULL. */
static bus_event *earliest(net_clock *c, can_bus **owner) {
    bus_event *best = NULL;
    for (uint32_t i = 0; i < c->n_buses; i++) {
        can_bus *b = c->buses[i];
        bus_event *events[4] = {&b->arbitration, &b->deliver, &b->error, &b->intermission};
        for (int k = 0; k < 4; k++) {
            if (events[k]->at != NEVER && (!best || before(events[k], best))) {
                best = events[k];
                *owner = b;
            }
        }
    }
    return best;
}

void bus_publish(net_clock *c) {
    can_bus *owner;
    bus_event *e = earliest(c, &owner);
    c->native_next_cycle = e ? e->when : NEVER;
    c->native_next_seq = e ? e->seq : 0;
}

/* VirtualClock.schedule_at / Deadline.arm_at: queued at max(at, now), next sequence number
 * (with LAST: after the unflagged events of that moment, however late they are queued). */
static void arm_as(net_clock *c, bus_event *e, uint64_t at, uint64_t last) {
    e->at = at;
    e->when = at > c->cycles ? at : c->cycles;
    e->seq = ++c->seq | last;
    if (e->when < c->deadline) c->deadline = e->when;
}

static void arm(net_clock *c, bus_event *e, uint64_t at) { arm_as(c, e, at, 0); }

void bus_request(can_bus *b, uint64_t at_ns) {
    net_clock *c = b->clock;
    uint64_t at = at_ns > c->cycles ? at_ns : c->cycles;
    if (!b->busy && (b->arbitration.at == NEVER || at < b->arbitration.at)) {
        arm_as(c, &b->arbitration, at, at > c->cycles ? LAST : 0);
        bus_publish(c);
    }
}

/* FrameBits.duration_ns: the nominal bits at the bit rate, the data phase at the data rate
 * with BRS, rounded up. */
static uint64_t bus_duration_ns(const can_bus *b, const bus_frame *f) {
    uint32_t bits[3];
    harness_frame_bits(f->id, f->flags, can_dlc_of(f), f->data, f->length, bits);
    unsigned __int128 slow = b->bitrate, fast = f->flags & F_BRS ? b->data_bitrate : b->bitrate;
    unsigned __int128 num = (unsigned __int128)bits[0] * 1000000000u * fast +
                            (unsigned __int128)bits[1] * 1000000000u * slow;
    return (uint64_t)((num + slow * fast - 1) / (slow * fast));
}

static uint32_t id_key(const bus_frame *f) {
    return f->flags & F_EXT ? f->id | EXTENDED_KEY : f->id;
}

static int offer(can_bus *b, uint32_t i, uint64_t now, bus_frame *out) {
    if (b->mcan[i]) return mcan_offer(b->mcan[i], now, out) >= 0;
    if (b->python_flags[i] & KEEPS_READY_AT && b->ready_at[i] > now) return 0;
    if (b->python_flags[i] & STAGED) {
        *out = b->staged[i];
        return 1;
    }
    return (int)b->call(i, OP_OFFER, now, out);
}

static uint64_t pending_since(can_bus *b, uint32_t i) {
    if (b->mcan[i]) return mcan_pending_since(b->mcan[i]);
    if (b->python_flags[i] & KEEPS_READY_AT) return b->ready_at[i];
    return b->call(i, OP_PENDING_SINCE, 0, NULL);
}

static void arbitrate(can_bus *b) {
    net_clock *c = b->clock;
    uint64_t now = c->cycles, best_key = 0;
    int32_t best = -1;
    bus_frame f;
    for (uint32_t i = 0; i < b->n_nodes; i++) {
        int offered = offer(b, i, now, &f);
        if (c->failed) return;
        if (!offered) continue;
        uint64_t key = can_arbitration_key(&f);
        if (best < 0 || key < best_key) {
            best = (int32_t)i, best_key = key;
            b->frame = f;
        }
    }
    if (best < 0) { /* nothing ready yet: look again when the next request falls due */
        uint64_t later = NEVER;
        for (uint32_t i = 0; i < b->n_nodes; i++) {
            uint64_t t = pending_since(b, i);
            if (c->failed) return;
            if (t != NEVER && t > now && t < later) later = t;
        }
        if (later != NEVER) arm_as(c, &b->arbitration, later, LAST);
        return;
    }
    uint64_t duration = bus_duration_ns(b, &b->frame), bit = 1000000000u / b->bitrate;
    b->busy = 1;
    b->sender = (uint32_t)best;
    b->frame_start = now;
    int destroy = 0;
    if (b->errors_to_inject) {
        destroy = b->any_id;
        for (uint32_t k = 0; k < b->n_error_ids && !destroy; k++)
            destroy = b->error_ids[k] == id_key(&b->frame);
    }
    if (destroy) {
        b->errors_to_inject--;
        uint64_t flagged = now + duration - (INTERMISSION_BITS + AFTER_CRC_BITS) * bit;
        arm(c, &b->error, flagged);
        arm(c, &b->intermission, flagged + (ERROR_FRAME_BITS + INTERMISSION_BITS) * bit);
        return;
    }
    arm(c, &b->deliver, now + duration - INTERMISSION_BITS * bit);
    arm(c, &b->intermission, now + duration);
}

static void error_frame(can_bus *b) {
    b->errors++;
    for (uint32_t i = 0; i < b->n_nodes && !b->clock->failed; i++)
        b->call(i, OP_BUS_ERROR, i == b->sender, NULL);
}

static void deliver(can_bus *b, uint64_t at) {
    net_clock *c = b->clock;
    b->busy_ns += at - b->frame_start; /* counted as it passes: the load stays <= 1 */
    b->frame_start = at;
    b->frames++;
    if (b->n_logged == LOG_SIZE) b->drain();
    b->logged[b->n_logged++] = id_key(&b->frame);
    bus_frame stamped = b->frame;
    stamped.timestamp_ns = at;
    uint32_t s = b->sender;
    if (!b->mcan[s] || mcan_transmitted(b->mcan[s], &stamped) == DECLINED)
        b->call(s, OP_TRANSMITTED, 0, &stamped);
    for (uint32_t i = 0; i < b->n_nodes && !c->failed; i++) {
        if (i == s) continue;
        if (b->mcan[i] ? mcan_receive(b->mcan[i], &stamped) == DECLINED
                       : !(b->python_flags[i] & DEAF))
            b->call(i, OP_RECEIVE, 0, &stamped);
    }
}

/* Run the earliest native event (VirtualClock calls this when it is due and comes first). */
void bus_fire_next(net_clock *c) {
    can_bus *b;
    bus_event *e = earliest(c, &b);
    if (!e) return;
    uint64_t at = e->at;
    e->at = NEVER;
    if (e == &b->deliver) {
        deliver(b, at);
    } else if (e == &b->error) {
        error_frame(b);
    } else if (e == &b->intermission) {
        b->busy_ns += c->cycles - b->frame_start;
        b->busy = 0;
        arbitrate(b);
    } else {
        arbitrate(b);
    }
    bus_publish(c);
}

/* ---- the lockstep ---- */

/* Network.next_event_ns: the clock's next event, the next step while a machine is awake, a
 * sleeping machine's next event; NEVER: nothing ever will. */
static uint64_t next_event(net_clock *c) {
    uint64_t now = c->cycles;
    uint64_t nxt = c->py_next_cycle < c->native_next_cycle ? c->py_next_cycle : c->native_next_cycle;
    for (uint32_t i = 0; i < c->n_machines; i++) {
        net_machine *m = &c->machines[i];
        uint64_t t, cycle;
        int awake = harness_lockstep_state(m->ctx, &cycle);
        if (awake < 0) {
            t = c->machine_next(i);
            if (c->failed) return NEVER;
        } else if (awake) {
            t = now + c->step_ns;
        } else if (cycle != NEVER) {
            t = (uint64_t)(((unsigned __int128)cycle * NS_PER_S + m->hz - 1) / m->hz);
        } else {
            continue;
        }
        if (t < nxt) nxt = t;
    }
    return nxt == NEVER || nxt > now ? nxt : now;
}

/* Network._move_to: every machine to `target`, then the clock's events up to it. */
static void move_to(net_clock *c, uint64_t target) {
    for (uint32_t i = 0; i < c->n_machines && !c->failed; i++) {
        net_machine *m = &c->machines[i];
        uint64_t cycle = (uint64_t)((unsigned __int128)target * m->hz / NS_PER_S);
        int result = harness_run_to(m->uc, m->ctx, cycle);
        if (result != ADV_TARGET) c->machine_run(i, (uint32_t)result, target);
    }
    while (!c->failed) {
        if (c->py_next_cycle <= target) { /* Python's events too: the clock merges them */
            c->advance_clock(target);
            return;
        }
        if (c->native_next_cycle > target) break;
        if (c->native_next_cycle > c->cycles) c->cycles = c->native_next_cycle;
        bus_fire_next(c);
    }
    if (!c->failed && target > c->cycles) c->cycles = target; /* an error leaves time as is */
}

/* Network.step: to the next moment something may happen, if it is not after `end`; 1 if it
 * moved, 0 if nothing can happen by then (time is left where it is). */
int net_step(net_clock *c, uint64_t end) {
    uint64_t nxt = next_event(c);
    if (c->failed || nxt == NEVER || nxt > end) return 0;
    move_to(c, nxt);
    return 1;
}

/* Network.advance_to. */
void net_advance(net_clock *c, uint64_t end) {
    c->stop = 0;
    while (!c->failed) {
        uint64_t nxt = next_event(c);
        if (c->failed) return;
        uint64_t target = nxt < end ? nxt : end;
        move_to(c, target);
        if (target >= end || c->stop) return;
    }
}
