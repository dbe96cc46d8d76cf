/*
 * Exterior-light controller (ELC) on the ASILB-M4 board; its messages are dbc/exterior_light.dbc.
 *
 * Inputs (MCAN0, RX FIFO 0, handled in the RX interrupt, which drains the FIFO):
 *   VehicleState 0x100: Speed, BrakePedal, TurnRequest     LightCommand 0x120: HeadlightMode,
 *   FogLight, AmbientLevel
 * Outputs: GPIOA lamps (0 brake, 1 turn left, 2 turn right, 3 low beam, 4 high beam, 5 fog).
 * Transmits: LightStatus 0x300 (CAN FD, every 10 ms and on change), LightDiag 0x310 (CAN FD,
 * every 100 ms, pages 0, 1 and 2 (DTCs) in turn), ElcNetworkManagement 0x18FF0010 (1000 ms).
 * Turn indicators blink at 1.5 Hz (333 ms on, 333 ms off); hazard blinks both.
 *
 * LIN (USART2, the light cluster of dbc/exterior_light.ldf; lin_master.c runs its schedule):
 * the steering-column switch's state and each slave's LIN status and DTC go onto CAN as
 * LinGateway 0x302 (every 100 ms and on change); the lamp slaves get the lamp outputs in
 * LampCommand. When no VehicleState has been heard for 1 s (the vehicle is off) the cluster
 * is sent to sleep; the next VehicleState wakes it (wake-up pulse, schedule 100 ms later), as
 * does a slave's wake-up, which keeps it awake for 1 s.
 *
 * Safety (VehicleState is the safety-relevant input): E2E profile 1 (data ID 0x100, counter at
 * bit 48, CRC in byte 7) with the E2E state machine, and a 50 ms timeout once it has been
 * received. When its state machine is INVALID or it times out, the controller uses
 * substitute values and so reaches its safe state - brake lamps on, hazard blinking - records
 * a DTC, and says so in LightStatus.SafeState; the fault-tolerant time interval is 100 ms. It
 * leaves the safe state only when the state machine is VALID again (3 good frames in a row)
 * and the input is fresh.
 *
 * Under the A/B bootloader (targets elc_a and elc_b, linked for a bank): the controller services
 * the watchdog the bootloader started, and a trial image confirms itself once its start-up
 * checks pass (MCAN0 on the bus and 100 ms of its tick): ../boot/boot_app.c. Without the
 * bootloader nothing of this runs.
 *
 * The signals are packed and unpacked by exterior_light.c/.h, which the build generates from
 * the DBC with cantools (raw values: a struct field holds what is on the bus).
 */
#include "../boot/boot.h"
#include "diag.h"
#include "e2e.h"
#include "exterior_light.h"
#include "hal.h"
#include "lin_master.h"
#include "mcan.h"

/* The bus the controller is built for (the `elc_1m` target builds it for 1 Mbit/s / 4 Mbit/s). */
#ifndef ELC_NOMINAL_BITRATE
#define ELC_NOMINAL_BITRATE 500000u
#endif
#ifndef ELC_DATA_BITRATE
#define ELC_DATA_BITRATE 2000000u
#endif

enum { PIN_BRAKE, PIN_TURN_LEFT, PIN_TURN_RIGHT, PIN_LOW_BEAM, PIN_HIGH_BEAM, PIN_FOG };
enum { TURN_OFF, TURN_LEFT, TURN_RIGHT, TURN_HAZARD };
enum { HEAD_OFF, HEAD_LOW, HEAD_HIGH, HEAD_AUTO };

#define BLINK_HALF_PERIOD_MS 333u
#define VEHICLE_STATE_TIMEOUT_MS 50u /* 5 cycles of 10 ms */
/* DTC status byte (ISO 14229 bits): testFailed, and confirmedDTC (stays set). */
#define DTC_TEST_FAILED 0x01u
#define DTC_CONFIRMED   0x08u
#define SUPPLY_VOLTAGE_RAW 135u /* LightStatus.SupplyVoltage (0.1 V): 13.5 V */
#define NM_SOURCE_NODE 0x10u
#define LIN_SLEEP_AFTER_MS 1000u /* VehicleState silent this long: the cluster sleeps */
#define STARTUP_CHECK_MS 100u
#define SELFTEST_PASS 0x50415353u /* "PASS" */

