#include "diag.h"
#include "../boot/boot.h"
#include "../uds/boot_dids.h"
#include "../uds/elc_channel.h"
#include "hal.h"

#define STATUS_AVAILABILITY 0x09u /* testFailed, confirmedDTC */
#define DID_VIN 0xF190u
#define DID_AUTO_ON_BELOW 0xFD10u
#define DID_UPTIME 0x0101u
#define DID_SPEED 0x0102u
#define VIN_SIZE 17u

static const uint32_t dtc_codes[DTC_COUNT] = {0xC12100u, 0xC12200u, 0xC02800u,
                                              0xC20100u, 0xC20200u, 0xC20300u};

static uint8_t rx_buffer[128], tx_buffer[128];
static uds_server_t server;
static volatile uint8_t *const *status_of;
static struct {
    uint8_t taken;
    uint32_t uptime_ms;
    uint16_t speed_raw;
} snapshots[DTC_COUNT];
static uint8_t vin[VIN_SIZE + 1u] = "ELCSIMULATED00001"; /* (no NUL sent) */
volatile uint8_t diag_auto_on_below = 40u; /* AmbientLevel raw (0.5 %): 20 % */

/* ---- DTCs: 0x19, 0x14 ---- */

static uint32_t put_dtc(uint8_t *out, uint32_t i) {
    out[0] = (uint8_t)(dtc_codes[i] >> 16);
    out[1] = (uint8_t)(dtc_codes[i] >> 8);
    out[2] = (uint8_t)dtc_codes[i];
    out[3] = *status_of[i] & STATUS_AVAILABILITY;
    return 4u;
}

static int dtc_index(const uint8_t *p) {
    uint32_t code = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    for (int i = 0; i < DTC_COUNT; i++) {
        if (dtc_codes[i] == code) return i;
    }
    return -1;
}

static uint8_t read_dtc_information(uds_server_t *s, const uint8_t *req, uint32_t len,
                                    uint8_t *resp, uint32_t *resp_len) {
    (void)s;
    uint8_t sub = req[1];
    resp[1] = sub;
    if (sub == 0x01u || sub == 0x02u) { /* number of / the DTCs matching a status mask */
        if (len != 3u) return NRC_INCORRECT_LENGTH;
        uint8_t mask = req[2];
        uint32_t at = 3u, count = 0;
        resp[2] = STATUS_AVAILABILITY;
        for (uint32_t i = 0; i < DTC_COUNT; i++) {
            if (!(*status_of[i] & mask & STATUS_AVAILABILITY)) continue;
            count++;
            if (sub == 0x02u) at += put_dtc(&resp[at], i);
        }
        if (sub == 0x01u) {
            resp[3] = 0x01; /* DTC format: ISO 14229-1 */
            resp[4] = (uint8_t)(count >> 8);
            resp[5] = (uint8_t)count;
            at = 6u;
        }
        *resp_len = at;
        return UDS_OK;
    }
    if (sub == 0x0Au) { /* supported DTCs */
        if (len != 2u) return NRC_INCORRECT_LENGTH;
        resp[2] = STATUS_AVAILABILITY;
        uint32_t at = 3u;
        for (uint32_t i = 0; i < DTC_COUNT; i++) at += put_dtc(&resp[at], i);
        *resp_len = at;
        return UDS_OK;
    }
    if (sub == 0x04u) { /* snapshot record by DTC number */
        if (len != 6u) return NRC_INCORRECT_LENGTH;
        int i = dtc_index(&req[2]);
        uint8_t record = req[5];
        if (i < 0 || (record != 0x01u && record != 0xFFu)) return NRC_REQUEST_OUT_OF_RANGE;
        uint32_t at = 2u + put_dtc(&resp[2], (uint32_t)i);
        if (snapshots[i].taken) {
            uint32_t up = snapshots[i].uptime_ms;
            uint8_t record_data[] = {
                0x01u, 2u,
                (uint8_t)(DID_UPTIME >> 8), (uint8_t)DID_UPTIME,
                (uint8_t)(up >> 24), (uint8_t)(up >> 16), (uint8_t)(up >> 8), (uint8_t)up,
                (uint8_t)(DID_SPEED >> 8), (uint8_t)DID_SPEED,
                (uint8_t)(snapshots[i].speed_raw >> 8), (uint8_t)snapshots[i].speed_raw,
            };
            for (uint32_t k = 0; k < sizeof record_data; k++) resp[at++] = record_data[k];
        }
        *resp_len = at;
        return UDS_OK;
    }
    return NRC_SUBFUNCTION_NOT_SUPPORTED;
}

