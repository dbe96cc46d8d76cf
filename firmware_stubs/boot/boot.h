/*
 * What the A/B bootloader and the applications it boots share: the flash map, the persistent
 * boot state (records in NVM), the boot report in SRAM, and the routines both use (flash
 * controller, fault-safe flash reads, records).
 *
 * Flash map (board ASILB-M4): BOOTLOADER 0x0000_0000 64 KB (write-protected), BANK_A
 * 0x0001_0000 960 KB, BANK_B 0x0010_0000 960 KB, NVM 0x001F_0000 64 KB. A bank holds a signed
 * image (harness/image.py): a 512-byte header at its base, the body (the application, linked at
 * base + 0x200) and a 16-byte AES-CMAC trailer right after the body, over [base, trailer).
 *
 * Boot state: 32-byte records in two 16 KB NVM pages (0x001F_0000 and 0x001F_4000), appended
 * in the page holding the newest record after its last slot that is not fully erased (a torn
 * slot is skipped, never reused); a full page makes the other page erased and the record
 * written at its start. The newest record is the valid one (magic, CRC-32, sane fields) with
 * the highest sequence number. A record is written unit by unit (8 bytes), its CRC in the last
 * unit, so a cut leaves either the previous record as the newest, or the new one complete.
 */
#ifndef BOOT_H
#define BOOT_H

#include <stdint.h>
#include "asilb_m4.h"

/* ---- flash map ---- */
#define BOOT_BANKS 2u
#define BOOT_BANK_A 0u
#define BOOT_BANK_B 1u
#define BOOT_BANK_NONE 0xFFu
#define BOOT_BANK_SIZE (960u * 1024u)
#define BOOT_HEADER_SIZE 0x200u
#define BOOT_MAC_SIZE 16u
#define BOOT_TRIAL_ATTEMPTS 3u /* K: a trial image gets this many boots to confirm itself */

static inline uint32_t boot_bank_base(uint32_t bank) {
    return bank == BOOT_BANK_A ? BANK_A_BASE : BANK_B_BASE;
}

/* ---- image header (harness/image.py) ---- */
#define BOOT_IMAGE_MAGIC 0x49425341u /* "ASBI" */
#define BOOT_IMAGE_HEADER_VERSION 1u
typedef struct {
    uint32_t magic;
    uint16_t header_version;
    uint16_t header_size;
    uint32_t version; /* major << 24 | minor << 16 | patch */
    uint32_t security_counter;
    uint32_t body_size;
    uint32_t load_address; /* bank base + 0x200 */
    uint32_t flags;
} boot_image_header_t;

/* ---- persistent boot state: the record ---- */
#define BOOT_RECORD_MAGIC 0x43524241u /* "ABRC" */
#define BOOT_RECORD_SIZE 32u
#define BOOT_PAGE_SIZE 0x4000u
#define BOOT_PAGES 2u
#define BOOT_PAGE0 NVM_BASE
#define BOOT_SLOTS_PER_PAGE (BOOT_PAGE_SIZE / BOOT_RECORD_SIZE)
#define BOOT_TAG_SIZE 8u

/* 32 bytes, little-endian, four 8-byte program units:
 *   unit 0: magic, sequence number
 *   unit 1: confirmed bank, trial bank (0xFF none), attempts, 0, stored security counter
 *   unit 2: rejected-image tag (the first 8 bytes of the CMAC of an image the bootloader
 *           reverted after its K trial boots, not to be tried again; all 0xFF: none)
 *   unit 3: 0, CRC-32 (IEEE, as zlib.crc32) over bytes 0..27 */
typedef struct {
    uint32_t magic;
    uint32_t seq;
    uint8_t confirmed;
    uint8_t trial;
    uint8_t attempts;
    uint8_t reserved0;
    uint32_t counter;
    uint8_t tag[BOOT_TAG_SIZE];
    uint32_t reserved1;
    uint32_t crc;
} boot_record_t;

typedef char boot_record_size_check[sizeof(boot_record_t) == BOOT_RECORD_SIZE ? 1 : -1];

