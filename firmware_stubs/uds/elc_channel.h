/* The light controller's diagnostic channel (the bootloader's too): MCAN0 and the IDs of
 * dbc/exterior_light.dbc, with the buffers and the block size the ECU announces. */
#ifndef ELC_CHANNEL_H
#define ELC_CHANNEL_H

#include "exterior_light.h"
#include "isotp.h"

static inline void elc_diag_channel(isotp_t *tp, uint8_t *rx, uint32_t rx_size, uint8_t *tx,
                                    uint32_t tx_size, uint8_t announced_block_size) {
    tp->can = MCAN0;
    tp->rx_physical_id = EXTERIOR_LIGHT_DIAG_REQUEST_ELC_FRAME_ID;
    tp->rx_functional_id = EXTERIOR_LIGHT_DIAG_FUNCTIONAL_REQUEST_FRAME_ID;
    tp->tx_id = EXTERIOR_LIGHT_DIAG_RESPONSE_ELC_FRAME_ID;
    tp->block_size = announced_block_size;
    tp->stmin = 0;
    tp->rx_buffer = rx;
    tp->rx_size = rx_size;
    tp->tx_buffer = tx;
    tp->tx_size = tx_size;
}

#endif