static uint8_t clear_diagnostic_information(uds_server_t *s, const uint8_t *req, uint32_t len,
                                            uint8_t *resp, uint32_t *resp_len) {
    (void)s;
    (void)resp;
    if (len != 4u) return NRC_INCORRECT_LENGTH;
    int all = req[1] == 0xFFu && req[2] == 0xFFu && req[3] == 0xFFu;
    int one = dtc_index(&req[1]);
    if (!all && one < 0) return NRC_REQUEST_OUT_OF_RANGE;
    for (int i = 0; i < DTC_COUNT; i++) {
        if (all || i == one) {
            *status_of[i] = 0;
            snapshots[i].taken = 0;
        }
    }
    *resp_len = 1u;
    return UDS_OK;
}

static const uds_service_t services[] = {
    {0x14, UDS_IN_DEFAULT | UDS_IN_EXTENDED, 0, 4, clear_diagnostic_information},
    {0x19, UDS_IN_DEFAULT | UDS_IN_EXTENDED, 0, 2, read_dtc_information},
};

/* ---- DIDs ---- */

static uint32_t did_software_version(uint8_t *out) {
    const volatile boot_report_t *r = boot_app_report();
    uint32_t version = r ? r->version[r->booted_bank] : 0u; /* 0.0.0: not under the bootloader */
    return did_put_version(out, version);
}

static uint32_t did_vin(uint8_t *out) {
    for (uint32_t i = 0; i < VIN_SIZE; i++) out[i] = vin[i];
    return VIN_SIZE;
}

static uint8_t write_vin(const uint8_t *data) {
    for (uint32_t i = 0; i < VIN_SIZE; i++) {
        if (data[i] < 0x20u || data[i] > 0x7Eu) return NRC_REQUEST_OUT_OF_RANGE;
    }
    for (uint32_t i = 0; i < VIN_SIZE; i++) vin[i] = data[i];
    return UDS_OK;
}

static uint32_t did_auto_on_below(uint8_t *out) {
    out[0] = diag_auto_on_below;
    return 1u;
}

static uint8_t write_auto_on_below(const uint8_t *data) {
    if (data[0] == 0 || data[0] > 200u) return NRC_REQUEST_OUT_OF_RANGE; /* 0.5 %: 100 % */
    diag_auto_on_below = data[0];
    return UDS_OK;
}

static const uds_did_t dids[] = {
    BOOT_DID_ENTRIES,
    {DID_SOFTWARE_VERSION, 4, did_software_version, 0, 0, 0},
    {DID_VIN, VIN_SIZE, did_vin, write_vin, UDS_IN_EXTENDED, 0},
    {DID_AUTO_ON_BELOW, 1, did_auto_on_below, write_auto_on_below, UDS_IN_EXTENDED, 1},
};

/* ---- sessions: the programming session is the bootloader's ---- */

static uint8_t session_changing(uds_server_t *s, uint8_t session) {
    if (session != UDS_SESSION_PROGRAMMING) return UDS_OK;
    if (s->session != UDS_SESSION_EXTENDED) return NRC_SUBFUNCTION_NOT_IN_SESSION;
    if (!boot_app_report()) return NRC_CONDITIONS_NOT_CORRECT; /* no bootloader to go to */
    volatile boot_request_t *request = BOOT_REQUEST;
    request->frame_flags = s->tp.rx_flags;
    request->check = ~BOOT_REQUEST_MAGIC ^ s->tp.rx_flags;
    request->magic = BOOT_REQUEST_MAGIC;
    system_reset(); /* the bootloader answers the request */
    return NRC_CONDITIONS_NOT_CORRECT;
}

static void reset(uint8_t kind) {
    (void)kind;
    system_reset();
}

/* ---- the channel ---- */

void diag_init(volatile const uint32_t *ms_ticks, volatile uint8_t *const dtc_status[DTC_COUNT]) {
    status_of = dtc_status;
    elc_diag_channel(&server.tp, rx_buffer, sizeof rx_buffer, tx_buffer, sizeof tx_buffer, 8);
    uds_configure(&server, services, sizeof services / sizeof services[0], dids,
                  sizeof dids / sizeof dids[0], session_changing, reset, ms_ticks);
    uds_init(&server, UDS_SESSION_DEFAULT);
}

int diag_frame(const can_frame_t *frame) { return isotp_queue_frame(&server.tp, frame); }

void diag_poll(void) { uds_poll(&server); }

int diag_dtc_setting_on(void) { return !server.dtc_setting_off; }

void diag_snapshot(uint32_t dtc, uint32_t speed_raw) {
    if (dtc >= DTC_COUNT || snapshots[dtc].taken) return;
    snapshots[dtc].taken = 1;
    snapshots[dtc].uptime_ms = *server.ms;
    snapshots[dtc].speed_raw = (uint16_t)speed_raw;
}

int diag_tx_enabled(void) { return !(server.tx_comm_disabled & 1u); }
int diag_rx_enabled(void) { return !(server.rx_comm_disabled & 1u); }
