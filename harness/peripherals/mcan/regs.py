"""M_CAN register map (Bosch M_CAN user's manual, v3.2 layout), declared once.

Register and field names keep the manual's spelling. Fields the model does not implement
yet are declared `modelled=False`, so firmware touching them is logged, not silently ignored.
"""

from __future__ import annotations

from harness.regs.dsl import Access, Block, Field, Register, word, writable_when

RO, WO, RW, W1C, W1S = Access.RO, Access.WO, Access.RW, Access.W1C, Access.W1S

# Writable only while CCCR.CCE = 1 and CCCR.INIT = 1, as on the real IP ("protected"
# registers, and CCCR's mode bits); TEST only while CCCR.TEST = 1.
CONFIGURING = writable_when("CCCR", INIT=1, CCE=1)
TESTING = writable_when("CCCR", TEST=1)

# IR / IE / ILS bit numbers
IR_BITS = (
    "RF0N", "RF0W", "RF0F", "RF0L", "RF1N", "RF1W", "RF1F", "RF1L", "HPM", "TC", "TCF", "TFE",
    "TEFN", "TEFW", "TEFF", "TEFL", "TSW", "MRAF", "TOO", "DRX", "BEC", "BEU", "ELO", "EP", "EW",
    "BO", "WDI", "PEA", "PED", "ARA",
)  # fmt: skip
IR_MODELLED = {
    "RF0N", "RF0W", "RF0F", "RF0L", "RF1N", "RF1W", "RF1F", "RF1L", "TC", "TCF", "TFE", "TEFN",
    "TEFW", "TEFF", "TEFL", "EP", "EW", "BO",
}  # fmt: skip


def _ir_fields(access: Access) -> tuple[Field, ...]:
    return tuple(Field(n, b, 1, access, modelled=n in IR_MODELLED) for b, n in enumerate(IR_BITS))


def _ie_fields() -> tuple[Field, ...]:
    return tuple(Field(n + "E", b, 1, RW, modelled=n in IR_MODELLED) for b, n in enumerate(IR_BITS))


def _fifo(n: int, base: int) -> tuple[Register, ...]:
    return (
        Register(f"RXF{n}C", base, (
            Field(f"F{n}SA", 2, 14), Field(f"F{n}S", 16, 7), Field(f"F{n}WM", 24, 7),
            Field(f"F{n}OM", 31),
        ), f"RX FIFO {n} configuration", writable_when=CONFIGURING),
        Register(f"RXF{n}S", base + 4, (
            Field(f"F{n}FL", 0, 7, RO), Field(f"F{n}GI", 8, 6, RO), Field(f"F{n}PI", 16, 6, RO),
            Field(f"F{n}F", 24, 1, RO), Field(f"RF{n}L", 25, 1, RO),
        ), f"RX FIFO {n} status"),
        Register(f"RXF{n}A", base + 8, (Field(f"F{n}AI", 0, 6),), f"RX FIFO {n} acknowledge"),
    )  # fmt: skip


