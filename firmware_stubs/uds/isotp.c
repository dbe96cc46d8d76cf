#include "isotp.h"

enum { PCI_SF = 0, PCI_FF = 1, PCI_CF = 2, PCI_FC = 3 };
enum { FC_CTS = 0, FC_WAIT = 1, FC_OVERFLOW = 2 };
enum { TX_IDLE, TX_WAIT_FC, TX_SENDING };

static const uint8_t fd_sizes[] = {8, 12, 16, 20, 24, 32, 48, 64};

/* The smallest frame length that holds `n` bytes: 8 classic, else an FD DLC size. */
static uint8_t frame_size_for(uint32_t n) {
    for (uint32_t i = 0; i < sizeof fd_sizes; i++) {
        if (fd_sizes[i] >= n) return fd_sizes[i];
    }
    return 64u;
}

/* STmin byte to whole milliseconds, rounded up; reserved values count as 127 ms. */
static uint32_t stmin_ms(uint8_t v) {
    if (v <= 0x7Fu) return v;
    if (v >= 0xF1u && v <= 0xF9u) return 1u;
    return 0x7Fu;
}

static int transmit(isotp_t *t, uint8_t flags, uint8_t *data, uint32_t used, uint8_t len) {
    can_frame_t f = {.id = t->tx_id, .flags = flags};
    for (uint32_t i = used; i < len; i++) data[i] = ISOTP_PADDING;
    f.len = len;
    for (uint32_t i = 0; i < len; i++) f.data[i] = data[i];
    /* interrupt handlers send on the same controller: pick a TX buffer undisturbed */
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    int result = mcan_send(t->can, &f);
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return result;
}

void isotp_init(isotp_t *t) {
    t->queue_head = t->queue_tail = t->queue_lost = 0;
    t->rx_active = 0;
    t->request_ready = 0;
    t->tx_state = TX_IDLE;
    t->errors = 0;
}

int isotp_queue_frame(isotp_t *t, const can_frame_t *frame) {
    if (frame->flags & CAN_FLAG_EXT) return 0;
    if (frame->id != t->rx_physical_id && frame->id != t->rx_functional_id) return 0;
    uint32_t next = (t->queue_head + 1u) % ISOTP_QUEUE;
    if (next == t->queue_tail) {
        t->queue_lost++;
    } else {
        t->queue[t->queue_head] = *frame;
        t->queue_head = next;
    }
    return 1;
}

int isotp_busy(const isotp_t *t) { return t->tx_state != TX_IDLE; }

static void send_flow_control(isotp_t *t, uint8_t status) {
    uint8_t d[64] = {(uint8_t)(PCI_FC << 4 | status), t->block_size, t->stmin};
    /* a flow control in the request's format; classic frames are padded to 8 bytes */
    transmit(t, t->rx_flags, d, 3u, (t->rx_flags & CAN_FLAG_FD) ? frame_size_for(3u) : 8u);
}

/* ---- reception ---- */

static void receive_single(isotp_t *t, const can_frame_t *f, int functional) {
    uint32_t length = f->data[0] & 0x0Fu, start = 1u;
    if (length == 0 && f->len > 8u) { /* FD escape: the length in the next byte */
        length = f->data[1];
        start = 2u;
        if (length < 8u || length > f->len - 2u) return;
    } else if (length == 0 || length > 7u || length > f->len - 1u) {
        return;
    }
    if (length > t->rx_size) return;
    t->rx_active = 0; /* a new single frame ends a reception in progress */
    for (uint32_t i = 0; i < length; i++) t->rx_buffer[i] = f->data[start + i];
    t->rx_length = length;
    t->rx_flags = f->flags;
    t->rx_frame_length = f->len;
    t->request_functional = (uint8_t)functional;
    t->request_ready = 1;
}