/* The start-up self-test's verdict as built; a test patches it in a signed image to make an
 * image that fails its checks (and so never confirms itself). */
const volatile uint32_t elc_selftest = SELFTEST_PASS;

volatile uint32_t ms_ticks;
volatile uint32_t rx_frames;
volatile uint32_t rx_overruns;
volatile uint32_t tx_dropped;
volatile uint32_t vehicle_speed_raw; /* 0.01 km/h */

static volatile uint8_t brake_pressed, turn_request, headlight_mode, fog_on, ambient_raw;
static uint8_t blink_on, status_counter, diag_page;
/* The LightStatus signals last driven and reported (lamps, headlight state, safe state). */
static struct exterior_light_light_status_t last_status;
static uint32_t blink_ms;

/* VehicleState protection and monitoring. */
static e2e_receiver_t vehicle_e2e = {
    .data_id = 0x100u, .crc_byte = 7u, .counter_bit = 48u, .max_delta_counter = 1u,
    .min_ok_init = 1u, .max_error_init = 0u, .min_ok_valid = 1u, .max_error_valid = 1u,
    .min_ok_invalid = 3u, .max_error_invalid = 0u,
};
static uint8_t vehicle_seen;          /* timeout monitoring starts with the first good frame */
static uint32_t vehicle_fresh_ms;     /* ms_ticks of the last good frame */
volatile uint8_t safe_state;          /* substitute values in use */
volatile uint8_t dtc_vehicle_timeout; /* DTC status bytes */
volatile uint8_t dtc_vehicle_e2e;
volatile uint32_t e2e_errors;         /* VehicleState frames that failed the check */
volatile uint32_t bus_off_count;      /* bus-off events; each restarts the controller */
volatile uint8_t dtc_bus_off;

/* The LIN cluster. */
static volatile uint32_t vehicle_heard_ms; /* the last VehicleState frame, good or not */
static uint32_t lin_woke_ms;               /* when the cluster last woke up */
static uint8_t lin_was_asleep, gateway_counter;
volatile uint8_t dtc_lin[3];               /* DTC status bytes: switch, left lamp, right lamp */
static struct exterior_light_lin_gateway_t last_gateway;

static void send(uint32_t id, uint8_t flags, const uint8_t *data, uint8_t len) {
    if (!diag_tx_enabled()) return; /* 0x28 communication control */
    can_frame_t f = {.id = id, .len = len, .flags = flags};
    for (uint8_t i = 0; i < len; i++) f.data[i] = data[i];
    if (mcan_send(MCAN0, &f) != 0) tx_dropped++;
}

static uint8_t headlight_state(void) {
    if (headlight_mode == HEAD_AUTO) return ambient_raw < diag_auto_on_below ? HEAD_LOW : HEAD_OFF;
    return headlight_mode;
}

static struct exterior_light_light_status_t current_status(void) {
    struct exterior_light_light_status_t s = {0};
    if (blink_on) {
        s.turn_left = turn_request == TURN_LEFT || turn_request == TURN_HAZARD;
        s.turn_right = turn_request == TURN_RIGHT || turn_request == TURN_HAZARD;
    }
    s.brake_lamp = brake_pressed;
    s.hazard = turn_request == TURN_HAZARD;
    s.headlight_state = headlight_state();
    s.safe_state = safe_state;
    return s;
}

static int status_changed(const struct exterior_light_light_status_t *a,
                          const struct exterior_light_light_status_t *b) {
    return a->brake_lamp != b->brake_lamp || a->turn_left != b->turn_left ||
           a->turn_right != b->turn_right || a->hazard != b->hazard ||
           a->headlight_state != b->headlight_state || a->safe_state != b->safe_state;
}