typedef struct {
    int found;            /* a valid record exists (else: factory state) */
    boot_record_t newest; /* the newest valid record (when found) */
    uint32_t address;     /* where it is */
} boot_state_t;

/* ---- the boot report, at the start of SRAM (256 bytes reserved) ---- */
#define BOOT_REPORT_ADDRESS SRAM_BASE
#define BOOT_REPORT_MAGIC 0x54505242u /* "BRPT" */
#define BOOT_REPORT ((volatile boot_report_t *)BOOT_REPORT_ADDRESS)

enum { BOOT_STATE_NONE = 0, BOOT_STATE_CONFIRMED = 1, BOOT_STATE_TRIAL = 2 };

/* Per-bank verdicts. */
enum {
    BOOT_VERDICT_UNCHECKED = 0,
    BOOT_VERDICT_OK = 1,
    BOOT_VERDICT_EMPTY = 2,        /* erased header */
    BOOT_VERDICT_BAD_MAGIC = 3,
    BOOT_VERDICT_BAD_HEADER = 4,   /* header version or size, body size 0 */
    BOOT_VERDICT_WRONG_LOAD = 5,   /* load address is not the bank's base + 0x200 */
    BOOT_VERDICT_OVERSIZED = 6,    /* header, body and CMAC do not fit the bank */
    BOOT_VERDICT_ECC = 7,          /* header, trailer or vector table: uncorrectable ECC */
    BOOT_VERDICT_BUS_CMAC = 8,     /* the security unit met an ECC error (ERR_BUS) */
    BOOT_VERDICT_BAD_CMAC = 9,
    BOOT_VERDICT_OLD_COUNTER = 10, /* security counter below the stored one */
    BOOT_VERDICT_REJECTED = 11,    /* the image the bootloader reverted before */
    BOOT_VERDICT_BAD_VECTORS = 12, /* initial SP not in SRAM, reset vector not in the body */
    BOOT_VERDICT_NO_KEY = 13,      /* the security unit has no key in the image key slot */
};

/* Events of this boot. */
#define BOOT_EVENT_REVERTED 0x01u     /* a trial image was given up */
#define BOOT_EVENT_NVM_FAILED 0x02u   /* a record could not be written */
#define BOOT_EVENT_FACTORY 0x04u      /* no record: factory state */

typedef struct {
    uint32_t magic;           /* BOOT_REPORT_MAGIC */
    uint8_t booted_bank;      /* BOOT_BANK_A / _B */
    uint8_t state;            /* BOOT_STATE_CONFIRMED / _TRIAL */
    uint8_t attempts;         /* trial boots so far, this one included */
    uint8_t reset_causes;     /* SYSCTL.RSTCAUSE as the bootloader found it */
    uint32_t stored_counter;  /* the stored security counter */
    uint32_t record_seq;      /* sequence number of the newest record (0: none) */
    uint8_t verdict[BOOT_BANKS];
    uint8_t events;           /* BOOT_EVENT_* */
    uint8_t reverted_bank;    /* the bank reverted at this boot, or BOOT_BANK_NONE */
    uint32_t version[BOOT_BANKS];          /* each bank's image version (0: none) */
    uint32_t security_counter[BOOT_BANKS]; /* each bank's image security counter */
    uint32_t ecc_faults;      /* flash reads the ECC refused (BusFaults taken by the probe) */
    uint32_t check;           /* ~magic */
} boot_report_t;

/* ---- the programming request: the application hands over to the bootloader ----
 * An application that gets a UDS request for the programming session writes this (after the
 * boot report, in the 256 bytes no image links over) and resets; the bootloader, finding it,
 * clears it, answers the session request in the frame format the tester used, and stays in
 * its UDS server. SRAM after power-on holds a pattern, never magic and check together. */
#define BOOT_REQUEST_ADDRESS (SRAM_BASE + 0x80u)
#define BOOT_REQUEST_MAGIC 0x474F5250u /* "PROG" */
typedef struct {
    uint32_t magic;
    uint32_t frame_flags; /* CAN_FLAG_FD / CAN_FLAG_BRS of the tester's request */
    uint32_t check;       /* ~magic ^ frame_flags */
} boot_request_t;
#define BOOT_REQUEST ((volatile boot_request_t *)BOOT_REQUEST_ADDRESS)

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib.crc32) ---- */
uint32_t boot_crc32(const void *data, uint32_t length);