static void receive_first(isotp_t *t, const can_frame_t *f, uint32_t now_ms) {
    uint32_t length = (uint32_t)(f->data[0] & 0x0Fu) << 8 | f->data[1], start = 2u;
    if (length == 0) { /* escape: a 32-bit length */
        length = (uint32_t)f->data[2] << 24 | (uint32_t)f->data[3] << 16 |
                 (uint32_t)f->data[4] << 8 | f->data[5];
        start = 6u;
        if (length <= 4095u) return;
    }
    /* RX_DL: 8, or an FD length; a first frame always fills its frame */
    if (f->len < 8u || (!(f->flags & CAN_FLAG_FD) && f->len != 8u)) return;
    uint32_t single_max = f->len == 8u ? 7u : f->len - 2u;
    if (length <= single_max) return;
    t->rx_flags = f->flags;
    t->rx_frame_length = f->len;
    if (length > t->rx_size) {
        t->rx_active = 0;
        t->errors++;
        send_flow_control(t, FC_OVERFLOW);
        return;
    }
    uint32_t n = f->len - start;
    for (uint32_t i = 0; i < n; i++) t->rx_buffer[i] = f->data[start + i];
    t->rx_length = length;
    t->rx_position = n;
    t->rx_sequence = 1;
    t->rx_block_left = t->block_size;
    t->rx_active = 1;
    t->request_ready = 0;
    t->rx_deadline_ms = now_ms + ISOTP_N_CR_MS;
    send_flow_control(t, FC_CTS);
}

static void receive_consecutive(isotp_t *t, const can_frame_t *f, uint32_t now_ms) {
    if (!t->rx_active) return; /* unexpected: ignored */
    if ((f->data[0] & 0x0Fu) != t->rx_sequence) {
        t->rx_active = 0; /* wrong sequence number: the reception is aborted */
        t->errors++;
        return;
    }
    uint32_t left = t->rx_length - t->rx_position, n = f->len - 1u;
    if (n > left) n = left;
    /* every consecutive frame but the last has RX_DL bytes */
    if (f->len != t->rx_frame_length && n < left) {
        t->rx_active = 0;
        t->errors++;
        return;
    }
    for (uint32_t i = 0; i < n; i++) t->rx_buffer[t->rx_position + i] = f->data[1 + i];
    t->rx_position += n;
    t->rx_sequence = (uint8_t)((t->rx_sequence + 1u) & 0x0Fu);
    t->rx_deadline_ms = now_ms + ISOTP_N_CR_MS;
    if (t->rx_position == t->rx_length) {
        t->rx_active = 0;
        t->request_functional = 0;
        t->request_ready = 1;
    } else if (t->block_size && --t->rx_block_left == 0) {
        t->rx_block_left = t->block_size;
        send_flow_control(t, FC_CTS);
    }
}

static void receive_flow_control(isotp_t *t, const can_frame_t *f, uint32_t now_ms) {
    if (t->tx_state != TX_WAIT_FC || f->len < 3u) return;
    uint8_t status = f->data[0] & 0x0Fu;
    if (status == FC_WAIT) {
        t->tx_deadline_ms = now_ms + ISOTP_N_BS_MS;
    } else if (status == FC_CTS) {
        t->tx_block_size = f->data[1];
        t->tx_block_left = f->data[1];
        t->tx_stmin_ms = stmin_ms(f->data[2]);
        /* STmin also separates the first consecutive frame of a block from the one before */
        t->tx_next_ms = t->tx_cf_sent && t->tx_stmin_ms ? now_ms + t->tx_stmin_ms + 1u : now_ms;
        t->tx_state = TX_SENDING;
    } else { /* overflow or reserved: the transmission ends */
        t->tx_state = TX_IDLE;
        t->errors++;
    }
}

static void receive(isotp_t *t, const can_frame_t *f, uint32_t now_ms) {
    if (f->len == 0) return;
    int functional = f->id == t->rx_functional_id && f->id != t->rx_physical_id;
    uint8_t type = f->data[0] >> 4;
    if (type == PCI_SF) {
        receive_single(t, f, functional);
    } else if (functional) {
        return; /* functional requests are single frames only */
    } else if (type == PCI_FF) {
        receive_first(t, f, now_ms);
    } else if (type == PCI_CF) {
        receive_consecutive(t, f, now_ms);
    } else if (type == PCI_FC) {
        receive_flow_control(t, f, now_ms);
    }
}

/* ---- transmission ---- */

void isotp_send_single(isotp_t *t, const uint8_t *data, uint32_t length) {
    uint8_t d[64];
    int fd = (t->rx_flags & CAN_FLAG_FD) != 0;
    uint32_t used;
    if (length <= 7u) {
        d[0] = (uint8_t)length;
        used = 1u;
    } else {
        d[0] = 0;
        d[1] = (uint8_t)length;
        used = 2u;
    }
    for (uint32_t i = 0; i < length; i++) d[used + i] = data[i];
    used += length;
    transmit(t, t->rx_flags, d, used, fd ? frame_size_for(used) : 8u);
}

