/* Echo firmware for the CAN tests: every frame received on MCAN0 goes back with ID + 1.
 * RX is handled in the interrupt, which drains RX FIFO 0 completely each time. */
#include "hal.h"
#include "mcan.h"

volatile uint32_t rx_frames;
volatile uint32_t tx_dropped;
volatile uint32_t rx_interrupts;

void MCAN0_INT0_IRQHandler(void) {
    MCAN0->IR = MCAN_IR_RF0N_Msk | MCAN_IR_RF0L_Msk; /* clear first: a frame arriving now re-raises */
    rx_interrupts++;
    can_frame_t frame;
    while (mcan_receive(MCAN0, &frame)) {
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
