/* A minimal M_CAN (CAN FD) driver over the generated register header. */
#ifndef MCAN_H
#define MCAN_H

#include <stdint.h>
#include "asilb_m4.h"

#define CAN_FLAG_EXT 1u /* 29-bit identifier */
#define CAN_FLAG_FD  2u /* CAN FD frame */
#define CAN_FLAG_BRS 4u /* bit-rate switch */

typedef struct {
    uint32_t id;
    uint8_t len;   /* bytes: 0..8, or 12/16/20/24/32/48/64 for FD */
    uint8_t flags;
    uint8_t data[64];
} can_frame_t;

/* Bus-on with RX FIFO 0 (8 x 64-byte elements, interrupt on new message and on loss; its
 * watermark is the full FIFO, for drivers that take RF0W instead of RF0N to handle a batch
 * of frames per interrupt), 16 dedicated TX buffers, all IDs accepted into FIFO 0. */
void mcan_init(MCAN_Type *can, uint32_t nominal_bitrate, uint32_t data_bitrate);
/* 0 when queued, -1 when every TX buffer is still pending. */
int mcan_send(MCAN_Type *can, const can_frame_t *frame);
/* 1 when a frame was taken from RX FIFO 0, 0 when it is empty. */
int mcan_receive(MCAN_Type *can, can_frame_t *frame);

#endif