int isotp_send(isotp_t *t, uint32_t length, uint32_t now_ms) {
    if (t->tx_state != TX_IDLE || length == 0 || length > t->tx_size) return -1;
    int fd = (t->rx_flags & CAN_FLAG_FD) != 0;
    /* TX_DL: the request's frame length (FD), 8 on classic CAN */
    uint8_t dl = fd ? (t->rx_frame_length < 8u ? 8u : t->rx_frame_length) : 8u;
    if (length <= (dl == 8u ? 7u : dl - 2u)) {
        isotp_send_single(t, t->tx_buffer, length);
        return 0;
    }
    uint8_t d[64];
    uint32_t start;
    if (length <= 4095u) {
        d[0] = (uint8_t)(PCI_FF << 4 | length >> 8);
        d[1] = (uint8_t)length;
        start = 2u;
    } else {
        d[0] = PCI_FF << 4;
        d[1] = 0;
        d[2] = (uint8_t)(length >> 24);
        d[3] = (uint8_t)(length >> 16);
        d[4] = (uint8_t)(length >> 8);
        d[5] = (uint8_t)length;
        start = 6u;
    }
    uint32_t n = dl - start;
    for (uint32_t i = 0; i < n; i++) d[start + i] = t->tx_buffer[i];
    if (transmit(t, t->rx_flags, d, dl, dl) != 0) return -1;
    t->tx_flags = t->rx_flags;
    t->tx_frame_length = dl;
    t->tx_length = length;
    t->tx_position = n;
    t->tx_sequence = 1;
    t->tx_cf_sent = 0;
    t->tx_state = TX_WAIT_FC;
    t->tx_deadline_ms = now_ms + ISOTP_N_BS_MS;
    return 0;
}

static void send_consecutive(isotp_t *t, uint32_t now_ms) {
    while (t->tx_state == TX_SENDING && (int32_t)(now_ms - t->tx_next_ms) >= 0) {
        uint8_t d[64];
        d[0] = (uint8_t)(PCI_CF << 4 | t->tx_sequence);
        uint32_t left = t->tx_length - t->tx_position, n = t->tx_frame_length - 1u;
        if (n > left) n = left;
        for (uint32_t i = 0; i < n; i++) d[1 + i] = t->tx_buffer[t->tx_position + i];
        /* the last frame may be shorter: the smallest length that holds it (8 classic) */
        uint8_t len = (t->tx_flags & CAN_FLAG_FD) ? frame_size_for(n + 1u) : 8u;
        if (transmit(t, t->tx_flags, d, n + 1u, len) != 0) return; /* TX buffers full */
        t->tx_position += n;
        t->tx_cf_sent = 1;
        t->tx_sequence = (uint8_t)((t->tx_sequence + 1u) & 0x0Fu);
        if (t->tx_position == t->tx_length) {
            t->tx_state = TX_IDLE;
        } else if (t->tx_block_size && --t->tx_block_left == 0) {
            t->tx_state = TX_WAIT_FC;
            t->tx_deadline_ms = now_ms + ISOTP_N_BS_MS;
        } else if (t->tx_stmin_ms) {
            /* + 1: the tick may be about to advance, and STmin is a minimum */
            t->tx_next_ms = now_ms + t->tx_stmin_ms + 1u;
        }
    }
}

void isotp_poll(isotp_t *t, uint32_t now_ms) {
    while (t->queue_tail != t->queue_head) {
        receive(t, &t->queue[t->queue_tail], now_ms);
        t->queue_tail = (t->queue_tail + 1u) % ISOTP_QUEUE;
    }
    if (t->rx_active && (int32_t)(now_ms - t->rx_deadline_ms) > 0) { /* N_Cr */
        t->rx_active = 0;
        t->errors++;
    }
    if (t->tx_state == TX_WAIT_FC && (int32_t)(now_ms - t->tx_deadline_ms) > 0) { /* N_Bs */
        t->tx_state = TX_IDLE;
        t->errors++;
    }
    send_consecutive(t, now_ms);
}
