#include "uds.h"
#include "../boot/boot.h"

#define SPR 0x80u /* suppressPosRspMsgIndicationBit */

uint32_t uds_now(const uds_server_t *s) { return *s->ms; }

void uds_configure(uds_server_t *s, const uds_service_t *services, uint32_t service_count,
                   const uds_did_t *dids, uint32_t did_count,
                   uint8_t (*session_changing)(uds_server_t *s, uint8_t session),
                   void (*reset)(uint8_t kind), volatile const uint32_t *ms) {
    s->services = services;
    s->service_count = service_count;
    s->dids = dids;
    s->did_count = did_count;
    s->session_changing = session_changing;
    s->reset = reset;
    s->ms = ms;
}

void uds_init(uds_server_t *s, uint8_t session) {
    isotp_init(&s->tp);
    s->session = session;
    s->unlocked = s->seed_valid = s->failed_keys = 0;
    s->rx_comm_disabled = s->tx_comm_disabled = s->dtc_setting_off = 0;
    s->reset_kind = 0;
    s->s3_deadline_ms = uds_now(s) + UDS_S3_MS;
    s->delay_until_ms = uds_now(s);
}

static void negative(uds_server_t *s, uint8_t sid, uint8_t nrc) {
    uint8_t d[3] = {0x7Fu, sid, nrc};
    isotp_send_single(&s->tp, d, 3u);
}

/* Back to the default session: everything a non-default session enabled ends. */
static void enter_default(uds_server_t *s) {
    s->session = UDS_SESSION_DEFAULT;
    s->unlocked = s->seed_valid = 0;
    s->rx_comm_disabled = s->tx_comm_disabled = s->dtc_setting_off = 0;
}

/* ---- the core services ---- */

static uint8_t session_control(uds_server_t *s, const uint8_t *req, uint32_t len,
                               uint8_t *resp, uint32_t *resp_len) {
    uint8_t session = req[1] & ~SPR;
    if (len != 2u) return NRC_INCORRECT_LENGTH;
    if (session < UDS_SESSION_DEFAULT || session > UDS_SESSION_EXTENDED) {
        return NRC_SUBFUNCTION_NOT_SUPPORTED;
    }
    if (s->session_changing) {
        uint8_t nrc = s->session_changing(s, session);
        if (nrc != UDS_OK) return nrc;
    }
    if (session == UDS_SESSION_DEFAULT || session != s->session) enter_default(s);
    s->session = session;
    resp[1] = session;
    resp[2] = (uint8_t)(UDS_P2_MS >> 8);
    resp[3] = (uint8_t)UDS_P2_MS;
    resp[4] = (uint8_t)((UDS_P2_STAR_MS / 10u) >> 8);
    resp[5] = (uint8_t)(UDS_P2_STAR_MS / 10u);
    *resp_len = 6u;
    return UDS_OK;
}

static uint8_t tester_present(uds_server_t *s, const uint8_t *req, uint32_t len,
                              uint8_t *resp, uint32_t *resp_len) {
    (void)s;
    if (len != 2u) return NRC_INCORRECT_LENGTH;
    if ((req[1] & ~SPR) != 0) return NRC_SUBFUNCTION_NOT_SUPPORTED;
    resp[1] = 0;
    *resp_len = 2u;
    return UDS_OK;
}

static uint8_t ecu_reset(uds_server_t *s, const uint8_t *req, uint32_t len, uint8_t *resp,
                         uint32_t *resp_len) {
    uint8_t kind = req[1] & ~SPR;
    if (len != 2u) return NRC_INCORRECT_LENGTH;
    if (kind != 0x01u && kind != 0x03u) return NRC_SUBFUNCTION_NOT_SUPPORTED; /* hard, soft */
    s->reset_kind = kind; /* after the response has left */
    resp[1] = kind;
    *resp_len = 2u;
    return UDS_OK;
}

/* The expected key: the first bytes of AES-CMAC(secret in UDS_SA_KEY_SLOT, seed). */
static int expected_key(const uds_server_t *s, uint8_t key[UDS_SEED_SIZE]) {
    uint8_t mac[16];
    if (sec_cmac(UDS_SA_KEY_SLOT, (uint32_t)s->seed, UDS_SEED_SIZE, mac) != 0) return -1;
    for (uint32_t i = 0; i < UDS_SEED_SIZE; i++) key[i] = mac[i];
    return 0;
}

