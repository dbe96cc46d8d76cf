/*
 * ISO-TP (ISO 15765-2:2016) for one diagnostic channel, server side: single, first,
 * consecutive and flow-control frames over classic CAN (8 bytes) and CAN FD (up to 64), the
 * escape sequences (an FD single frame over 7 bytes, a first frame over 4,095), block size
 * and STmin honoured when sending and announced when receiving, N_Bs and N_Cr timeouts,
 * padding with 0xCC. A response goes out in the frame format of the request it answers.
 *
 * Reception and transmission are independent (full duplex, as the standard allows).
 * Frames reach it from the CAN interrupt through `isotp_queue_frame` (a small queue); all the
 * rest runs in thread mode from `isotp_poll`, so nothing here needs interrupts disabled
 * beyond the queue's indices. Time is the caller's millisecond tick: an STmin under 1 ms is
 * kept by waiting for the next tick (a separation of at least STmin, as the standard asks).
 */
#ifndef ISOTP_H
#define ISOTP_H

#include <stdint.h>
#include "mcan.h"

#define ISOTP_QUEUE 16u
#define ISOTP_N_BS_MS 1000u /* waiting for a flow control */
#define ISOTP_N_CR_MS 1000u /* waiting for a consecutive frame */
#define ISOTP_PADDING 0xCCu

typedef struct {
    /* configuration */
    MCAN_Type *can;
    uint32_t rx_physical_id, rx_functional_id, tx_id;
    uint8_t block_size; /* announced in our flow control (0: no further FC) */
    uint8_t stmin;      /* announced, as its byte (0x00-0x7F ms, 0xF1-0xF9 100-900 us) */
    uint8_t *rx_buffer, *tx_buffer;
    uint32_t rx_size, tx_size;

    /* the frames the interrupt queued */
    can_frame_t queue[ISOTP_QUEUE];
    volatile uint32_t queue_head, queue_tail, queue_lost;

    /* reception: a request, into rx_buffer */
    uint8_t rx_active, rx_sequence, rx_block_left;
    uint8_t rx_flags, rx_frame_length; /* the request's format: the response uses it */
    uint32_t rx_length, rx_position, rx_deadline_ms;
    uint8_t request_ready, request_functional; /* a whole request waits in rx_buffer */

    /* transmission: a response, from tx_buffer */
    uint8_t tx_state, tx_sequence, tx_block_size, tx_block_left, tx_flags, tx_frame_length;
    uint8_t tx_cf_sent; /* a consecutive frame went out: STmin applies after the next FC */
    uint32_t tx_length, tx_position, tx_deadline_ms, tx_next_ms, tx_stmin_ms;

    uint32_t errors; /* timeouts, wrong sequence numbers, overflows (queue_lost: overruns) */
} isotp_t;

void isotp_init(isotp_t *t);
/* From the CAN interrupt: keep a frame with one of the channel's IDs (1), else 0. */
int isotp_queue_frame(isotp_t *t, const can_frame_t *frame);
/* Thread mode: take the queued frames, send due consecutive frames, check timeouts. */
void isotp_poll(isotp_t *t, uint32_t now_ms);
/* Send tx_buffer[0, length) as the response; 0 when started, -1 when still sending. */
int isotp_send(isotp_t *t, uint32_t length, uint32_t now_ms);
/* Send a short message (a negative or pending response) at once, even while a request is
 * being handled; it must fit a single frame. */
void isotp_send_single(isotp_t *t, const uint8_t *data, uint32_t length);
int isotp_busy(const isotp_t *t);

#endif