MCAN_BLOCK = Block(
    "MCAN",
    0x400,
    (
        word("CREL", 0x000, RO, 0x32150320, "Core release"),
        word("ENDN", 0x004, RO, 0x87654321, "Endian"),
        Register("DBTP", 0x00C, (
            Field("DSJW", 0, 4, reset=3), Field("DTSEG2", 4, 4, reset=3),
            Field("DTSEG1", 8, 5, reset=10), Field("DBRP", 16, 5), Field("TDC", 23, modelled=False),
        ), "Data bit timing and prescaler", writable_when=CONFIGURING),
        Register("TEST", 0x010, (
            Field("LBCK", 4), Field("TX", 5, 2, modelled=False),
            Field("RX", 7, 1, RO, 1),
        ), "Test", writable_when=TESTING),
        Register("CCCR", 0x018, (
            Field("INIT", 0, reset=1), Field("CCE", 1),
            Field("ASM", 2, modelled=False, writable_when=CONFIGURING),
            Field("CSA", 3, 1, RO), Field("CSR", 4, modelled=False),
            Field("MON", 5, writable_when=CONFIGURING),
            Field("DAR", 6, modelled=False, writable_when=CONFIGURING),
            Field("TEST", 7, writable_when=CONFIGURING),
            Field("FDOE", 8, writable_when=CONFIGURING),
            Field("BRSE", 9, writable_when=CONFIGURING),
            Field("PXHD", 12, modelled=False, writable_when=CONFIGURING),
            Field("EFBI", 13, modelled=False, writable_when=CONFIGURING),
            Field("TXP", 14, modelled=False, writable_when=CONFIGURING),
            Field("NISO", 15, modelled=False, writable_when=CONFIGURING),
        ), "CC control"),
        Register("NBTP", 0x01C, (
            Field("NTSEG2", 0, 7, reset=3), Field("NTSEG1", 8, 8, reset=10),
            Field("NBRP", 16, 9), Field("NSJW", 25, 7, reset=3),
        ), "Nominal bit timing and prescaler", writable_when=CONFIGURING),
        Register("ECR", 0x040, (
            Field("TEC", 0, 8, RO), Field("REC", 8, 7, RO), Field("RP", 15, 1, RO),
            Field("CEL", 16, 8, Access.RC),
        ), "Error counter"),
        Register("PSR", 0x044, (
            Field("LEC", 0, 3, RO, 7), Field("ACT", 3, 2, RO), Field("EP", 5, 1, RO),
            Field("EW", 6, 1, RO), Field("BO", 7, 1, RO), Field("DLEC", 8, 3, RO, 7),
            Field("RESI", 11, 1, RO), Field("RBRS", 12, 1, RO), Field("RFDF", 13, 1, RO),
        ), "Protocol status"),
        Register("IR", 0x050, _ir_fields(W1C), "Interrupt register (write 1 to clear)"),
        Register("IE", 0x054, _ie_fields(), "Interrupt enable"),
        Register("ILS", 0x058, tuple(Field(n + "L", b) for b, n in enumerate(IR_BITS)),
                 "Interrupt line select (0: line 0, 1: line 1)"),
        Register("ILE", 0x05C, (Field("EINT0", 0), Field("EINT1", 1)), "Interrupt line enable"),
        Register("GFC", 0x080, (
            Field("RRFE", 0), Field("RRFS", 1), Field("ANFE", 2, 2), Field("ANFS", 4, 2),
        ), "Global filter configuration", writable_when=CONFIGURING),
        Register("SIDFC", 0x084, (Field("FLSSA", 2, 14), Field("LSS", 16, 8)),
                 "Standard ID filter configuration", writable_when=CONFIGURING),
        Register("XIDFC", 0x088, (Field("FLESA", 2, 14), Field("LSE", 16, 7)),
                 "Extended ID filter configuration", writable_when=CONFIGURING),
        Register("XIDAM", 0x090, (Field("EIDM", 0, 29, reset=0x1FFFFFFF),),
                 "Extended ID AND mask", writable_when=CONFIGURING),
        Register("HPMS", 0x094, (
            Field("BIDX", 0, 6, RO, modelled=False), Field("MSI", 6, 2, RO, modelled=False),
            Field("FIDX", 8, 7, RO, modelled=False), Field("FLST", 15, 1, RO, modelled=False),
        ), "High priority message status (high-priority messages are not modelled)"),
        *_fifo(0, 0x0A0),
        Register("RXBC", 0x0AC, (Field("RBSA", 2, 14, modelled=False),),
                 "RX buffer configuration", writable_when=CONFIGURING),
        *_fifo(1, 0x0B0),
        Register("RXESC", 0x0BC, (
            Field("F0DS", 0, 3), Field("F1DS", 4, 3), Field("RBDS", 8, 3, modelled=False),
        ), "RX buffer / FIFO element size", writable_when=CONFIGURING),
        Register("TXBC", 0x0C0, (
            Field("TBSA", 2, 14), Field("NDTB", 16, 6), Field("TFQS", 24, 6), Field("TFQM", 30),
        ), "TX buffer configuration", writable_when=CONFIGURING),
        Register("TXFQS", 0x0C4, (
            Field("TFFL", 0, 6, RO), Field("TFGI", 8, 5, RO), Field("TFQPI", 16, 5, RO),
            Field("TFQF", 21, 1, RO),
        ), "TX FIFO/queue status"),
        Register("TXESC", 0x0C8, (Field("TBDS", 0, 3),), "TX buffer element size",
                 writable_when=CONFIGURING),
        word("TXBRP", 0x0CC, RO, doc="TX buffer request pending"),
        word("TXBAR", 0x0D0, W1S, doc="TX buffer add request"),
        word("TXBCR", 0x0D4, W1S, doc="TX buffer cancellation request"),
        word("TXBTO", 0x0D8, RO, doc="TX buffer transmission occurred"),
        word("TXBCF", 0x0DC, RO, doc="TX buffer cancellation finished"),
        word("TXBTIE", 0x0E0, doc="TX buffer transmission interrupt enable"),
        word("TXBCIE", 0x0E4, doc="TX buffer cancellation finished interrupt enable"),
        Register("TXEFC", 0x0F0, (
            Field("EFSA", 2, 14), Field("EFS", 16, 6), Field("EFWM", 24, 6),
        ), "TX event FIFO configuration", writable_when=CONFIGURING),
        Register("TXEFS", 0x0F4, (
            Field("EFFL", 0, 6, RO), Field("EFGI", 8, 5, RO), Field("EFPI", 16, 5, RO),
            Field("EFF", 24, 1, RO), Field("TEFL", 25, 1, RO),
        ), "TX event FIFO status"),
        Register("TXEFA", 0x0F8, (Field("EFAI", 0, 5),), "TX event FIFO acknowledge"),
    ),
    "Bosch M_CAN CAN FD controller",
)  # fmt: skip

IR = {f.name: f.mask for f in MCAN_BLOCK.register("IR").fields}  # IR / IE / ILS bits by name
PROTECTED = frozenset(r.name for r in MCAN_BLOCK.registers if r.writable_when is CONFIGURING)
