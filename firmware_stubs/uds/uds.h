/*
 * A UDS (ISO 14229-1) server over the ISO-TP channel of isotp.h, shared by the bootloader
 * (reprogramming) and the light controller (diagnostics).
 *
 * The core answers 0x10 sessions (with the S3 timer), 0x3E tester present, 0x11 ECU reset,
 * 0x27 security access (seed from the security unit's RNG, key = the first bytes of the
 * AES-CMAC of the seed with the secret in key slot UDS_SA_KEY_SLOT; 3 wrong keys, then a
 * 10 s delay), 0x28 communication control and 0x85 DTC setting, 0x22 / 0x2E through a DID
 * table; the image adds its own services in a table. It checks, in the standard's order:
 * service supported (0x11), in the session (0x7F), length (0x13), sub-function (0x12, 0x7E),
 * security (0x33); suppress-positive-response, and the NRCs a functional request must not
 * answer. A long operation calls `uds_keepalive`, which sends 0x78 response-pending.
 */
#ifndef UDS_H
#define UDS_H

#include <stdint.h>
#include "isotp.h"

#define UDS_SESSION_DEFAULT     0x01u
#define UDS_SESSION_PROGRAMMING 0x02u
#define UDS_SESSION_EXTENDED    0x03u
#define UDS_IN_DEFAULT     (1u << UDS_SESSION_DEFAULT)
#define UDS_IN_PROGRAMMING (1u << UDS_SESSION_PROGRAMMING)
#define UDS_IN_EXTENDED    (1u << UDS_SESSION_EXTENDED)
#define UDS_IN_NON_DEFAULT (UDS_IN_PROGRAMMING | UDS_IN_EXTENDED)
#define UDS_IN_ANY         (UDS_IN_DEFAULT | UDS_IN_NON_DEFAULT)

#define UDS_S3_MS 5000u
#define UDS_P2_MS 50u         /* P2server, announced in the session response */
#define UDS_P2_STAR_MS 5000u  /* P2*server */
#define UDS_PENDING_EVERY_MS 2000u
#define UDS_SA_KEY_SLOT 1u
#define UDS_SEED_SIZE 8u
#define UDS_SA_ATTEMPTS 3u
#define UDS_SA_DELAY_MS 10000u

/* negative response codes */
#define NRC_GENERAL_REJECT              0x10u
#define NRC_SERVICE_NOT_SUPPORTED       0x11u
#define NRC_SUBFUNCTION_NOT_SUPPORTED   0x12u
#define NRC_INCORRECT_LENGTH            0x13u
#define NRC_CONDITIONS_NOT_CORRECT      0x22u
#define NRC_REQUEST_SEQUENCE_ERROR      0x24u
#define NRC_REQUEST_OUT_OF_RANGE        0x31u
#define NRC_SECURITY_ACCESS_DENIED      0x33u
#define NRC_INVALID_KEY                 0x35u
#define NRC_EXCEEDED_ATTEMPTS           0x36u
#define NRC_DELAY_NOT_EXPIRED           0x37u
#define NRC_UPLOAD_DOWNLOAD_NOT_ACCEPTED 0x70u
#define NRC_TRANSFER_DATA_SUSPENDED     0x71u
#define NRC_PROGRAMMING_FAILURE         0x72u
#define NRC_WRONG_BLOCK_SEQUENCE        0x73u
#define NRC_RESPONSE_PENDING            0x78u
#define NRC_SUBFUNCTION_NOT_IN_SESSION  0x7Eu
#define NRC_SERVICE_NOT_IN_SESSION      0x7Fu

#define UDS_OK 0u /* a handler's positive outcome */

typedef struct uds_server uds_server_t;

/* A service handler: the request (SID included), the response to fill from its SID + 0x40
 * on (resp[0] is set by the caller), its length to set. Returns UDS_OK or an NRC. */
typedef uint8_t (*uds_handler_t)(uds_server_t *s, const uint8_t *req, uint32_t len,
                                 uint8_t *resp, uint32_t *resp_len);

typedef struct {
    uint8_t sid;
    uint8_t sessions;    /* UDS_IN_* where it is allowed */
    uint8_t secured;     /* needs security access */
    uint8_t min_length;  /* SID included */
    uds_handler_t handler;
} uds_service_t;

/* A data identifier: read fills out (returns its length), write takes exactly `size`
 * bytes and returns UDS_OK or an NRC; write NULL: read only. */
typedef struct {
    uint16_t id;
    uint8_t size;
    uint32_t (*read)(uint8_t *out);
    uint8_t (*write)(const uint8_t *data);
    uint8_t write_sessions;
    uint8_t write_secured;
} uds_did_t;

struct uds_server {
    isotp_t tp;
    const uds_service_t *services;
    uint32_t service_count;
    const uds_did_t *dids;
    uint32_t did_count;
    /* the image's hooks: a session change it may refuse (an NRC) or act on, and a reset */
    uint8_t (*session_changing)(uds_server_t *s, uint8_t session);
    void (*reset)(uint8_t kind);
    volatile const uint32_t *ms; /* the millisecond tick */

    uint8_t session, unlocked, seed_valid, failed_keys, rx_comm_disabled, tx_comm_disabled;
    uint8_t dtc_setting_off;
    uint8_t seed[UDS_SEED_SIZE];
    uint32_t s3_deadline_ms, delay_until_ms, pending_at_ms;
    uint8_t handling_sid, reset_kind; /* reset_kind: an ECU reset after the response */
};

/* The image's services and DIDs, its hooks and its millisecond tick. */
void uds_configure(uds_server_t *s, const uds_service_t *services, uint32_t service_count,
                   const uds_did_t *dids, uint32_t did_count,
                   uint8_t (*session_changing)(uds_server_t *s, uint8_t session),
                   void (*reset)(uint8_t kind), volatile const uint32_t *ms);
/* Call once the channel (tp) is set and the server configured. */
void uds_init(uds_server_t *s, uint8_t session);
/* Thread mode, on every wake-up: receive, answer, S3. */
void uds_poll(uds_server_t *s);
/* During a long operation: 0x78 when a response is due; serves the channel meanwhile. */
void uds_keepalive(uds_server_t *s);
/* Answer a request handled before a reset (the bootloader, for the application's 0x10 02). */
void uds_respond_session(uds_server_t *s);
uint32_t uds_now(const uds_server_t *s);

#endif