static void set_turn_request(uint8_t turn) {
    if (turn != turn_request) { /* a new request starts with the lamp on */
        turn_request = turn;
        blink_on = turn != TURN_OFF;
        blink_ms = 0;
    }
}

/* Each DTC's status byte, in diag.h's order (0x19 reads them, 0x14 clears them). */
static volatile uint8_t *const dtc_status[DTC_COUNT] = {
    &dtc_vehicle_timeout, &dtc_vehicle_e2e, &dtc_bus_off, &dtc_lin[0], &dtc_lin[1], &dtc_lin[2],
};

static void set_dtc(uint32_t dtc, int failed) {
    volatile uint8_t *status = dtc_status[dtc];
    if (!diag_dtc_setting_on()) return; /* 0x85: frozen */
    if (failed && !(*status & DTC_CONFIRMED)) diag_snapshot(dtc, vehicle_speed_raw);
    *status = (uint8_t)(failed ? *status | DTC_TEST_FAILED | DTC_CONFIRMED
                               : *status & ~DTC_TEST_FAILED);
}

/* Enter or leave the safe state from the E2E state and the timeout (called on every RX and
 * every tick). The safe state substitutes brake pressed and hazard for the vehicle's values. */
static void supervise(void) {
    int timed_out = vehicle_seen && ms_ticks - vehicle_fresh_ms > VEHICLE_STATE_TIMEOUT_MS;
    int invalid = vehicle_e2e.state == E2E_INVALID;
    set_dtc(DTC_VEHICLE_TIMEOUT, timed_out);
    set_dtc(DTC_VEHICLE_E2E, invalid);
    safe_state = (uint8_t)(timed_out || invalid);
    if (safe_state) {
        brake_pressed = 1u;
        set_turn_request(TURN_HAZARD);
    }
}

static void vehicle_state_received(const can_frame_t *f) {
    vehicle_heard_ms = ms_ticks;
    e2e_status_t status = e2e_receive(&vehicle_e2e, f->data, f->len);
    if (status == E2E_ERROR) e2e_errors++;
    int fresh = status == E2E_OK || status == E2E_WRONG_SEQUENCE;
    struct exterior_light_vehicle_state_t msg;
    /* A frame that passed the E2E check has all 8 bytes, so it unpacks. */
    if (fresh && vehicle_e2e.state == E2E_VALID &&
        exterior_light_vehicle_state_unpack(&msg, f->data, f->len) == 0) {
        vehicle_seen = 1u;
        vehicle_fresh_ms = ms_ticks;
        vehicle_speed_raw = msg.speed;
        brake_pressed = msg.brake_pedal;
        set_turn_request(msg.turn_request);
    }
    supervise();
}

/* All lamp outputs in one port write, refreshed on every update (not only on change). */
static void drive_lamps(const struct exterior_light_light_status_t *status) {
    uint32_t levels = (uint32_t)(status->brake_lamp != 0) << PIN_BRAKE |
                      (uint32_t)(status->turn_left != 0) << PIN_TURN_LEFT |
                      (uint32_t)(status->turn_right != 0) << PIN_TURN_RIGHT |
                      (uint32_t)(headlight_state() == HEAD_LOW) << PIN_LOW_BEAM |
                      (uint32_t)(headlight_state() == HEAD_HIGH) << PIN_HIGH_BEAM |
                      (uint32_t)(fog_on != 0) << PIN_FOG;
    uint32_t mask = 1u << PIN_BRAKE | 1u << PIN_TURN_LEFT | 1u << PIN_TURN_RIGHT |
                    1u << PIN_LOW_BEAM | 1u << PIN_HIGH_BEAM | 1u << PIN_FOG;
    gpio_write_masked(GPIOA, mask, levels);
}

static void send_status(void) {
    struct exterior_light_light_status_t msg = last_status;
    msg.lamp_faults = 0;
    msg.supply_voltage = SUPPLY_VOLTAGE_RAW;
    msg.light_status_counter = status_counter;
    status_counter = (uint8_t)((status_counter + 1u) % 15u);
    uint8_t d[EXTERIOR_LIGHT_LIGHT_STATUS_LENGTH];
    exterior_light_light_status_pack(d, &msg, sizeof d);
    send(EXTERIOR_LIGHT_LIGHT_STATUS_FRAME_ID, CAN_FLAG_FD | CAN_FLAG_BRS, d, sizeof d);
}