static uint8_t security_access(uds_server_t *s, const uint8_t *req, uint32_t len,
                               uint8_t *resp, uint32_t *resp_len) {
    uint8_t sub = req[1] & ~SPR;
    if (sub != 0x01u && sub != 0x02u) return NRC_SUBFUNCTION_NOT_SUPPORTED;
    resp[1] = sub;
    if (sub == 0x01u) { /* request seed */
        if (len != 2u) return NRC_INCORRECT_LENGTH;
        if ((int32_t)(uds_now(s) - s->delay_until_ms) < 0) return NRC_DELAY_NOT_EXPIRED;
        for (uint32_t i = 0; i < UDS_SEED_SIZE; i += 4u) {
            uint32_t r = s->unlocked ? 0u : SEC->RNG; /* unlocked: the seed is all zeros */
            for (uint32_t b = 0; b < 4u; b++) s->seed[i + b] = (uint8_t)(r >> (8u * b));
        }
        s->seed_valid = !s->unlocked;
        for (uint32_t i = 0; i < UDS_SEED_SIZE; i++) resp[2 + i] = s->seed[i];
        *resp_len = 2u + UDS_SEED_SIZE;
        return UDS_OK;
    }
    if (len != 2u + UDS_SEED_SIZE) return NRC_INCORRECT_LENGTH;
    if (!s->seed_valid) return NRC_REQUEST_SEQUENCE_ERROR;
    s->seed_valid = 0;
    uint8_t key[UDS_SEED_SIZE], diff = 0;
    if (expected_key(s, key) != 0) return NRC_CONDITIONS_NOT_CORRECT; /* no secret */
    for (uint32_t i = 0; i < UDS_SEED_SIZE; i++) diff |= (uint8_t)(key[i] ^ req[2 + i]);
    if (diff != 0) {
        if (++s->failed_keys >= UDS_SA_ATTEMPTS) {
            s->failed_keys = 0;
            s->delay_until_ms = uds_now(s) + UDS_SA_DELAY_MS;
            return NRC_EXCEEDED_ATTEMPTS;
        }
        return NRC_INVALID_KEY;
    }
    s->failed_keys = 0;
    s->unlocked = 1;
    *resp_len = 2u;
    return UDS_OK;
}

static uint8_t communication_control(uds_server_t *s, const uint8_t *req, uint32_t len,
                                     uint8_t *resp, uint32_t *resp_len) {
    uint8_t control = req[1] & ~SPR;
    if (control > 0x03u) return NRC_SUBFUNCTION_NOT_SUPPORTED;
    if (len != 3u) return NRC_INCORRECT_LENGTH;
    uint8_t type = req[2] & 0x03u;
    if (type == 0 || (req[2] & 0xF0u) != 0) return NRC_REQUEST_OUT_OF_RANGE;
    /* 0 enable RX and TX, 1 enable RX disable TX, 2 disable RX enable TX, 3 disable both */
    s->rx_comm_disabled = (uint8_t)((control & 2u) ? type : 0u);
    s->tx_comm_disabled = (uint8_t)((control & 1u) ? type : 0u);
    resp[1] = control;
    *resp_len = 2u;
    return UDS_OK;
}

static uint8_t control_dtc_setting(uds_server_t *s, const uint8_t *req, uint32_t len,
                                   uint8_t *resp, uint32_t *resp_len) {
    uint8_t setting = req[1] & ~SPR;
    if (setting != 0x01u && setting != 0x02u) return NRC_SUBFUNCTION_NOT_SUPPORTED;
    if (len != 2u) return NRC_INCORRECT_LENGTH;
    s->dtc_setting_off = setting == 0x02u;
    resp[1] = setting;
    *resp_len = 2u;
    return UDS_OK;
}

static const uds_did_t *find_did(const uds_server_t *s, uint16_t id) {
    for (uint32_t i = 0; i < s->did_count; i++) {
        if (s->dids[i].id == id) return &s->dids[i];
    }
    return 0;
}

static uint8_t read_data(uds_server_t *s, const uint8_t *req, uint32_t len, uint8_t *resp,
                         uint32_t *resp_len) {
    if (len < 3u || (len - 1u) % 2u != 0) return NRC_INCORRECT_LENGTH;
    uint32_t at = 1u;
    for (uint32_t i = 1; i < len; i += 2u) {
        const uds_did_t *d = find_did(s, (uint16_t)(req[i] << 8 | req[i + 1]));
        if (!d) return NRC_REQUEST_OUT_OF_RANGE;
        if (at + 2u + d->size > s->tp.tx_size) return NRC_INCORRECT_LENGTH;
        resp[at] = req[i];
        resp[at + 1] = req[i + 1];
        at += 2u + d->read(&resp[at + 2]);
    }
    *resp_len = at;
    return UDS_OK;
}

static uint8_t write_data(uds_server_t *s, const uint8_t *req, uint32_t len, uint8_t *resp,
                          uint32_t *resp_len) {
    const uds_did_t *d = find_did(s, (uint16_t)(req[1] << 8 | req[2]));
    if (!d || !d->write || !(d->write_sessions & (1u << s->session))) {
        return NRC_REQUEST_OUT_OF_RANGE;
    }
    if (len != 3u + d->size) return NRC_INCORRECT_LENGTH;
    if (d->write_secured && !s->unlocked) return NRC_SECURITY_ACCESS_DENIED;
    uint8_t nrc = d->write(&req[3]);
    if (nrc != UDS_OK) return nrc;
    resp[1] = req[1];
    resp[2] = req[2];
    *resp_len = 3u;
    return UDS_OK;
}

