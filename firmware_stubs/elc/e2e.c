#include "e2e.h"

/* CRC-8 SAE J1850 as E2E profile 1 chains it: register 0x00, no final XOR. */
static uint8_t crc8(uint8_t crc, uint8_t byte) {
    crc ^= byte;
    for (int bit = 0; bit < 8; bit++) crc = (uint8_t)(crc & 0x80u ? (crc << 1) ^ 0x1Du : crc << 1);
    return crc;
}

static uint8_t p01_crc(const e2e_receiver_t *rx, const uint8_t *data, uint8_t len) {
    uint8_t crc = crc8(crc8(0, (uint8_t)rx->data_id), (uint8_t)(rx->data_id >> 8));
    for (uint8_t i = 0; i < len; i++)
        if (i != rx->crc_byte) crc = crc8(crc, data[i]);
    return crc;
}

static e2e_status_t check(e2e_receiver_t *rx, const uint8_t *data, uint8_t len) {
    if (len <= rx->crc_byte || len * 8u < rx->counter_bit + 4u) return E2E_ERROR;
    uint8_t counter = (data[rx->counter_bit / 8u] >> (rx->counter_bit % 8u)) & 0x0Fu;
    if (counter > 14u || data[rx->crc_byte] != p01_crc(rx, data, len)) return E2E_ERROR;
    uint8_t last = rx->last_counter, had = rx->has_counter;
    rx->last_counter = counter;
    rx->has_counter = 1;
    if (!had) return E2E_OK;
    uint8_t delta = (uint8_t)((counter + 15u - last) % 15u);
    if (delta == 0) return E2E_REPEATED;
    return delta <= rx->max_delta_counter ? E2E_OK : E2E_WRONG_SEQUENCE;
}

static void state_machine(e2e_receiver_t *rx, e2e_status_t status) {
    if (rx->state == E2E_NODATA) {
        if (status == E2E_ERROR) return;
        rx->state = E2E_INIT;
        rx->filled = rx->next = 0;
    }
    rx->window[rx->next] = (uint8_t)status;
    rx->next = (uint8_t)((rx->next + 1u) % E2E_WINDOW);
    if (rx->filled < E2E_WINDOW) rx->filled++;
    uint8_t ok = 0, errors = 0;
    for (uint8_t i = 0; i < rx->filled; i++) {
        ok += rx->window[i] == E2E_OK;
        errors += rx->window[i] == E2E_ERROR;
    }
    switch (rx->state) {
    case E2E_INIT:
        if (errors <= rx->max_error_init && ok >= rx->min_ok_init) rx->state = E2E_VALID;
        else if (errors > rx->max_error_init) rx->state = E2E_INVALID;
        break;
    case E2E_VALID:
        if (!(errors <= rx->max_error_valid && ok >= rx->min_ok_valid)) rx->state = E2E_INVALID;
        break;
    default: /* INVALID */
        if (errors <= rx->max_error_invalid && ok >= rx->min_ok_invalid) rx->state = E2E_VALID;
        break;
    }
}

e2e_status_t e2e_receive(e2e_receiver_t *rx, const uint8_t *data, uint8_t len) {
    e2e_status_t status = check(rx, data, len);
    state_machine(rx, status);
    return status;
}
