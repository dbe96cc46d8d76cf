/*
 * The application's side of the A/B boot: read the boot report, service the watchdog the
 * bootloader started, and confirm a trial image after its start-up checks by appending a
 * confirmed record. An application that was not booted by the bootloader (not linked for a
 * bank, or no valid report) does nothing here but service a watchdog that runs.
 */
#include "boot.h"

#define WDG_KEY_SERVICE_1 0xA5A5u
#define WDG_KEY_SERVICE_2 0x5A5Au
#define WDG_SERVICE_PERIOD_MS 50u /* the bootloader's timeout is 200 ms */
#define HEADER_COUNTER_OFFSET 0x0Cu

enum { CONFIRM_NONE = 0, CONFIRM_DONE = 1, CONFIRM_NOT_NEEDED = 2, CONFIRM_GAVE_UP = 3,
       CONFIRM_FAILED = 0xFF };

extern const uint32_t vector_table[]; /* startup.c */

static const volatile boot_report_t *report;
static uint8_t own_bank = BOOT_BANK_NONE;
static uint8_t wdg_running, finished;
static uint32_t last_service_ms;
/* What became of the confirmation (CONFIRM_*), for tests and diagnostics. */
volatile uint8_t boot_app_confirm_status;

static uint8_t bank_of_vector_table(void) {
    uint32_t vt = (uint32_t)vector_table;
    for (uint32_t b = 0; b < BOOT_BANKS; b++) {
        if (vt == boot_bank_base(b) + BOOT_HEADER_SIZE) return (uint8_t)b;
    }
    return BOOT_BANK_NONE;
}

void boot_app_init(void) {
    uint8_t bank = bank_of_vector_table();
    const volatile boot_report_t *r = BOOT_REPORT;
    /* Only an application linked for a bank reads the report: below 0x2000_0100 the others
     * keep their own data. */
    if (bank != BOOT_BANK_NONE && r->magic == BOOT_REPORT_MAGIC &&
        r->check == ~BOOT_REPORT_MAGIC && r->booted_bank == bank) {
        report = r;
        own_bank = bank;
        probe_enable();
    } else {
        finished = 1;
    }
    wdg_running = (WDG->STATUS & WDG_STATUS_RUNNING_Msk) != 0;
}

int boot_app_active(void) { return report != 0 || wdg_running; }

const volatile boot_report_t *boot_app_report(void) { return report; }

static int confirm(void) {
    uint32_t counter;
    if (probe_read32(boot_bank_base(own_bank) + HEADER_COUNTER_OFFSET, &counter) != 0) return -1;
    boot_state_t state;
    boot_state_read(&state);
    boot_record_t rec;
    if (state.found) {
        rec = state.newest;
    } else {
        for (uint32_t i = 0; i < BOOT_TAG_SIZE; i++) rec.tag[i] = 0xFFu;
        rec.counter = 0;
    }
    rec.confirmed = own_bank;
    rec.trial = BOOT_BANK_NONE;
    rec.attempts = 0;
    if (counter > rec.counter) rec.counter = counter;
    return boot_state_append(&state, &rec);
}

void boot_app_poll(uint32_t now_ms, int checks) {
    if (wdg_running && boot_app_confirm_status != CONFIRM_GAVE_UP &&
        now_ms - last_service_ms >= WDG_SERVICE_PERIOD_MS) {
        last_service_ms = now_ms;
        WDG->KEY = WDG_KEY_SERVICE_1;
        WDG->KEY = WDG_KEY_SERVICE_2;
    }
    if (finished || checks == BOOT_CHECKS_PENDING) return;
    finished = 1;
    int trial = report->state == BOOT_STATE_TRIAL;
    int factory = report->state == BOOT_STATE_CONFIRMED && report->record_seq == 0;
    if (!trial && !factory) {
        boot_app_confirm_status = CONFIRM_NOT_NEEDED;
    } else if (checks == BOOT_CHECKS_FAILED) {
        /* A trial image that failed its checks lets the watchdog reset it: a failed attempt. */
        boot_app_confirm_status = trial ? CONFIRM_GAVE_UP : CONFIRM_NOT_NEEDED;
    } else {
        boot_app_confirm_status = confirm() == 0 ? CONFIRM_DONE : CONFIRM_FAILED;
    }
}
