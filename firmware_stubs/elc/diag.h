/*
 * The light controller's diagnostics over UDS (uds/uds.h) on MCAN0: identification and
 * configuration DIDs, its DTCs with ISO 14229 status bytes and a snapshot each, and the
 * hand-over to the bootloader for the programming session.
 *
 * DTCs (3 bytes, status availability mask 0x09: testFailed, confirmedDTC):
 *   0xC12100 VehicleState timeout      0xC12200 VehicleState E2E error    0xC02800 MCAN0 bus-off
 *   0xC20100 LIN steering-column switch 0xC20200 LIN left lamp            0xC20300 LIN right lamp
 * Snapshot record 0x01 of each (taken when it first fails): DID 0x0101 uptime in ms (4 bytes),
 * DID 0x0102 vehicle speed raw (2 bytes).
 */
#ifndef DIAG_H
#define DIAG_H

#include <stdint.h>
#include "mcan.h"

enum { DTC_VEHICLE_TIMEOUT, DTC_VEHICLE_E2E, DTC_BUS_OFF, DTC_LIN_SWITCH, DTC_LIN_LAMP_LEFT,
       DTC_LIN_LAMP_RIGHT, DTC_COUNT };

/* `dtc_status`: the application's status byte of each DTC, in the order above; 0x19 reads
 * them, 0x14 clears them. */
void diag_init(volatile const uint32_t *ms_ticks, volatile uint8_t *const dtc_status[DTC_COUNT]);
/* From the CAN interrupt: 1 when the frame was a diagnostic request (taken), else 0. */
int diag_frame(const can_frame_t *frame);
/* Thread mode, after every wake-up. */
void diag_poll(void);
/* 0x85: whether DTC status bytes may change now (the application asks before setting). */
int diag_dtc_setting_on(void);
/* The application: a DTC failed for the first time since cleared; its snapshot is taken. */
void diag_snapshot(uint32_t dtc, uint32_t speed_raw);
/* 0x28: whether the application's normal messages may be sent / received now. */
int diag_tx_enabled(void);
int diag_rx_enabled(void);
/* The configuration DID 0xFD10: AmbientLevel below which Auto turns the low beam on. */
extern volatile uint8_t diag_auto_on_below;

#endif
