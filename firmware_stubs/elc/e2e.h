/* AUTOSAR E2E profile 1 check (data ID mode BOTH) and the E2E state machine, receive side. */
#ifndef E2E_H
#define E2E_H

#include <stdint.h>

typedef enum { E2E_OK, E2E_REPEATED, E2E_WRONG_SEQUENCE, E2E_ERROR } e2e_status_t;
typedef enum { E2E_NODATA, E2E_INIT, E2E_VALID, E2E_INVALID } e2e_state_t;

#define E2E_WINDOW 3u

typedef struct {
    /* configuration */
    uint16_t data_id;
    uint8_t crc_byte;    /* byte holding the CRC */
    uint8_t counter_bit; /* bit where the 4-bit counter starts */
    uint8_t max_delta_counter;
    uint8_t min_ok_init, max_error_init, min_ok_valid, max_error_valid, min_ok_invalid,
        max_error_invalid;
    /* state */
    uint8_t has_counter, last_counter;
    uint8_t window[E2E_WINDOW], filled, next;
    e2e_state_t state;
} e2e_receiver_t;

/* Check one received payload and run the state machine; returns the check status. */
e2e_status_t e2e_receive(e2e_receiver_t *rx, const uint8_t *data, uint8_t len);

#endif