/* Recompute the outputs; a change is driven and reported at once. */
static void update(void) {
    struct exterior_light_light_status_t status = current_status();
    drive_lamps(&status);
    if (status_changed(&status, &last_status)) {
        last_status = status;
        send_status();
    }
}

static void send_diag(void) {
    struct exterior_light_light_diag_t msg = {.diag_page = diag_page};
    if (diag_page == 0) { /* lamp currents in mA */
        msg.brake_lamp_current = last_status.brake_lamp ? 1250u : 0u;
        msg.turn_left_current = last_status.turn_left ? 850u : 0u;
        msg.turn_right_current = last_status.turn_right ? 850u : 0u;
    } else if (diag_page == 1) {
        msg.rx_frames = rx_frames;
        msg.rx_overruns = (uint16_t)rx_overruns;
        msg.uptime_seconds = ms_ticks / 1000u;
    } else {
        msg.dtc_vehicle_state_timeout = dtc_vehicle_timeout;
        msg.dtc_vehicle_state_e2_e = dtc_vehicle_e2e;
        msg.e2_e_errors = e2e_errors;
    }
    diag_page = (uint8_t)((diag_page + 1u) % 3u);
    uint8_t d[EXTERIOR_LIGHT_LIGHT_DIAG_LENGTH];
    exterior_light_light_diag_pack(d, &msg, sizeof d);
    send(EXTERIOR_LIGHT_LIGHT_DIAG_FRAME_ID, CAN_FLAG_FD | CAN_FLAG_BRS, d, sizeof d);
}

/* LightCommand is taken from 2 bytes (its signals in use); bytes not sent read as 0. */
static void light_command_received(const can_frame_t *f) {
    uint8_t d[EXTERIOR_LIGHT_LIGHT_COMMAND_LENGTH] = {0};
    for (uint8_t i = 0; i < f->len && i < sizeof d; i++) d[i] = f->data[i];
    struct exterior_light_light_command_t msg;
    exterior_light_light_command_unpack(&msg, d, sizeof d);
    headlight_mode = msg.headlight_mode;
    fog_on = msg.fog_light;
    ambient_raw = msg.ambient_level;
}

static void send_network_management(void) {
    struct exterior_light_elc_network_management_t msg = {.nm_source_node = NM_SOURCE_NODE};
    uint8_t d[EXTERIOR_LIGHT_ELC_NETWORK_MANAGEMENT_LENGTH];
    exterior_light_elc_network_management_pack(d, &msg, sizeof d);
    send(EXTERIOR_LIGHT_ELC_NETWORK_MANAGEMENT_FRAME_ID, CAN_FLAG_EXT, d, sizeof d);
}

void MCAN0_INT0_IRQHandler(void) {
    uint32_t ir = MCAN0->IR;
    MCAN0->IR = ir & (MCAN_IR_RF0N_Msk | MCAN_IR_RF0L_Msk | MCAN_IR_BO_Msk);
    if (ir & MCAN_IR_RF0L_Msk) rx_overruns++;
    if ((ir & MCAN_IR_BO_Msk) && (MCAN0->PSR & MCAN_PSR_BO_Msk)) {
        /* Bus-off: restart at once; the controller waits 128 x 11 recessive bits itself. */
        bus_off_count++;
        set_dtc(DTC_BUS_OFF, 1);
        MCAN0->CCCR &= ~MCAN_CCCR_INIT_Msk;
    }
    can_frame_t f;
    while (mcan_receive(MCAN0, &f)) {
        rx_frames++;
        if (diag_frame(&f) || !diag_rx_enabled() || (f.flags & CAN_FLAG_EXT)) continue;
        if (f.id == EXTERIOR_LIGHT_VEHICLE_STATE_FRAME_ID) {
            vehicle_state_received(&f);
        } else if (f.id == EXTERIOR_LIGHT_LIGHT_COMMAND_FRAME_ID && f.len >= 2) {
            light_command_received(&f);
        }
    }
    update();
}

