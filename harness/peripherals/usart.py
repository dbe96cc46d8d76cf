"""USART: an asynchronous UART (8N1) with LIN mode, in the STM32F4 programming model.

Modelled: CR1.UE/TE/RE, TXEIE, TCIE, RXNEIE, SBK; CR2.LINEN, LBDL, LBDIE; BRR (16x
oversampling: one bit lasts BRR cycles of the instance's clock, `clock_hz`, so baud =
clock_hz / BRR); DR (writes go to the transmit holding register, reads give the received
byte); SR.TXE, TC, RXNE, ORE, FE, NF, LBD; one IRQ line, level = TXE.TXEIE | TC.TCIE |
(RXNE | ORE).RXNEIE | LBD.LBDIE.

Transmit: a DR write (UE = 1) fills the holding register (TXE = 0) and clears TC; when the
shift register is free (and TE = 1) the byte moves into it at once (TXE = 1 again) and takes
exactly 10 bit times (start, 8 data, stop) of virtual time; a byte written meanwhile waits
and follows back to back. Setting CR1.SBK sends a break after the byte being shifted (if
any): `break_bits` dominant bits (13 on this board, an instance parameter; LIN asks for 13 or
more) and a one-bit delimiter; SBK clears when the break ends, and a byte waiting in DR
follows it. When the shift register finishes with nothing waiting, TC = 1. Finished bytes
are logged: `sent` (bytes), `text` (utf-8, with replacement), `tx_frames` (the cycle each
byte's stop bit ended). Byte timing is exact: back-to-back frames are placed at exact
fractions of a cycle, each completes at the first whole cycle at or after its end.

Receive, unattached: `feed(b"...")` puts bytes on the RX line, back to back at the current
baud rate; each arrives 10 bit times after the previous one. Attached to a LIN bus (the
USART is then a `LinPort`), the RX line is the bus: every character on the wire arrives at
its end, the USART's own ones included (the transceiver's readback: a LIN driver compares
what it reads back with what it sent to see bit errors and collisions). With UE and RE set, an
arriving byte goes to DR with RXNE = 1 (FE = 1 if its stop bit was dominant, NF = 1 if it was
disturbed); if RXNE is still set, ORE = 1 and the new byte is lost. A break arrives as 0x00
with FE = 1, as on STM32; in LIN mode (LINEN = 1) a dominant phase of 11 bits or more (10
with LBDL = 0) also sets LBD. (The hardware raises RXNE/FE at the break's tenth bit and LBD at
its delimiter; here both come at the end of the break and its delimiter.) With the receiver
off, arriving bytes are
lost. Lost bytes are counted (`lost`). Reading DR clears RXNE; reading SR then DR clears ORE,
FE and NF. On a LIN bus the baud rate must be within 2 % of the bus's (the tolerance of a
LIN slave after synchronisation), or the run stops with both rates: nothing a UART that far
off receives is meaningful.

SR.RXNE, TC and LBD are rc_w0 as on STM32 (writing 0 clears, writing 1 has no effect); the
DSL declares them read-write. The SR read before a DR write that clears TC is not required
here. Writes to DR with UE = 0 are ignored (logged). A system reset drops bytes in flight and
fed bytes still on the line; `sent` and `tx_frames` keep what went out on the wire (the
latest 100,000 at least, `LOG_LIMIT`: long runs stay in flat memory).

Not modelled (declared, logged when set): parity (PCE, PS, PE), 9-bit words (M), stop bits
other than 1 (CR2.STOP), 8x oversampling (OVER8), idle line (IDLE, IDLEIE), the error
interrupt (CR3.EIE), mute mode (RWU, WAKE, ADD), synchronous mode, hardware flow control,
smartcard, IrDA, half duplex, DMA (CR3), GTPR, the idle frame sent when TE is set.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from harness.clock import VirtualClock
from harness.errors import SimulationError
from harness.frames.lin import BREAK_BITS, LineSymbol
from harness.peripherals.base import IrqLine, Peripheral, keep_recent
from harness.regs.dsl import Access, Block, Field, Register

log = logging.getLogger(__name__)

FRAME_BITS = 10  # start + 8 data + stop
BAUD_TOLERANCE = 0.02  # on a LIN bus: a slave's after synchronisation (ISO 17987-4)
BREAK = -1  # in the shift register: a break, not a byte

RO = Access.RO

USART_BLOCK = Block(
    "USART",
    0x400,
    (
        Register("SR", 0x00, (
            Field("PE", 0, 1, RO, doc="Parity error", modelled=False),
            Field("FE", 1, 1, RO, doc="Framing error (cleared by reading SR then DR)"),
            Field("NF", 2, 1, RO, doc="Noise detected (cleared by reading SR then DR)"),
            Field("ORE", 3, 1, RO, doc="Overrun: a byte arrived while RXNE was set; it is lost "
                                       "(cleared by reading SR then DR)"),
            Field("IDLE", 4, 1, RO, doc="Idle line detected", modelled=False),
            Field("RXNE", 5, 1, doc="Read data register not empty (rc_w0; reading DR clears)"),
            Field("TC", 6, 1, reset=1, doc="Transmission complete: shift register done and "
                                           "nothing waiting (rc_w0; a DR write clears)"),
            Field("TXE", 7, 1, RO, reset=1, doc="Transmit data register empty"),
            Field("LBD", 8, 1, doc="LIN break detected (rc_w0)"),
            Field("CTS", 9, 1, doc="CTS toggled (rc_w0)", modelled=False),
        ), "Status"),
        Register("DR", 0x04, (Field("DR", 0, 9, doc="Write: byte to send; read: byte received"),),
                 "Data (transmit holding / receive register)"),
        Register("BRR", 0x08, (
            Field("DIV_Fraction", 0, 4),
            Field("DIV_Mantissa", 4, 12),
        ), "Baud rate: one bit lasts BRR clock cycles (baud = clock / BRR)"),
        Register("CR1", 0x0C, (
            Field("SBK", 0, doc="Send break: set, it sends one; cleared when the break ends"),
            Field("RWU", 1, doc="Receiver wakeup (mute)", modelled=False),
            Field("RE", 2, doc="Receiver enable"),
            Field("TE", 3, doc="Transmitter enable"),
            Field("IDLEIE", 4, doc="IDLE interrupt enable", modelled=False),
            Field("RXNEIE", 5, doc="RXNE and ORE interrupt enable"),
            Field("TCIE", 6, doc="Transmission complete interrupt enable"),
            Field("TXEIE", 7, doc="TXE interrupt enable"),
            Field("PEIE", 8, doc="Parity error interrupt enable", modelled=False),
            Field("PS", 9, doc="Parity selection", modelled=False),
            Field("PCE", 10, doc="Parity control enable", modelled=False),
            Field("WAKE", 11, doc="Wakeup method", modelled=False),
            Field("M", 12, doc="Word length: 9 bits", modelled=False),
            Field("UE", 13, doc="USART enable"),
            Field("OVER8", 15, doc="Oversampling by 8", modelled=False),
        ), "Control 1"),
        Register("CR2", 0x10, (
            Field("ADD", 0, 4, doc="Node address (mute mode)", modelled=False),
            Field("LBDL", 5, doc="LIN break detection length: 1 = 11 bits, 0 = 10 bits"),
            Field("LBDIE", 6, doc="LIN break detection interrupt enable"),
            Field("LBCL", 8, doc="Last bit clock pulse", modelled=False),
            Field("CPHA", 9, doc="Clock phase", modelled=False),
            Field("CPOL", 10, doc="Clock polarity", modelled=False),
            Field("CLKEN", 11, doc="Clock enable (synchronous mode)", modelled=False),
            Field("STOP", 12, 2, doc="Stop bits (0: 1 stop bit)", modelled=False),
            Field("LINEN", 14, doc="LIN mode enable: break detection"),
        ), "Control 2"),
        Register("CR3", 0x14, tuple(Field(name, bit, modelled=False) for bit, name in enumerate(
            ("EIE", "IREN", "IRLP", "HDSEL", "NACK", "SCEN", "DMAR", "DMAT", "RTSE", "CTSE",
             "CTSIE", "ONEBIT"))), "Control 3"),
        Register("GTPR", 0x18, (Field("PSC", 0, 8, modelled=False),
                                Field("GT", 8, 8, modelled=False)), "Guard time and prescaler"),
    ),
    "USART (asynchronous 8N1 and LIN mode)",
)  # fmt: skip

_SR = USART_BLOCK.register("SR")
_CR1 = USART_BLOCK.register("CR1")
_CR2 = USART_BLOCK.register("CR2")
_PE, _FE, _NF, _ORE, _IDLE, _RXNE, _TC, _TXE, _LBD, _CTS = (
    _SR.field(n).mask
    for n in ("PE", "FE", "NF", "ORE", "IDLE", "RXNE", "TC", "TXE", "LBD", "CTS")
)
_RC_W0 = _RXNE | _TC | _LBD | _CTS
_READ_SEQUENCE = _PE | _FE | _NF | _ORE | _IDLE  # cleared by a read of SR, then of DR
_SBK, _RE, _TE, _RXNEIE, _TCIE, _TXEIE, _UE = (
    _CR1.field(n).mask for n in ("SBK", "RE", "TE", "RXNEIE", "TCIE", "TXEIE", "UE")
)
_LBDL, _LBDIE, _LINEN = (_CR2.field(n).mask for n in ("LBDL", "LBDIE", "LINEN"))
_SR_OFFSET = _SR.offset
_DR_OFFSET = USART_BLOCK.register("DR").offset


@dataclass(frozen=True, slots=True)
class UartFrame:
    cycle: int  # when its stop bit ended
    byte: int


class Usart(Peripheral):
    block = USART_BLOCK
    extra_state: ClassVar[tuple[str, ...]] = (
        "_tdr", "_shifting", "_tx_end", "_rx_line", "_rx_end", "_sent", "tx_frames",
        "_sr_read", "lost", "_break_pending",
    )  # fmt: skip

    def __init__(self, name: str, base: int, clock: VirtualClock, irq: IrqLine,
                 clock_hz: int, break_bits: int = BREAK_BITS) -> None:  # fmt: skip
        super().__init__(name, base, clock)
        if clock_hz <= 0:
            raise ValueError(f"{name}: clock_hz must be positive, got {clock_hz}")
        if break_bits < BREAK_BITS:
            raise ValueError(f"{name}: a LIN break is {BREAK_BITS} bits or more, not {break_bits}")
        self.clock_hz = clock_hz
        self.break_bits = break_bits
        # a LinPort once attached to a LIN bus: its transmit(sender, character), its bit rate
        self.lin_transmit: list[Callable[[str, LineSymbol], None]] = []
        self.lin_bitrate: int | None = None
        self._break_pending = False
        self._irq = irq
        self._tdr: int | None = None  # transmit holding register
        self._shifting: int | None = None  # the byte in the shift register
        self._tx_end = Fraction(0)  # exact cycle the shifting byte's stop bit ends
        self._rx_line: list[tuple[int, bool]] = []  # fed bytes: (byte, framing error)
        self._rx_end = Fraction(0)
        self._sent: list[int] = []  # at least the latest LOG_LIMIT bytes, as tx_frames
        self.tx_frames: list[UartFrame] = []
        self._sr_read = False
        self.lost = 0  # received bytes lost: overrun, or the receiver off
        self._warned_disabled = False
        self._tx = self.deadline(self._tx_done)
        self._rx = self.deadline(self._rx_done)
        self.regs.on_write["CR1"] = lambda _i, _w, _n: self._control_written()

    # ---- what tests use ----

    @property
    def sent(self) -> bytes:
        """Every byte transmitted so far (completed frames only)."""
        return bytes(self._sent)

    @property
    def text(self) -> str:
        return self.sent.decode("utf-8", "replace")

    @property
    def baud(self) -> float | None:
        brr = self.regs["BRR"]
        return self.clock_hz / brr if brr else None

    def frame_cycles(self, bits: int = FRAME_BITS) -> Fraction:
        """Core cycles `bits` bits (a 10-bit frame) last at the current BRR (exact, maybe
        fractional)."""
        brr = self.regs["BRR"]
        if not brr:
            raise SimulationError(f"{self.name}: BRR is 0, so the baud rate is not set (the "
                                  "firmware must configure it first)")  # fmt: skip
        return Fraction(bits * brr * self.clock.hz, self.clock_hz)

    def feed(self, data: bytes, *, framing_error: bool = False) -> None:
        """Put bytes on the RX line, back to back from now (or after bytes still on it)."""
        if not data:
            return
        self.frame_cycles()  # refuses a feed before the baud rate is set
        idle = not self._rx_line
        self._rx_line += [(b, framing_error) for b in data]
        if idle:
            self._rx_start(Fraction(self.clock.cycles))

    # ---- register side ----

    def reset(self) -> None:
        super().reset()
        self._tdr = self._shifting = None
        self._break_pending = False
        self._rx_line = []
        self._sr_read = False
        self.update_interrupts()

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        if word == _SR_OFFSET:
            self._sr_read = True
        elif word == _DR_OFFSET:
            value = self.regs.read(offset, size)
            clear = _RXNE | (_READ_SEQUENCE if self._sr_read else 0)
            self.regs["SR"] = self.regs["SR"] & ~clear
            self._sr_read = False
            self.update_interrupts()
            return value
        return self.regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        shift = 8 * (offset & 3)
        lanes = ((1 << (8 * size)) - 1) << shift
        if word == _SR_OFFSET:  # rc_w0: zeros clear, ones change nothing
            cleared = ~(value << shift) & lanes & _RC_W0
            self.regs["SR"] = self.regs["SR"] & ~cleared
            self.update_interrupts()
        elif word == _DR_OFFSET:
            self._write_dr((value << shift & lanes) & 0xFF)
        else:
            self.regs.write(offset, value, size)

    def update_interrupts(self) -> None:
        sr, cr1 = self.regs["SR"], self.regs["CR1"]
        self._irq.set(bool((sr & _TXE and cr1 & _TXEIE) or (sr & _TC and cr1 & _TCIE)
                           or (sr & (_RXNE | _ORE) and cr1 & _RXNEIE)
                           or (sr & _LBD and self.regs["CR2"] & _LBDIE)))  # fmt: skip

    def _enabled(self, bit: int) -> bool:
        cr1 = self.regs["CR1"]
        return bool(cr1 & _UE and cr1 & bit)

    def _control_written(self) -> None:
        if self.regs["CR1"] & _SBK and self._enabled(_TE) and self._shifting != BREAK:
            self._break_pending = True
        self._tx_start_if_ready(Fraction(self.clock.cycles))
        self.update_interrupts()

    # ---- transmit ----

    def _write_dr(self, byte: int) -> None:
        if not self.regs["CR1"] & _UE:
            if not self._warned_disabled:
                self._warned_disabled = True
                log.warning("%s: DR written with CR1.UE = 0: ignored", self.name)
            return
        if self._tdr is not None:
            log.warning("%s: DR written while TXE = 0: byte 0x%02X overwritten", self.name,
                        self._tdr)  # fmt: skip
        self._tdr = byte
        self.regs["SR"] = self.regs["SR"] & ~(_TXE | _TC)
        self._tx_start_if_ready(Fraction(self.clock.cycles))
        self.update_interrupts()

    def _tx_start_if_ready(self, at: Fraction) -> None:
        if self._shifting is not None or not self._enabled(_TE):
            return
        if self._break_pending:
            self._break_pending = False
            self._shifting = BREAK
            bits = self.break_bits + 1  # and its delimiter
        elif self._tdr is not None:
            self._shifting, self._tdr = self._tdr, None
            self.regs["SR"] = self.regs["SR"] | _TXE
            bits = FRAME_BITS
        else:
            return
        self._tx_end = at + self.frame_cycles(bits)
        self._tx.arm_at(math.ceil(self._tx_end))
        if self.lin_transmit:
            self._drive_wire(at, self._shifting)

    def _tx_done(self) -> None:
        byte, self._shifting = self._shifting, None
        if byte == BREAK:
            self.regs["CR1"] = self.regs["CR1"] & ~_SBK
        elif byte is not None:
            self._sent.append(byte)
            self.tx_frames.append(UartFrame(self._tx.due, byte))
            keep_recent(self._sent)
            keep_recent(self.tx_frames)
        self._tx_start_if_ready(self._tx_end)  # a waiting byte follows back to back
        if self._shifting is None:
            self.regs["SR"] = self.regs["SR"] | _TC
        self.update_interrupts()

    # ---- on a LIN bus ----

    def _bit_ns(self) -> Fraction:
        """One bit in ns at the current baud rate (exact); it must match the bus's."""
        bit_ns = Fraction(self.regs["BRR"] * 1_000_000_000, self.clock_hz)
        baud, bitrate = self.baud, self.lin_bitrate
        if bitrate is not None and baud is not None and abs(baud / bitrate - 1) > BAUD_TOLERANCE:
            raise SimulationError(
                f"{self.name} runs at {baud:.0f} baud (BRR {self.regs['BRR']} of "
                f"{self.clock_hz} Hz) on a {bitrate} bit/s LIN bus: more than "
                f"{BAUD_TOLERANCE:.0%} off, so it could not communicate")  # fmt: skip
        return bit_ns

    def _drive_wire(self, at: Fraction, what: int) -> None:
        bit_ns = self._bit_ns()
        start = at * 1_000_000_000 / self.clock.hz
        if what == BREAK:
            symbol = LineSymbol.break_(start, bit_ns, self.break_bits)
        else:
            symbol = LineSymbol.byte(start, bit_ns, what)
        for transmit in self.lin_transmit:
            transmit(self.name, symbol)

    def lin_received(self, symbol: LineSymbol) -> None:
        """A character ended on the LIN wire (a `LinPort`'s side)."""
        if not self._enabled(_RE):
            self.lost += 1
            return
        self._bit_ns()  # refuses a baud rate the bus does not run at
        cr2 = self.regs["CR2"]
        if symbol.value is None:  # a break: a 0x00 whose stop bit is low, for the receiver
            self._receive(0x00, framing_error=True)
        else:
            self._receive(symbol.value, framing_error=symbol.framing_error, noise=symbol.noise)
        if cr2 & _LINEN and symbol.dominant_bits >= (11 if cr2 & _LBDL else 10):
            self.regs["SR"] = self.regs["SR"] | _LBD
            self.update_interrupts()

    # ---- receive ----

    def _rx_start(self, at: Fraction) -> None:
        self._rx_end = at + self.frame_cycles()
        self._rx.arm_at(math.ceil(self._rx_end))

    def _rx_done(self) -> None:
        byte, framing_error = self._rx_line.pop(0)
        if self._enabled(_RE):
            self._receive(byte, framing_error=framing_error)
        else:
            self.lost += 1
        if self._rx_line:
            self._rx_start(self._rx_end)
        self.update_interrupts()

    def _receive(self, byte: int, *, framing_error: bool = False, noise: bool = False) -> None:
        sr = self.regs["SR"]
        if sr & _RXNE:
            self.regs["SR"] = sr | _ORE
            self.lost += 1
        else:
            self.regs["DR"] = byte
            self.regs["SR"] = sr | _RXNE | (_FE if framing_error else 0) | (_NF if noise else 0)
        self.update_interrupts()
