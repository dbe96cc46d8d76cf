/*
 * The bootloader's UDS server: reprogramming over CAN (MCAN0, the diagnostic IDs of the DBC).
 *
 * Entered when the application hands over (a programming-session request, boot.h) or when no
 * bank holds a valid image. Services beyond the core's (uds.c), in the programming session
 * after security access:
 *   0x31 01 FF00  erase the target bank (0x78 pending while it runs); with an option record
 *                 (addressAndLengthFormatIdentifier, address, size) only the sectors of that
 *                 range of it, as an OEM's eraseMemory routine takes one
 *   0x34          request download into the target bank: address = its base, size <= what
 *                 was erased
 *   0x36          transfer data, block sequence counter from 1, wrapping 0xFF -> 0x00; the
 *                 last block repeated is answered again without writing
 *   0x37          request transfer exit (all announced bytes received)
 *   0x31 01 FF01  check the image in the target bank (the boot verification: CMAC, header,
 *                 counter); status 0 ok, else 1 and the verdict
 *   0x31 01 FF02  check dependencies: the new image is newer than the confirmed one, so the
 *                 next boot tries it (status 0), else 1
 * The target bank is never the one the bootloader would boot: the other bank of the newest
 * record's confirmed one (the factory state: the bank without the newest valid image).
 * 0x11 resets; an S3 timeout back to the default session resets too when a valid image
 * exists (the ECU boots it).
 */
#include "../boot/boot.h"
#include "../uds/boot_dids.h"
#include "bootloader.h"
#include "../uds/elc_channel.h"
#include "hal.h"
#include "mcan.h"

#define MAX_BLOCK 4096u /* data bytes per 0x36: a request of 4,098 bytes (ISO-TP escape) */
#define SECTOR_SIZE (FLC_SECTOR_KB * 1024u)
#define UNIT 8u
#define BOOTLOADER_VERSION 0x01000000u /* 1.0.0 */

static volatile uint32_t ticks_ms;
static uint8_t rx_buffer[MAX_BLOCK + 2u + 64u]; /* longer requests: 0x13, not an ISO-TP overflow */
static uint8_t tx_buffer[64];
static uds_server_t server;

static struct {
    uint32_t erased;      /* bytes of the target bank erased from its base, not written since */
    uint8_t active;       /* a download is running */
    uint8_t suspended;    /* a programming failure stopped it */
    uint8_t sequence;     /* the counter the next 0x36 carries */
    uint8_t last_length_ok;
    uint32_t bank, address, end;
    uint8_t unit[UNIT];   /* bytes of a program unit not yet complete */
    uint32_t unit_fill;
    uint32_t last_length; /* of the last block accepted (a repeat must match it) */
} download;

void SysTick_Handler(void) { ticks_ms++; }

void MCAN0_INT0_IRQHandler(void) {
    MCAN0->IR = MCAN0->IR;
    can_frame_t f;
    while (mcan_receive(MCAN0, &f)) isotp_queue_frame(&server.tp, &f);
}

static uint32_t target_bank(void) {
    return bootloader_target_bank();
}

/* ---- flash ---- */

static void serve_watchdog(void) { bootloader_service_watchdog(); }

static int program_unit(uint32_t address, const uint8_t *u) {
    uint32_t lo = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
                  (uint32_t)u[3] << 24;
    uint32_t hi = (uint32_t)u[4] | (uint32_t)u[5] << 8 | (uint32_t)u[6] << 16 |
                  (uint32_t)u[7] << 24;
    if (lo == 0xFFFFFFFFu && hi == 0xFFFFFFFFu) return 0; /* erased already */
    return flc_program(address, lo, hi);
}

static uint8_t erase(uint32_t base, uint32_t size) {
    uint32_t first = flc_sector_of(base), last = flc_sector_of(base + size - 1u);
    for (uint32_t sector = first; sector <= last; sector++) {
        serve_watchdog();
        uds_keepalive(&server);
        if (flc_erase_sector(sector) != 0) return NRC_PROGRAMMING_FAILURE;
    }
    return UDS_OK;
}

/* ---- services ---- */