/* A slave's LIN status: its frame's last outcome, or its own response_error flag. */
static uint8_t slave_status(uint8_t frame, uint32_t response_error) {
    uint8_t status = lin_status[frame];
    return status == LIN_STATUS_OK && response_error ? (uint8_t)LIN_STATUS_SLAVE_ERROR : status;
}

static int lin_failed(uint8_t status) {
    return status != LIN_STATUS_OK && status != LIN_STATUS_NONE;
}

static void send_gateway(const struct exterior_light_lin_gateway_t *msg) {
    struct exterior_light_lin_gateway_t m = *msg;
    m.lin_gateway_counter = gateway_counter;
    gateway_counter = (uint8_t)((gateway_counter + 1u) % 15u);
    uint8_t d[EXTERIOR_LIGHT_LIN_GATEWAY_LENGTH];
    exterior_light_lin_gateway_pack(d, &m, sizeof d);
    send(EXTERIOR_LIGHT_LIN_GATEWAY_FRAME_ID, 0, d, sizeof d);
}

/* Every ms: CAN to LIN (the lamp outputs into LampCommand), LIN to CAN (LinGateway on
 * change and every 100 ms), the slaves' DTCs, sleep and wake-up. */
static void lin_gateway(void) {
    LIN_SET(TURN_LEFT_ON, last_status.turn_left);
    LIN_SET(TURN_RIGHT_ON, last_status.turn_right);
    LIN_SET(LOW_BEAM_ON, headlight_state() == HEAD_LOW);
    LIN_SET(HIGH_BEAM_ON, headlight_state() == HEAD_HIGH || LIN_GET(HIGH_BEAM_FLASH));

    int asleep = lin_master_asleep();
    if (lin_was_asleep && !asleep) lin_woke_ms = ms_ticks;
    lin_was_asleep = (uint8_t)asleep;
    uint32_t quiet_since = vehicle_heard_ms > lin_woke_ms ? vehicle_heard_ms : lin_woke_ms;
    if (!asleep && ms_ticks - quiet_since > LIN_SLEEP_AFTER_MS) lin_master_go_to_sleep();
    if (asleep && vehicle_heard_ms && ms_ticks - vehicle_heard_ms < LIN_SLEEP_AFTER_MS) {
        lin_master_wake_up();
    }

    struct exterior_light_lin_gateway_t g = {0};
    g.turn_stalk = (uint8_t)LIN_GET(TURN_STALK);
    g.light_switch = (uint8_t)LIN_GET(LIGHT_SWITCH);
    g.high_beam_flash = (uint8_t)LIN_GET(HIGH_BEAM_FLASH);
    g.lin_asleep = (uint8_t)asleep;
    g.scs_lin_status = slave_status(LIN_FRAME_SWITCH_STATUS, LIN_GET(SCS_RESPONSE_ERROR));
    g.lamp_left_lin_status =
        slave_status(LIN_FRAME_LAMP_LEFT_STATUS, LIN_GET(LAMP_LEFT_RESPONSE_ERROR));
    g.lamp_right_lin_status =
        slave_status(LIN_FRAME_LAMP_RIGHT_STATUS, LIN_GET(LAMP_RIGHT_RESPONSE_ERROR));
    g.lamp_left_fault = (uint8_t)LIN_GET(LAMP_LEFT_FAULT);
    g.lamp_right_fault = (uint8_t)LIN_GET(LAMP_RIGHT_FAULT);
    set_dtc(DTC_LIN_SWITCH, lin_failed(g.scs_lin_status));
    set_dtc(DTC_LIN_LAMP_LEFT, lin_failed(g.lamp_left_lin_status));
    set_dtc(DTC_LIN_LAMP_RIGHT, lin_failed(g.lamp_right_lin_status));
    g.dtc_lin_scs = dtc_lin[0];
    g.dtc_lin_lamp_left = dtc_lin[1];
    g.dtc_lin_lamp_right = dtc_lin[2];
    g.lin_collisions = (uint8_t)lin_collisions;
    int changed = g.turn_stalk != last_gateway.turn_stalk ||
                  g.light_switch != last_gateway.light_switch ||
                  g.high_beam_flash != last_gateway.high_beam_flash ||
                  g.lin_asleep != last_gateway.lin_asleep ||
                  g.scs_lin_status != last_gateway.scs_lin_status ||
                  g.lamp_left_lin_status != last_gateway.lamp_left_lin_status ||
                  g.lamp_right_lin_status != last_gateway.lamp_right_lin_status ||
                  g.lamp_left_fault != last_gateway.lamp_left_fault ||
                  g.lamp_right_fault != last_gateway.lamp_right_fault;
    last_gateway = g;
    if (changed || ms_ticks % 100u == 50u) send_gateway(&g);
}