static const uds_service_t core_services[] = {
    {0x10, UDS_IN_ANY, 0, 2, session_control},
    {0x11, UDS_IN_ANY, 0, 2, ecu_reset},
    {0x22, UDS_IN_ANY, 0, 3, read_data},
    {0x27, UDS_IN_NON_DEFAULT, 0, 2, security_access},
    {0x28, UDS_IN_NON_DEFAULT, 0, 3, communication_control},
    {0x2E, UDS_IN_NON_DEFAULT, 0, 4, write_data},
    {0x3E, UDS_IN_ANY, 0, 2, tester_present},
    {0x85, UDS_IN_NON_DEFAULT, 0, 2, control_dtc_setting},
};

/* The services with a sub-function (its bit 7 suppresses the positive response). */
static int has_subfunction(uint8_t sid) {
    return sid == 0x10u || sid == 0x11u || sid == 0x27u || sid == 0x28u || sid == 0x3Eu ||
           sid == 0x85u || sid == 0x31u;
}

static const uds_service_t *find_service(const uds_server_t *s, uint8_t sid) {
    for (uint32_t i = 0; i < s->service_count; i++) { /* the image's first: it may override */
        if (s->services[i].sid == sid) return &s->services[i];
    }
    for (uint32_t i = 0; i < sizeof core_services / sizeof core_services[0]; i++) {
        if (core_services[i].sid == sid) return &core_services[i];
    }
    return 0;
}

/* A functional request gets no answer with these codes (ISO 14229-1, 7.5). */
static int suppressed_functionally(uint8_t nrc) {
    return nrc == NRC_SERVICE_NOT_SUPPORTED || nrc == NRC_SUBFUNCTION_NOT_SUPPORTED ||
           nrc == NRC_REQUEST_OUT_OF_RANGE || nrc == NRC_SUBFUNCTION_NOT_IN_SESSION ||
           nrc == NRC_SERVICE_NOT_IN_SESSION;
}

static void handle(uds_server_t *s) {
    isotp_t *tp = &s->tp;
    const uint8_t *req = tp->rx_buffer;
    uint32_t len = tp->rx_length;
    uint8_t sid = req[0], functional = tp->request_functional;
    uint8_t *resp = tp->tx_buffer;
    tp->request_ready = 0;
    if (s->session != UDS_SESSION_DEFAULT) s->s3_deadline_ms = uds_now(s) + UDS_S3_MS;
    const uds_service_t *service = find_service(s, sid);
    uint8_t nrc;
    uint32_t resp_len = 1u;
    int spr = has_subfunction(sid) && len >= 2u && (req[1] & SPR) != 0;
    if (!service) {
        nrc = NRC_SERVICE_NOT_SUPPORTED;
    } else if (!(service->sessions & (1u << s->session))) {
        nrc = NRC_SERVICE_NOT_IN_SESSION;
    } else if (len < service->min_length) {
        nrc = NRC_INCORRECT_LENGTH;
    } else if (service->secured && !s->unlocked) {
        nrc = NRC_SECURITY_ACCESS_DENIED;
    } else {
        s->handling_sid = sid;
        s->pending_at_ms = uds_now(s) + UDS_P2_MS - 10u;
        resp[0] = (uint8_t)(sid + 0x40u);
        nrc = service->handler(s, req, len, resp, &resp_len);
        s->handling_sid = 0;
    }
    if (nrc != UDS_OK) {
        if (!(functional && suppressed_functionally(nrc))) negative(s, sid, nrc);
        s->reset_kind = 0;
    } else if (!spr) {
        isotp_send(tp, resp_len, uds_now(s));
    }
}

void uds_keepalive(uds_server_t *s) {
    isotp_poll(&s->tp, uds_now(s));
    if (s->handling_sid && (int32_t)(uds_now(s) - s->pending_at_ms) >= 0) {
        negative(s, s->handling_sid, NRC_RESPONSE_PENDING);
        s->pending_at_ms = uds_now(s) + UDS_PENDING_EVERY_MS;
    }
}

void uds_respond_session(uds_server_t *s) {
    uint8_t *resp = s->tp.tx_buffer;
    resp[0] = 0x50u;
    resp[1] = s->session;
    resp[2] = (uint8_t)(UDS_P2_MS >> 8);
    resp[3] = (uint8_t)UDS_P2_MS;
    resp[4] = (uint8_t)((UDS_P2_STAR_MS / 10u) >> 8);
    resp[5] = (uint8_t)(UDS_P2_STAR_MS / 10u);
    isotp_send(&s->tp, 6u, uds_now(s));
}

void uds_poll(uds_server_t *s) {
    uint32_t now = uds_now(s);
    isotp_poll(&s->tp, now);
    if (s->tp.request_ready) handle(s);
    if (s->session != UDS_SESSION_DEFAULT && !s->tp.rx_active &&
        (int32_t)(now - s->s3_deadline_ms) > 0) { /* S3: no request for 5 s */
        if (s->session_changing) s->session_changing(s, UDS_SESSION_DEFAULT);
        enter_default(s);
    }
    /* an ECU reset once its response has left (TX buffers empty) */
    if (s->reset_kind && !isotp_busy(&s->tp) && s->tp.can->TXBRP == 0 && s->reset) {
        s->reset(s->reset_kind);
    }
}
