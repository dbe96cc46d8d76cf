/* Echo firmware for the CAN tests: every frame received on MCAN0 goes back with ID + 1.
 * RX is handled in the interrupt, which drains RX FIFO 0 completely each time.
 * A frame with ID ECHO_CONTROL is not echoed: data[0] = 1 switches to batch mode (interrupt
 * on the FIFO watermark, 8 frames per interrupt), 0 back to one interrupt per frame. */
#include "hal.h"
#include "mcan.h"

#define ECHO_CONTROL 0x7F0u

volatile uint32_t rx_frames;
volatile uint32_t tx_dropped;
volatile uint32_t rx_interrupts;

void MCAN0_INT0_IRQHandler(void) {
    MCAN0->IR = MCAN_IR_RF0N_Msk | MCAN_IR_RF0W_Msk | MCAN_IR_RF0L_Msk; /* clear first */
    rx_interrupts++;
    can_frame_t frame;
    while (mcan_receive(MCAN0, &frame)) {
        if (frame.id == ECHO_CONTROL && !(frame.flags & CAN_FLAG_EXT)) {
            uint32_t batch = frame.len > 0 && frame.data[0] == 1u;
            MCAN0->IE = (batch ? MCAN_IE_RF0WE_Msk : MCAN_IE_RF0NE_Msk) | MCAN_IE_RF0LE_Msk;
            continue;
        }
        rx_frames++;
        frame.id += 1u;
        if (mcan_send(MCAN0, &frame) != 0) tx_dropped++;
    }
}

int main(void) {
    mcan_init(MCAN0, 500000u, 2000000u);
    nvic_set_priority(MCAN0_INT0_IRQn, 0x40);
    nvic_enable(MCAN0_INT0_IRQn);
    for (;;) wait_for_interrupt();
}
