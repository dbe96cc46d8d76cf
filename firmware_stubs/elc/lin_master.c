#include "lin_master.h"

#define SYNC_BYTE 0x55u
#define WAKE_UP_BYTE 0x80u    /* start bit + 7 zero bits: 417 us dominant at 19.2 kbit/s */
/* Slaves are ready 100 ms after a wake-up signal ends (ISO 17987-2); the master's own pulse
 * ends within 1 ms of its start. */
#define WAKE_UP_READY_MS 101u
#define HEADER_BITS 34u       /* 13-bit break, delimiter, sync, protected ID */

enum { ACTIVE, SLEEPING, WAKING };

uint8_t lin_data[LIN_FRAME_COUNT][8];
volatile uint8_t lin_status[LIN_FRAME_COUNT];
volatile uint32_t lin_received[LIN_FRAME_COUNT];
volatile uint32_t lin_collisions;

static USART_Type *usart;
static uint8_t state = ACTIVE;
static uint32_t wake_left_ms;
static uint8_t sleep_requested;

static const lin_slot_t *table = lin_schedule_normal_table;
static uint32_t table_length = LIN_SCHEDULE_NORMAL_TABLE_LENGTH;
static uint32_t slot_index, slot_left_ms;
static uint8_t resolve_collision; /* run the collision-resolving table from the next slot */

/* The frame in progress: what the master sends (sync, PID, maybe its response), and what it
 * has read back or received so far. */
static int8_t current = -1;
static uint8_t tx[11], tx_length, tx_next;
static uint8_t rx[11], rx_length, rx_wanted;
static uint32_t frame_left_ms;

static uint8_t checksum(const lin_frame_t *f, const uint8_t *data) {
    uint32_t sum = f->enhanced ? f->pid : 0u;
    for (uint8_t i = 0; i < f->length; i++) {
        sum += data[i];
        if (sum > 0xFFu) sum -= 0xFFu; /* the carry goes around */
    }
    return (uint8_t)~sum;
}

/* The longest a frame may take, 1.4 x nominal, in whole ms rounded up. */
static uint32_t max_frame_ms(const lin_frame_t *f) {
    uint32_t bits = HEADER_BITS + 10u * (f->length + 1u);
    return (bits * 14u * 1000u + 10u * LIN_BITRATE - 1u) / (10u * LIN_BITRATE);
}

uint32_t lin_get(uint8_t frame, uint32_t bit, uint32_t width) {
    uint32_t value = 0;
    for (uint32_t i = 0; i < width; i++) {
        uint32_t b = bit + i;
        value |= (uint32_t)((lin_data[frame][b / 8u] >> (b % 8u)) & 1u) << i;
    }
    return value;
}

void lin_set(uint8_t frame, uint32_t bit, uint32_t width, uint32_t value) {
    for (uint32_t i = 0; i < width; i++) {
        uint32_t b = bit + i;
        uint8_t mask = (uint8_t)(1u << (b % 8u));
        if ((value >> i) & 1u) {
            lin_data[frame][b / 8u] |= mask;
        } else {
            lin_data[frame][b / 8u] &= (uint8_t)~mask;
        }
    }
}

static void finish(uint8_t status) {
    const lin_frame_t *f = &lin_frames[current];
    if (f->kind == LIN_EVENT_TRIGGERED) {
        if (status == LIN_STATUS_NO_RESPONSE) {
            status = LIN_STATUS_OK; /* no slave had news: the normal case */
        } else if (status == LIN_STATUS_OK) {
            /* the answer is the associated frame whose protected ID is its first byte */
            for (uint8_t i = 0; i < LIN_FRAME_COUNT; i++) {
                if (lin_frames[i].pid == rx[2] && lin_frames[i].length == f->length) {
                    for (uint8_t b = 0; b < f->length; b++) lin_data[i][b] = rx[2u + b];
                    lin_status[i] = LIN_STATUS_OK;
                    lin_received[i]++;
                }
            }
        } else if (status != LIN_STATUS_BIT_ERROR) { /* a spoilt answer: two slaves at once */
            lin_collisions++;
            resolve_collision = 1u;
        }
    } else if (status == LIN_STATUS_OK && f->direction == LIN_SUBSCRIBE) {
        for (uint8_t b = 0; b < f->length; b++) lin_data[current][b] = rx[2u + b];
        lin_received[current]++;
    }
    lin_status[current] = status;
    if (current == LIN_FRAME_MASTER_REQ && status == LIN_STATUS_OK && lin_data[current][0] == 0u) {
        state = SLEEPING; /* the go-to-sleep command went out */
        sleep_requested = 0;
    }
    current = -1;
    usart->CR1 &= ~USART_CR1_TXEIE_Msk;
}

static void start_frame(uint8_t frame) {
    const lin_frame_t *f = &lin_frames[frame];
    current = (int8_t)frame;
    tx[0] = SYNC_BYTE;
    tx[1] = f->pid;
    tx_length = 2u;
    if (f->direction == LIN_PUBLISH) {
        for (uint8_t b = 0; b < f->length; b++) tx[tx_length++] = lin_data[frame][b];
        tx[tx_length++] = checksum(f, lin_data[frame]);
        rx_wanted = tx_length;
    } else {
        rx_wanted = (uint8_t)(2u + f->length + 1u);
    }
    rx_length = 0;
    frame_left_ms = max_frame_ms(f);
    (void)usart->SR; /* drop whatever is left from the previous frame */
    (void)usart->DR;
    usart->SR = ~USART_SR_LBD_Msk;
    usart->CR1 |= USART_CR1_SBK_Msk; /* the break goes first, */
    usart->DR = tx[0];               /* then sync, waiting in the data register */
    tx_next = 1u;
    usart->CR1 |= USART_CR1_TXEIE_Msk;
}

