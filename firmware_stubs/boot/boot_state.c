/* The persistent boot state: records in two alternating NVM pages (see boot.h). */
#include "boot.h"

#define RECORD_WORDS (BOOT_RECORD_SIZE / 4u)
#define CRC_BYTES 28u /* the CRC covers the record up to itself */

uint32_t boot_crc32(const void *data, uint32_t length) {
    const uint8_t *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    while (length--) {
        crc ^= *p++;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}

static uint32_t page_address(uint32_t page) { return BOOT_PAGE0 + page * BOOT_PAGE_SIZE; }

static uint32_t slot_address(uint32_t page, uint32_t slot) {
    return page_address(page) + slot * BOOT_RECORD_SIZE;
}

/* A slot's words through the probe: 0, or -1 when a unit is uncorrectable. */
static int read_slot(uint32_t address, boot_record_t *r) {
    uint32_t *w = (uint32_t *)r;
    for (uint32_t i = 0; i < RECORD_WORDS; i++) {
        if (probe_read32(address + 4u * i, &w[i]) != 0) return -1;
    }
    return 0;
}

static int slot_erased(uint32_t address) {
    boot_record_t r;
    if (read_slot(address, &r) != 0) return 0;
    const uint32_t *w = (const uint32_t *)&r;
    for (uint32_t i = 0; i < RECORD_WORDS; i++) {
        if (w[i] != 0xFFFFFFFFu) return 0;
    }
    return 1;
}

int boot_record_valid(const boot_record_t *r) {
    if (r->magic != BOOT_RECORD_MAGIC) return 0;
    if (boot_crc32(r, CRC_BYTES) != r->crc) return 0;
    if (r->confirmed >= BOOT_BANKS) return 0;
    if (r->trial != BOOT_BANK_NONE && (r->trial >= BOOT_BANKS || r->trial == r->confirmed)) {
        return 0;
    }
    return 1;
}

void boot_state_read(boot_state_t *state) {
    state->found = 0;
    state->address = 0;
    for (uint32_t page = 0; page < BOOT_PAGES; page++) {
        for (uint32_t slot = 0; slot < BOOT_SLOTS_PER_PAGE; slot++) {
            uint32_t address = slot_address(page, slot);
            boot_record_t r;
            if (read_slot(address, &r) != 0 || !boot_record_valid(&r)) continue;
            if (!state->found || r.seq > state->newest.seq) {
                state->found = 1;
                state->newest = r;
                state->address = address;
            }
        }
    }
}

/* The slot after the last one that is not fully erased (BOOT_SLOTS_PER_PAGE: full). */
static uint32_t next_free_slot(uint32_t page) {
    uint32_t slot = BOOT_SLOTS_PER_PAGE;
    while (slot > 0 && slot_erased(slot_address(page, slot - 1u))) slot--;
    return slot;
}

/* Unit by unit, the CRC's unit last. 0, 1 (the slot is not usable: try the next), -1. */
static int write_slot(uint32_t address, const boot_record_t *rec) {
    const uint32_t *w = (const uint32_t *)rec;
    for (uint32_t unit = 0; unit < BOOT_RECORD_SIZE / 8u; unit++) {
        int r = flc_program(address + 8u * unit, w[2u * unit], w[2u * unit + 1u]);
        if (r == (int)FLC_SR_PGSERR_Msk) return 1; /* not erased (torn bits we could not see) */
        if (r != 0) return -1;
    }
    boot_record_t back;
    if (read_slot(address, &back) != 0 || !boot_record_valid(&back)) return 1;
    return 0;
}

int boot_state_append(boot_state_t *state, boot_record_t *rec) {
    rec->magic = BOOT_RECORD_MAGIC;
    rec->seq = state->found ? state->newest.seq + 1u : 1u;
    rec->reserved0 = 0;
    rec->reserved1 = 0;
    rec->crc = boot_crc32(rec, CRC_BYTES);
    uint32_t page = state->found ? (state->address - BOOT_PAGE0) / BOOT_PAGE_SIZE : 0u;
    uint32_t slot = next_free_slot(page);
    int result = -1, switched = 0;
    for (;;) {
        if (slot >= BOOT_SLOTS_PER_PAGE) {
            /* Full: the other page, erased. Only once: the page holding the newest record
             * is never erased. */
            if (switched) break;
            switched = 1;
            page ^= 1u;
            if (flc_erase_sector(flc_sector_of(page_address(page))) != 0) break;
            slot = 0;
        }
        int r = write_slot(slot_address(page, slot), rec);
        if (r == 0) {
            state->found = 1;
            state->newest = *rec;
            state->address = slot_address(page, slot);
            result = 0;
            break;
        }
        if (r < 0) break;
        slot++;
    }
    flc_lock();
    return result;
}