void USART2_IRQHandler(void) {
    lin_master_irq();
}

void SysTick_Handler(void) {
    ms_ticks++;
    if (!(MCAN0->PSR & MCAN_PSR_BO_Msk)) set_dtc(DTC_BUS_OFF, 0);
    lin_master_tick();
    supervise();
    if (turn_request != TURN_OFF && ++blink_ms >= BLINK_HALF_PERIOD_MS) {
        blink_ms = 0;
        blink_on ^= 1u;
    }
    update();
    if (ms_ticks % 10u == 0) send_status();
    if (ms_ticks % 100u == 5u) send_diag();
    if (ms_ticks % 1000u == 7u) send_network_management();
    lin_gateway();
}

/* The start-up checks a trial image must pass before it confirms itself. */
static int startup_checks(void) {
    if (elc_selftest != SELFTEST_PASS) return BOOT_CHECKS_FAILED;
    if ((MCAN0->CCCR & MCAN_CCCR_INIT_Msk) || ms_ticks < STARTUP_CHECK_MS) {
        return BOOT_CHECKS_PENDING;
    }
    return BOOT_CHECKS_PASSED;
}

int main(void) {
    boot_app_init();
    for (uint32_t pin = PIN_BRAKE; pin <= PIN_FOG; pin++) gpio_output(GPIOA, pin);
    last_status = current_status();
    mcan_init(MCAN0, ELC_NOMINAL_BITRATE, ELC_DATA_BITRATE);
    diag_init(&ms_ticks, dtc_status);
    MCAN0->IE |= MCAN_IE_BOE_Msk; /* bus-off on the same line as RX */
    /* CAN RX above the 1 ms scheduler: a frame is handled even while the tick runs. */
    nvic_set_priority(MCAN0_INT0_IRQn, 0x40);
    nvic_set_priority(SysTick_IRQn, 0x80);
    nvic_enable(MCAN0_INT0_IRQn);
    /* LIN at the scheduler's priority: the schedule and the USART never preempt each other. */
    lin_master_init(USART2, USART2_CLOCK_HZ);
    LIN_SET(TURN_LEFT_ON, LIN_SIGNAL_TURN_LEFT_ON_INIT);
    LIN_SET(TURN_RIGHT_ON, LIN_SIGNAL_TURN_RIGHT_ON_INIT);
    LIN_SET(LOW_BEAM_ON, LIN_SIGNAL_LOW_BEAM_ON_INIT);
    LIN_SET(HIGH_BEAM_ON, LIN_SIGNAL_HIGH_BEAM_ON_INIT);
    LIN_SET(LAMP_BRIGHTNESS, LIN_SIGNAL_LAMP_BRIGHTNESS_INIT);
    nvic_set_priority(USART2_IRQn, 0x80);
    nvic_enable(USART2_IRQn);
    systick_start(CORE_CLOCK_HZ / 1000u);
    for (;;) {
        wait_for_interrupt();
        if (boot_app_active()) boot_app_poll(ms_ticks, startup_checks());
        diag_poll();
    }
}
