/*
 * LIN master over a USART in LIN mode, driven by the frame and schedule tables the build
 * generates from the LDF (exterior_light_lin.h).
 *
 * The schedule runs in whole milliseconds from lin_master_tick(); each slot sends a header
 * (break, sync, protected ID) and then either the master's own response or waits for a
 * slave's. Everything the USART receives is checked: the readback of the master's own bytes
 * (a difference is a bit error), framing and noise flags, the response's length within the
 * frame's maximum time (1.4 x nominal) and its checksum. An event-triggered frame's answer is
 * stored under the frame its first byte names; a corrupted one is a collision, resolved by
 * running the collision-resolving table once. Sleep: the go-to-sleep command, after which any
 * dominant phase on the bus (a slave's wake-up) wakes the cluster; lin_master_wake_up() sends
 * the master's own wake-up pulse. After a wake-up the schedule restarts 100 ms later.
 */
#ifndef LIN_MASTER_H
#define LIN_MASTER_H

#include <stdint.h>
#include "asilb_m4.h"
#include "exterior_light_lin.h"

/* A frame's last outcome, as LinGateway reports it. */
enum {
    LIN_STATUS_OK = 0,
    LIN_STATUS_NO_RESPONSE = 1,
    LIN_STATUS_CHECKSUM_ERROR = 2,
    LIN_STATUS_INCOMPLETE = 3,
    LIN_STATUS_FRAMING_ERROR = 4,
    LIN_STATUS_BIT_ERROR = 5,
    LIN_STATUS_SLAVE_ERROR = 6, /* the slave set its response_error signal */
    LIN_STATUS_NONE = 7,        /* not received yet */
};

/* Each frame's data: what the master publishes, or the last good response it received. */
extern uint8_t lin_data[LIN_FRAME_COUNT][8];
extern volatile uint8_t lin_status[LIN_FRAME_COUNT];
extern volatile uint32_t lin_received[LIN_FRAME_COUNT]; /* good responses, per frame */
extern volatile uint32_t lin_collisions;

void lin_master_init(USART_Type *usart, uint32_t clock_hz);
void lin_master_tick(void); /* every millisecond, at the USART interrupt's priority */
void lin_master_irq(void);  /* from the USART's interrupt handler */
void lin_master_go_to_sleep(void);
void lin_master_wake_up(void);
int lin_master_asleep(void);

uint32_t lin_get(uint8_t frame, uint32_t bit, uint32_t width);
void lin_set(uint8_t frame, uint32_t bit, uint32_t width, uint32_t value);
/* A signal by its LDF name in the generated macros' spelling: LIN_GET(TURN_STALK). */
#define LIN_GET(SIGNAL) \
    lin_get(LIN_SIGNAL_##SIGNAL##_FRAME, LIN_SIGNAL_##SIGNAL##_BIT, LIN_SIGNAL_##SIGNAL##_WIDTH)
#define LIN_SET(SIGNAL, VALUE)                                                                  \
    lin_set(LIN_SIGNAL_##SIGNAL##_FRAME, LIN_SIGNAL_##SIGNAL##_BIT, LIN_SIGNAL_##SIGNAL##_WIDTH, \
            (VALUE))

#endif
