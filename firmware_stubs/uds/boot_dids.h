/* The identification DIDs the bootloader and the application both answer (0x22), read from
 * the flash the A/B boot code manages: part number, each bank's image version, the banks in
 * the newest boot record, and its attempts, stored security counter and sequence number. */
#ifndef BOOT_DIDS_H
#define BOOT_DIDS_H

#include "uds.h"

#define DID_PART_NUMBER      0xF187u /* 16 ASCII bytes */
#define DID_SOFTWARE_VERSION 0xF189u /* of what answers: major, minor, patch (16 bits) */
#define DID_BANK_A_VERSION   0xFD00u /* 4 bytes as F189, FF FF FF FF: no readable image */
#define DID_BANK_B_VERSION   0xFD01u
#define DID_BANKS            0xFD02u /* confirmed bank, trial bank (0 A, 1 B, 0xFF none) */
#define DID_BOOT_STATE       0xFD03u /* attempts, stored counter (4), record sequence (4) */

#define BOOT_DID_ENTRIES                                                      \
    {DID_PART_NUMBER, 16, did_part_number, 0, 0, 0},                          \
    {DID_BANK_A_VERSION, 4, did_bank_a_version, 0, 0, 0},                     \
    {DID_BANK_B_VERSION, 4, did_bank_b_version, 0, 0, 0},                     \
    {DID_BANKS, 2, did_banks, 0, 0, 0},                                       \
    {DID_BOOT_STATE, 9, did_boot_state, 0, 0, 0}

uint32_t did_part_number(uint8_t *out);
uint32_t did_bank_a_version(uint8_t *out);
uint32_t did_bank_b_version(uint8_t *out);
uint32_t did_banks(uint8_t *out);
uint32_t did_boot_state(uint8_t *out);
/* A version word (major << 24 | minor << 16 | patch) as the 4 bytes of F189. */
uint32_t did_put_version(uint8_t *out, uint32_t version);

#endif
