#include "boot_dids.h"
#include "../boot/boot.h"

static const char part_number[] = "ELC-ASILB-M4-001"; /* 16 characters */

uint32_t did_part_number(uint8_t *out) {
    for (uint32_t i = 0; i < 16u; i++) out[i] = (uint8_t)part_number[i];
    return 16u;
}

uint32_t did_put_version(uint8_t *out, uint32_t version) {
    out[0] = (uint8_t)(version >> 24);
    out[1] = (uint8_t)(version >> 16);
    out[2] = (uint8_t)(version >> 8);
    out[3] = (uint8_t)version;
    return 4u;
}

static uint32_t bank_version(uint32_t bank, uint8_t *out) {
    boot_image_header_t h;
    if (probe_read_bytes(boot_bank_base(bank), &h, sizeof h) != 0 ||
        h.magic != BOOT_IMAGE_MAGIC) {
        return did_put_version(out, 0xFFFFFFFFu);
    }
    return did_put_version(out, h.version);
}

uint32_t did_bank_a_version(uint8_t *out) { return bank_version(BOOT_BANK_A, out); }
uint32_t did_bank_b_version(uint8_t *out) { return bank_version(BOOT_BANK_B, out); }

uint32_t did_banks(uint8_t *out) {
    boot_state_t state;
    boot_state_read(&state);
    out[0] = state.found ? state.newest.confirmed : BOOT_BANK_NONE;
    out[1] = state.found ? state.newest.trial : BOOT_BANK_NONE;
    return 2u;
}

uint32_t did_boot_state(uint8_t *out) {
    boot_state_t state;
    boot_state_read(&state);
    uint32_t counter = state.found ? state.newest.counter : 0u;
    uint32_t seq = state.found ? state.newest.seq : 0u;
    out[0] = state.found ? state.newest.attempts : 0u;
    for (uint32_t i = 0; i < 4u; i++) {
        out[1 + i] = (uint8_t)(counter >> (24u - 8u * i));
        out[5 + i] = (uint8_t)(seq >> (24u - 8u * i));
    }
    return 9u;
}
