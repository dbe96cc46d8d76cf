#include "mcan.h"

/* Message RAM layout per controller (byte offsets; MCAN1 uses the second 8 KB). */
#define RAM_PER_CONTROLLER 0x2000u
#define STD_FILTERS 0x000u
#define RX_FIFO0    0x100u
#define RX_FIFO0_N  8u
#define TX_BUFFERS  0x600u
#define TX_BUFFER_N 16u
#define ELEMENT     72u /* 2 header words + 64 data bytes */
#define SIZE_64     7u  /* RXESC/TXESC code for 64-byte data fields */
#define STANDARD_ID_POS 18u /* a standard ID sits in the element's ID[28:18] */

static const uint8_t fd_lengths[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};

static uint32_t ram_offset(MCAN_Type *can) { return can == MCAN1 ? RAM_PER_CONTROLLER : 0u; }

/* Each instance's board parameters: its message RAM and its kernel clock. */
static uint32_t ram_base(MCAN_Type *can) {
    return can == MCAN1 ? MCAN1_MESSAGE_RAM_BASE : MCAN0_MESSAGE_RAM_BASE;
}

static uint32_t kernel_clock(MCAN_Type *can) {
    return can == MCAN1 ? MCAN1_KERNEL_CLOCK_HZ : MCAN0_KERNEL_CLOCK_HZ;
}

static volatile uint32_t *element(MCAN_Type *can, uint32_t offset) {
    return (volatile uint32_t *)(ram_base(can) + ram_offset(can) + offset);
}

static uint32_t dlc_of(uint8_t len) {
    for (uint32_t dlc = 0; dlc < 16; dlc++)
        if (fd_lengths[dlc] >= len) return dlc;
    return 15;
}

/* 80 % sample point, in quanta of the controller's kernel clock. */
static uint32_t timing(uint32_t clock, uint32_t bitrate, uint32_t seg1_shift,
                       uint32_t seg2_shift) {
    uint32_t tq = clock / bitrate, seg1 = tq * 8u / 10u - 1u, seg2 = tq - 1u - seg1;
    return ((seg1 - 1u) << seg1_shift) | ((seg2 - 1u) << seg2_shift);
}

void mcan_init(MCAN_Type *can, uint32_t nominal_bitrate, uint32_t data_bitrate) {
    uint32_t base = ram_offset(can);
    can->CCCR = MCAN_CCCR_INIT_Msk;
    can->CCCR = MCAN_CCCR_INIT_Msk | MCAN_CCCR_CCE_Msk;
    can->NBTP = timing(kernel_clock(can), nominal_bitrate, MCAN_NBTP_NTSEG1_Pos,
                       MCAN_NBTP_NTSEG2_Pos);
    can->DBTP = timing(kernel_clock(can), data_bitrate, MCAN_DBTP_DTSEG1_Pos,
                       MCAN_DBTP_DTSEG2_Pos);
    can->SIDFC = base + STD_FILTERS; /* no filters: ... */
    can->GFC = 0;                    /* ... non-matching frames go to FIFO 0 */
    can->RXF0C = (base + RX_FIFO0) | (RX_FIFO0_N << MCAN_RXF0C_F0S_Pos) |
                 (RX_FIFO0_N << MCAN_RXF0C_F0WM_Pos);
    can->RXESC = SIZE_64 << MCAN_RXESC_F0DS_Pos;
    can->TXBC = (base + TX_BUFFERS) | (TX_BUFFER_N << MCAN_TXBC_NDTB_Pos);
    can->TXESC = SIZE_64;
    can->IE = MCAN_IE_RF0NE_Msk | MCAN_IE_RF0LE_Msk;
    can->ILS = 0;
    can->ILE = MCAN_ILE_EINT0_Msk;
    can->CCCR = MCAN_CCCR_FDOE_Msk | MCAN_CCCR_BRSE_Msk; /* INIT = 0: join the bus */
}

int mcan_send(MCAN_Type *can, const can_frame_t *frame) {
    uint32_t busy = can->TXBRP;
    for (uint32_t i = 0; i < TX_BUFFER_N; i++) {
        if (busy & (1u << i)) continue;
        volatile uint32_t *e = element(can, TX_BUFFERS + i * ELEMENT);
        uint32_t ext = frame->flags & CAN_FLAG_EXT;
        e[0] = ext ? MCAN_ELEMENT_T0_XTD_Msk | (frame->id & MCAN_ELEMENT_T0_ID_Msk)
                   : (frame->id & 0x7FFu) << STANDARD_ID_POS;
        e[1] = (dlc_of(frame->len) << MCAN_ELEMENT_T1_DLC_Pos) |
               ((frame->flags & CAN_FLAG_FD) ? MCAN_ELEMENT_T1_FDF_Msk : 0u) |
               ((frame->flags & CAN_FLAG_BRS) ? MCAN_ELEMENT_T1_BRS_Msk : 0u);
        for (uint32_t w = 0; w < (frame->len + 3u) / 4u; w++) {
            const uint8_t *b = &frame->data[4u * w];
            e[2 + w] = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                       (uint32_t)b[3] << 24;
        }
        can->TXBAR = 1u << i;
        return 0;
    }
    return -1;
}

int mcan_receive(MCAN_Type *can, can_frame_t *frame) {
    uint32_t status = can->RXF0S;
    if ((status & MCAN_RXF0S_F0FL_Msk) == 0) return 0;
    uint32_t get = (status & MCAN_RXF0S_F0GI_Msk) >> MCAN_RXF0S_F0GI_Pos;
    volatile uint32_t *e = element(can, RX_FIFO0 + get * ELEMENT);
    uint32_t r0 = e[0], r1 = e[1];
    uint32_t fd = r1 & MCAN_ELEMENT_R1_FDF_Msk;
    frame->flags = ((r0 & MCAN_ELEMENT_R0_XTD_Msk) ? CAN_FLAG_EXT : 0u) |
                   (fd ? CAN_FLAG_FD : 0u) | ((r1 & MCAN_ELEMENT_R1_BRS_Msk) ? CAN_FLAG_BRS : 0u);
    frame->id = (frame->flags & CAN_FLAG_EXT) ? r0 & MCAN_ELEMENT_R0_ID_Msk
                                              : (r0 >> STANDARD_ID_POS) & 0x7FFu;
    uint32_t dlc = (r1 & MCAN_ELEMENT_R1_DLC_Msk) >> MCAN_ELEMENT_R1_DLC_Pos;
    frame->len = fd ? fd_lengths[dlc] : (dlc > 8u ? 8u : (uint8_t)dlc);
    for (uint32_t w = 0; w < (frame->len + 3u) / 4u; w++) {
        uint32_t v = e[2 + w];
        frame->data[4u * w] = (uint8_t)v;
        frame->data[4u * w + 1] = (uint8_t)(v >> 8);
        frame->data[4u * w + 2] = (uint8_t)(v >> 16);
        frame->data[4u * w + 3] = (uint8_t)(v >> 24);
    }
    can->RXF0A = get;
    return 1;
}
