/* The security unit (SEC): one AES-CMAC over memory, sleeping until it ends. */
#include "boot.h"

#define SEC_OP_CMAC 4u
#define SEC_FINISHED (SEC_STATUS_DONE_Msk | SEC_STATUS_ERR_SLOT_EMPTY_Msk | \
                      SEC_STATUS_ERR_PARAM_Msk | SEC_STATUS_ERR_BUSY_Msk)

uint32_t sec_cmac(uint32_t slot, uint32_t src, uint32_t length, uint8_t mac[16]) {
    SEC->STATUS = SEC_FLAGS;
    SEC->SRC = src;
    SEC->LEN = length;
    SEC->IE = SEC_IE_DONE_Msk | SEC_IE_ERR_Msk;
    SEC->CTRL = SEC_OP_CMAC << SEC_CTRL_OP_Pos | slot << SEC_CTRL_KEYSLOT_Pos |
                SEC_CTRL_START_Msk;
    boot_sleep_until(&SEC->STATUS, SEC_FINISHED, SEC_IRQn);
    SEC->IE = 0;
    uint32_t status = SEC->STATUS;
    SEC->STATUS = SEC_FLAGS;
    uint32_t errors = status & SEC_FLAGS & ~SEC_STATUS_DONE_Msk;
    if (!(status & SEC_STATUS_DONE_Msk) && !errors) errors = SEC_STATUS_ERR_PARAM_Msk;
    if (errors) return errors;
    for (uint32_t i = 0; i < 16u; i++) {
        mac[i] = (uint8_t)(SEC->MAC[i / 4u] >> (24u - 8u * (i % 4u))); /* big-endian words */
    }
    return 0;
}