static void next_slot(void) {
    if (current >= 0) finish(rx_length > 2u ? LIN_STATUS_INCOMPLETE : LIN_STATUS_NO_RESPONSE);
    if (resolve_collision) {
        resolve_collision = 0;
        table = lin_schedule_collision_table;
        table_length = LIN_SCHEDULE_COLLISION_TABLE_LENGTH;
        slot_index = 0;
    } else if (slot_index >= table_length) {
        table = lin_schedule_normal_table; /* the collision table runs once */
        table_length = LIN_SCHEDULE_NORMAL_TABLE_LENGTH;
        slot_index = 0;
    }
    if (sleep_requested) {
        sleep_requested = 0;
        lin_data[LIN_FRAME_MASTER_REQ][0] = 0x00u; /* go-to-sleep: 0x00, then 0xFF */
        for (uint8_t b = 1; b < 8u; b++) lin_data[LIN_FRAME_MASTER_REQ][b] = 0xFFu;
        start_frame(LIN_FRAME_MASTER_REQ);
        slot_left_ms = max_frame_ms(&lin_frames[LIN_FRAME_MASTER_REQ]) + 1u;
        return;
    }
    const lin_slot_t *slot = &table[slot_index++];
    slot_left_ms = slot->delay_us / 1000u;
    start_frame(slot->frame);
}

void lin_master_init(USART_Type *u, uint32_t clock_hz) {
    /* keeps the tables' digest in the image: the harness checks it against its LDF */
    (void)*(volatile const uint8_t *)lin_tables_digest;
    usart = u;
    for (uint8_t i = 0; i < LIN_FRAME_COUNT; i++) {
        lin_status[i] = LIN_STATUS_NONE;
        /* what it publishes: bits no signal covers are sent recessive (ISO 17987-2) */
        if (lin_frames[i].direction == LIN_PUBLISH) {
            for (uint8_t b = 0; b < 8u; b++) lin_data[i][b] = 0xFFu;
        }
    }
    u->CR1 = 0;
    u->BRR = (clock_hz + LIN_BITRATE / 2u) / LIN_BITRATE;
    u->CR2 = USART_CR2_LINEN_Msk | USART_CR2_LBDL_Msk | USART_CR2_LBDIE_Msk;
    u->CR1 = USART_CR1_UE_Msk | USART_CR1_TE_Msk | USART_CR1_RE_Msk | USART_CR1_RXNEIE_Msk;
}

void lin_master_tick(void) {
    if (state == WAKING) {
        if (--wake_left_ms == 0u) {
            state = ACTIVE;
            table = lin_schedule_normal_table;
            table_length = LIN_SCHEDULE_NORMAL_TABLE_LENGTH;
            slot_index = 0;
            next_slot();
        }
        return;
    }
    if (state != ACTIVE) return;
    if (current >= 0 && frame_left_ms && --frame_left_ms == 0u) {
        finish(rx_length > 2u ? LIN_STATUS_INCOMPLETE : LIN_STATUS_NO_RESPONSE);
    }
    if (state == ACTIVE && (slot_left_ms == 0u || --slot_left_ms == 0u)) next_slot();
}

static void received(uint8_t byte, uint32_t sr) {
    if (current < 0) return;
    if (rx_length == 0 && byte == 0 && (sr & USART_SR_FE_Msk)) return; /* its own break */
    uint8_t i = rx_length++;
    rx[i] = byte;
    if (sr & (USART_SR_FE_Msk | USART_SR_NF_Msk)) {
        finish(LIN_STATUS_FRAMING_ERROR);
    } else if (i < tx_length && byte != tx[i]) {
        finish(LIN_STATUS_BIT_ERROR); /* what the bus carried is not what the master sent */
    } else if (rx_length == rx_wanted) {
        const lin_frame_t *f = &lin_frames[current];
        int good = lin_frames[current].direction == LIN_PUBLISH || checksum(f, &rx[2]) == rx[i];
        finish(good ? LIN_STATUS_OK : LIN_STATUS_CHECKSUM_ERROR);
    }
}

void lin_master_irq(void) {
    uint32_t sr = usart->SR;
    if (sr & USART_SR_LBD_Msk) {
        usart->SR = ~USART_SR_LBD_Msk; /* its own break read back, or a slave's wake-up */
        if (state == SLEEPING) {
            state = WAKING;
            wake_left_ms = WAKE_UP_READY_MS;
        }
    }
    if (sr & (USART_SR_RXNE_Msk | USART_SR_ORE_Msk)) {
        uint8_t byte = (uint8_t)usart->DR; /* SR then DR: clears the error flags too */
        if (state == SLEEPING) {
            state = WAKING; /* a slave's wake-up pulse */
            wake_left_ms = WAKE_UP_READY_MS;
        } else if (state == ACTIVE) {
            received(byte, sr);
        }
    }
    if ((sr & USART_SR_TXE_Msk) && (usart->CR1 & USART_CR1_TXEIE_Msk)) {
        if (current >= 0 && tx_next < tx_length) {
            usart->DR = tx[tx_next++];
        } else {
            usart->CR1 &= ~USART_CR1_TXEIE_Msk;
        }
    }
}

void lin_master_go_to_sleep(void) {
    if (state == ACTIVE) sleep_requested = 1u;
}

void lin_master_wake_up(void) {
    if (state != SLEEPING) return;
    state = WAKING;
    wake_left_ms = WAKE_UP_READY_MS;
    usart->DR = WAKE_UP_BYTE;
}

int lin_master_asleep(void) {
    return state == SLEEPING;
}