/* ---- fault-safe flash reads (boot_probe.c) ----
 * A read of flash that may hold an uncorrectable ECC error (a torn unit) goes through the
 * probe: the BusFault it raises is recognised by the handler, which resumes at a failure
 * path. probe_enable sets SHCSR.BUSFAULTENA (the BusFault handler must be the probe's). */
void probe_enable(void);
/* 0, or -1 when the word could not be read (a bus fault). */
int probe_read32(uint32_t address, uint32_t *value);
/* Bytes from any address and length (aligned words are read); 0 or -1. */
int probe_read_bytes(uint32_t address, void *dst, uint32_t length);
/* Called by fault handlers with the stacked frame: 1 if the fault was the probe's (the frame
 * now resumes at its failure path and the fault status is cleared), else 0. */
int probe_fixup(uint32_t *frame);
extern volatile uint32_t probe_faults; /* probe reads that faulted */

/* ---- the flash controller (boot_flash.c) ---- */
#define FLC_ERRORS (FLC_SR_PGSERR_Msk | FLC_SR_PGAERR_Msk | FLC_SR_WRPERR_Msk | \
                    FLC_SR_LOCKERR_Msk | FLC_SR_KEYERR_Msk)
uint32_t flc_sector_of(uint32_t address);
int flc_unlock(void);
void flc_lock(void);
/* 0, or the SR error bits (a unit that is not erased: FLC_SR_PGSERR_Msk); -1 when the
 * operation did not end (no EOP). */
int flc_program(uint32_t address, uint32_t lo, uint32_t hi);
int flc_erase_sector(uint32_t index);
/* Flash operations sleep until the controller's interrupt with PRIMASK set, so no handler
 * runs meanwhile: always for a program (microseconds), and for an erase when this is set
 * (the bootloader's decision); clear (an application, the UDS server), an erase sleeps
 * between the interrupts that keep running. */
extern uint8_t flc_sleep_on_irq;
/* Sleep until (*reg & mask): the peripheral's IRQ line wakes the core, PRIMASK keeps its
 * handler from running. */
void boot_sleep_until(volatile const uint32_t *reg, uint32_t mask, IRQn_Type irq);

/* ---- the security unit (boot_sec.c) ---- */
#define SEC_FLAGS 0x1FEu /* DONE and every ERR_* flag (write 1 to clear) */
/* AES-CMAC of [src, src + length) with the key in `slot` into mac[16]: 0, or the STATUS
 * error bits (ERR_SLOT_EMPTY, ERR_BUS, ...). */
uint32_t sec_cmac(uint32_t slot, uint32_t src, uint32_t length, uint8_t mac[16]);

/* ---- records (boot_state.c) ---- */
/* Scan both pages for the newest valid record. */
void boot_state_read(boot_state_t *state);
/* Whether a record read from flash is valid (magic, CRC, fields). */
int boot_record_valid(const boot_record_t *r);
/* Append `rec` (its magic, sequence number and CRC are filled in) after the newest record of
 * `state`; on success `state` describes it. 0, or -1 when no record could be written. */
int boot_state_append(boot_state_t *state, boot_record_t *rec);

/* ---- for applications (boot_app.c) ---- */
enum { BOOT_CHECKS_PENDING = 0, BOOT_CHECKS_PASSED = 1, BOOT_CHECKS_FAILED = -1 };
/* Read the boot report and the watchdog's state once, at start-up. */
void boot_app_init(void);
/* Whether boot_app_poll has anything to do: booted by the bootloader, or a running
 * watchdog. */
int boot_app_active(void);
/* From the main loop: service the watchdog if it runs, and confirm a trial image (or the
 * factory image, when no record exists) once the start-up checks passed. After failed
 * checks a trial image stops servicing the watchdog: its reset counts as a failed attempt. */
void boot_app_poll(uint32_t now_ms, int checks);
/* The report, if this application was booted by the bootloader; else 0. */
const volatile boot_report_t *boot_app_report(void);

#endif