static uint32_t be(const uint8_t *p, uint32_t n) {
    uint32_t v = 0;
    for (uint32_t i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static uint8_t routine_control(uds_server_t *s, const uint8_t *req, uint32_t len,
                               uint8_t *resp, uint32_t *resp_len) {
    uint8_t sub = req[1] & 0x7Fu;
    uint16_t routine = (uint16_t)(req[2] << 8 | req[3]);
    if (len < 4u) return NRC_INCORRECT_LENGTH;
    if (sub != 0x01u) return NRC_SUBFUNCTION_NOT_SUPPORTED;
    if (routine != 0xFF00u && routine != 0xFF01u && routine != 0xFF02u) {
        return NRC_REQUEST_OUT_OF_RANGE;
    }
    if (s->session != UDS_SESSION_PROGRAMMING) return NRC_SERVICE_NOT_IN_SESSION;
    if (!s->unlocked) return NRC_SECURITY_ACCESS_DENIED;
    if (routine != 0xFF00u && len != 4u) return NRC_INCORRECT_LENGTH;
    if (download.active) return NRC_CONDITIONS_NOT_CORRECT;
    uint32_t bank = target_bank();
    resp[1] = req[1];
    resp[2] = req[2];
    resp[3] = req[3];
    resp[4] = 0; /* routine status: 0 correct result */
    *resp_len = 5u;
    if (routine == 0xFF00u) {
        uint32_t base = boot_bank_base(bank), size = BOOT_BANK_SIZE;
        if (len > 4u) { /* the range to erase */
            uint32_t size_bytes = req[4] >> 4, address_bytes = req[4] & 0x0Fu;
            if (size_bytes < 1u || size_bytes > 4u || address_bytes < 1u || address_bytes > 4u ||
                len != 5u + address_bytes + size_bytes) {
                return NRC_INCORRECT_LENGTH;
            }
            uint32_t address = be(&req[5], address_bytes);
            size = be(&req[5 + address_bytes], size_bytes);
            if (address != base || size == 0 || size > BOOT_BANK_SIZE) {
                return NRC_REQUEST_OUT_OF_RANGE;
            }
        }
        s->pending_at_ms = uds_now(s); /* an erase takes milliseconds per sector: 0x78 now */
        download.erased = 0;
        uint8_t nrc = erase(base, size);
        if (nrc == UDS_OK) download.erased = size;
        return nrc;
    }
    uint8_t verdict = bootloader_judge(bank);
    if (routine == 0xFF01u) {
        if (verdict != BOOT_VERDICT_OK) {
            resp[4] = 1;
            resp[5] = verdict;
            *resp_len = 6u;
        }
        return UDS_OK;
    }
    if (verdict != BOOT_VERDICT_OK || !bootloader_would_try(bank)) resp[4] = 1;
    return UDS_OK;
}

static uint8_t request_download(uds_server_t *s, const uint8_t *req, uint32_t len,
                                uint8_t *resp, uint32_t *resp_len) {
    uint32_t size_bytes = req[2] >> 4, address_bytes = req[2] & 0x0Fu;
    if (len < 3u) return NRC_INCORRECT_LENGTH;
    if (req[1] != 0x00u || size_bytes < 1u || size_bytes > 4u || address_bytes < 1u ||
        address_bytes > 4u) {
        return NRC_REQUEST_OUT_OF_RANGE; /* compression / encryption, or field sizes */
    }
    if (len != 3u + address_bytes + size_bytes) return NRC_INCORRECT_LENGTH;
    if (download.active) return NRC_CONDITIONS_NOT_CORRECT;
    uint32_t address = be(&req[3], address_bytes), size = be(&req[3 + address_bytes], size_bytes);
    uint32_t bank = target_bank(), base = boot_bank_base(bank);
    if (address != base || size == 0 || size > BOOT_BANK_SIZE) return NRC_REQUEST_OUT_OF_RANGE;
    if (download.erased < size) return NRC_UPLOAD_DOWNLOAD_NOT_ACCEPTED; /* erase it first */
    (void)s;
    download.active = 1;
    download.suspended = 0;
    download.bank = bank;
    download.address = address;
    download.end = address + size;
    download.sequence = 1;
    download.last_length = 0;
    download.unit_fill = 0;
    download.erased = 0; /* written from now on */
    resp[1] = 0x20; /* maxNumberOfBlockLength in 2 bytes */
    resp[2] = (uint8_t)((MAX_BLOCK + 2u) >> 8);
    resp[3] = (uint8_t)(MAX_BLOCK + 2u);
    *resp_len = 4u;
    return UDS_OK;
}

static uint8_t flush_unit(void) {
    uint32_t at = download.address - download.unit_fill;
    for (uint32_t i = download.unit_fill; i < UNIT; i++) download.unit[i] = 0xFFu;
    download.unit_fill = 0;
    return program_unit(at, download.unit) == 0 ? UDS_OK : NRC_PROGRAMMING_FAILURE;
}

static uint8_t transfer_data(uds_server_t *s, const uint8_t *req, uint32_t len,
                             uint8_t *resp, uint32_t *resp_len) {
    if (!download.active) return NRC_REQUEST_SEQUENCE_ERROR;
    if (download.suspended) return NRC_TRANSFER_DATA_SUSPENDED;
    if (len > MAX_BLOCK + 2u) return NRC_INCORRECT_LENGTH;
    uint8_t counter = req[1];
    uint32_t n = len - 2u;
    resp[1] = counter;
    *resp_len = 2u;
    if (counter == (uint8_t)(download.sequence - 1u) && download.last_length == n && n) {
        return UDS_OK; /* the last block again (its response was lost): not written again */
    }
    if (counter != download.sequence) return NRC_WRONG_BLOCK_SEQUENCE;
    if (n == 0 || n > download.end - download.address) return NRC_REQUEST_OUT_OF_RANGE;
    for (uint32_t i = 0; i < n; i++) {
        download.unit[download.unit_fill++] = req[2 + i];
        download.address++;
        if (download.unit_fill == UNIT && flush_unit() != UDS_OK) {
            download.suspended = 1;
            return NRC_PROGRAMMING_FAILURE;
        }
        if ((i & 0x1FFu) == 0x1FFu) { /* every 64 units */
            serve_watchdog();
            uds_keepalive(s);
        }
    }
    download.sequence++;
    download.last_length = n;
    return UDS_OK;
}

static uint8_t transfer_exit(uds_server_t *s, const uint8_t *req, uint32_t len, uint8_t *resp,
                             uint32_t *resp_len) {
    (void)s;
    (void)req;
    (void)resp;
    if (!download.active) return NRC_REQUEST_SEQUENCE_ERROR;
    if (len != 1u) return NRC_INCORRECT_LENGTH;
    if (download.address != download.end) return NRC_REQUEST_SEQUENCE_ERROR; /* bytes missing */
    download.active = 0;
    if (download.unit_fill && flush_unit() != UDS_OK) return NRC_PROGRAMMING_FAILURE;
    *resp_len = 1u;
    return UDS_OK;
}

static const uds_service_t services[] = {
    {0x31, UDS_IN_ANY, 0, 4, routine_control},
    {0x34, UDS_IN_PROGRAMMING, 1, 3, request_download},
    {0x36, UDS_IN_PROGRAMMING, 1, 2, transfer_data},
    {0x37, UDS_IN_PROGRAMMING, 1, 1, transfer_exit},
};

static uint32_t did_software_version(uint8_t *out) {
    return did_put_version(out, BOOTLOADER_VERSION);
}

static const uds_did_t dids[] = {
    BOOT_DID_ENTRIES,
    {DID_SOFTWARE_VERSION, 4, did_software_version, 0, 0, 0},
};

static uint8_t session_changing(uds_server_t *s, uint8_t session) {
    (void)s;
    if (session == UDS_SESSION_DEFAULT) download.active = 0;
    return UDS_OK;
}

static void reset(uint8_t kind) {
    (void)kind;
    system_reset();
}

void __attribute__((noreturn)) programming_run(int requested, uint32_t frame_flags) {
    flc_sleep_on_irq = 0; /* the tick and CAN keep running during flash operations */
    /* below the flash controller's and the security unit's wake-ups (boot_sleep_until) */
    nvic_set_priority(SysTick_IRQn, 0x80);
    nvic_set_priority(MCAN0_INT0_IRQn, 0x80);
    systick_start(CORE_CLOCK_HZ / 1000u);
    mcan_init(MCAN0, 500000u, 2000000u);
    nvic_enable(MCAN0_INT0_IRQn);
    irq_enable();
    elc_diag_channel(&server.tp, rx_buffer, sizeof rx_buffer, tx_buffer, sizeof tx_buffer, 0);
    uds_configure(&server, services, sizeof services / sizeof services[0], dids,
                  sizeof dids / sizeof dids[0], session_changing, reset, &ticks_ms);
    uds_init(&server, requested ? UDS_SESSION_PROGRAMMING : UDS_SESSION_DEFAULT);
    if (requested) {
        server.tp.rx_flags = (uint8_t)frame_flags; /* answer as the tester asked */
        uds_respond_session(&server);
    }
    for (;;) {
        uint8_t session = server.session;
        uds_poll(&server);
        serve_watchdog();
        /* the programming session ended (S3): boot what is there, if anything is */
        if (session != UDS_SESSION_DEFAULT && server.session == UDS_SESSION_DEFAULT &&
            bootloader_has_valid_image()) {
            system_reset();
        }
        wait_for_interrupt();
    }
}
