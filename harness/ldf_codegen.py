"""C tables for a LIN cluster, generated at build time from its LDF.

The firmware includes `<name>_lin.h` and is linked with `<name>_lin.c` (name: the LDF's file
stem as a C identifier, as `dbc_codegen.database_name` makes it), both written into the build
directory, never into the sources. They describe the cluster as the node that runs the firmware
sees it (the LDF's master unless told otherwise): every frame with its protected ID, length,
checksum model, kind and whether the node publishes it, subscribes to it or ignores it; every
schedule table as slots of a frame and a delay; every signal's frame, bit offset, width,
initial value and logical values. Raw values only: the firmware needs no floating point.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from harness.dbc_codegen import database_name
from harness.frames.lin import protected_id
from harness.ldf import Ldf, LdfError, LdfFrame, LdfSignal

_FIXED = ("LIN_BITRATE", "LIN_TIME_BASE_US", "LIN_PUBLISH", "LIN_SUBSCRIBE", "LIN_IGNORE",
          "LIN_UNCONDITIONAL", "LIN_EVENT_TRIGGERED", "LIN_DIAGNOSTIC", "LIN_FRAME_COUNT",
          "LIN_SCHEDULE_COUNT")  # fmt: skip
DIGEST, DIGEST_SIZE = "lin_tables_digest", 16
_KINDS = {"unconditional": "LIN_UNCONDITIONAL", "event_triggered": "LIN_EVENT_TRIGGERED",
          "diagnostic": "LIN_DIAGNOSTIC"}  # fmt: skip


def generated_files(ldf: Path, out_dir: Path) -> tuple[Path, Path]:
    """Where `generate` writes the header and the source for `ldf`."""
    name = database_name(ldf)
    return out_dir / f"{name}_lin.h", out_dir / f"{name}_lin.c"


def fingerprint(ldf: Path, node: str | None = None) -> bytes:
    """Everything the generated code depends on: the LDF, the node, ldfparser's version and
    this generator."""
    parts = (ldf.name.encode(), ldf.read_bytes(), (node or "").encode(),
             version("ldfparser").encode(), Path(__file__).read_bytes())  # fmt: skip
    return b"\0".join(parts)


def generate(ldf: Path, out_dir: Path, node: str | None = None) -> tuple[Path, Path]:
    """Generate the C header and source for `ldf`, seen from `node` (default: the master),
    into `out_dir`; returns their paths. A file is rewritten only when its content changed."""
    cluster = Ldf.load(ldf)
    header_path, source_path = generated_files(ldf, out_dir)
    header, source = render(cluster, ldf.name, header_path.name, node)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in ((header_path, header), (source_path, source)):
        _write_if_changed(path, text)
    return header_path, source_path


def render(
    cluster: Ldf, ldf_name: str, header_name: str, node: str | None = None
) -> tuple[str, str]:
    """The header's and the source's text (`ldf_name` for the banner, `header_name` for the
    source's #include)."""
    node = cluster.master if node is None else node
    if node not in cluster.nodes:
        raise LdfError(f"{cluster.source}: no node named {node!r} to generate the C tables for "
                       f"(nodes: {', '.join(cluster.nodes)})")  # fmt: skip
    header, source = _Writer(cluster, node).render(ldf_name, header_name)
    digest = ", ".join(f"0x{b:02X}" for b in tables_digest(cluster, node))
    end = header.rindex("#endif")
    header = (f"{header[:end]}/* What these tables say, for the harness to check the firmware "
              f"against an LDF. */\nextern const uint8_t {DIGEST}[{DIGEST_SIZE}];\n\n"
              f"{header[end:]}")  # fmt: skip
    source += f"\nconst uint8_t {DIGEST}[{DIGEST_SIZE}] = {{{digest}}};\n"
    return header, source


def tables_digest(cluster: Ldf, node: str | None = None) -> bytes:
    """A digest of everything the tables for `node` hold (frames, schedules, signals), apart
    from file names: the generated source carries it as `lin_tables_digest`, so the harness
    can tell whether a firmware was built from a given LDF."""
    header, source = _Writer(cluster, cluster.master if node is None else node).render("", "")
    return hashlib.sha256(f"{header}\0{source}".encode()).digest()[:DIGEST_SIZE]


@dataclass(slots=True)
class _Writer:
    cluster: Ldf
    node: str
    defined: dict[str, str] = field(default_factory=dict)  # macro or array -> what it is for
    header: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)

    def render(self, ldf_name: str, header_name: str) -> tuple[str, str]:
        cluster = self.cluster
        guard = re.sub(r"\W", "_", header_name, flags=re.ASCII).upper()
        banner = (f"/* Generated from {ldf_name} by harness.ldf_codegen, as node {self.node} "
                  f"sees the cluster: do not edit. */")  # fmt: skip
        for fixed in (guard, *_FIXED):
            self.claim(fixed, "the header's own")
        frames = {name: self.name("frame", name, "LIN_FRAME_") for name in cluster.frames}
        tables = {name: self.name("schedule table", name, "LIN_SCHEDULE_")
                  for name in cluster.schedules}  # fmt: skip
        self.header += [
            banner,
            f"#ifndef {guard}",
            f"#define {guard}",
            "",
            "#include <stdint.h>",
            "",
            f"#define LIN_BITRATE {cluster.bitrate}u",
            f"#define LIN_TIME_BASE_US {_micros(cluster.time_base_ms)}u",
            "",
            f"/* A frame's direction, seen from {self.node}. */",
            "enum { LIN_PUBLISH = 0, LIN_SUBSCRIBE = 1, LIN_IGNORE = 2 };",
            "enum { LIN_UNCONDITIONAL = 0, LIN_EVENT_TRIGGERED = 1, LIN_DIAGNOSTIC = 2 };",
            "",
            "typedef struct {",
            "    uint8_t id;        /* the frame ID, 0..0x3F */",
            "    uint8_t pid;       /* the protected ID: the frame ID with its parity bits */",
            "    uint8_t length;    /* data bytes, 1..8 */",
            "    uint8_t direction; /* LIN_PUBLISH, LIN_SUBSCRIBE or LIN_IGNORE */",
            "    uint8_t enhanced;  /* 1: the enhanced checksum (LIN 2.x), 0: the classic one */",
            "    uint8_t kind;      /* LIN_UNCONDITIONAL, LIN_EVENT_TRIGGERED or LIN_DIAGNOSTIC */",
            "} lin_frame_t;",
            "",
            "typedef struct {",
            "    uint8_t frame;     /* index into lin_frames */",
            "    uint32_t delay_us; /* the slot's length */",
            "} lin_slot_t;",
            "",
            "typedef struct {",
            "    const lin_slot_t *slots;",
            "    uint16_t length;",
            "} lin_schedule_t;",
            "",
            f"#define LIN_FRAME_COUNT {len(frames)}u",
        ]
        self.source += [banner, f'#include "{header_name}"', "",
                        "const lin_frame_t lin_frames[LIN_FRAME_COUNT] = {"]  # fmt: skip
        for index, (name, macro) in enumerate(frames.items()):
            frame = cluster.frames[name]
            self.header.append(f"#define {macro} {index}u /* {name} */")
            self.source.append(
                f"    [{macro}] = {{.id = 0x{frame.frame_id:02X}u, "
                f".pid = 0x{protected_id(frame.frame_id):02X}u, .length = {frame.length}u, "
                f".direction = {self.direction(frame)}, .enhanced = {int(frame.enhanced)}u, "
                f".kind = {_KINDS[frame.kind]}}},"
            )
        self.header += ["extern const lin_frame_t lin_frames[LIN_FRAME_COUNT];", "",
                        f"#define LIN_SCHEDULE_COUNT {len(tables)}u"]  # fmt: skip
        self.source.append("};")
        for index, (name, macro) in enumerate(tables.items()):
            slots = cluster.schedules[name]
            array = macro.lower()
            self.claim(f"{macro}_LENGTH", f"schedule table {name}")
            self.header += [f"#define {macro} {index}u /* {name} */",
                            f"#define {macro}_LENGTH {len(slots)}u",
                            f"extern const lin_slot_t {array}[{macro}_LENGTH];"]  # fmt: skip
            self.source += ["", f"const lin_slot_t {array}[{macro}_LENGTH] = {{"]
            self.source += [f"    {{{frames[s.frame]}, {_micros(s.delay_ms)}u}}," for s in slots]
            self.source.append("};")
        if tables:
            self.header.append("extern const lin_schedule_t lin_schedules[LIN_SCHEDULE_COUNT];")
            self.source += ["", "const lin_schedule_t lin_schedules[LIN_SCHEDULE_COUNT] = {"]
            self.source += [f"    [{m}] = {{{m.lower()}, {m}_LENGTH}}," for m in tables.values()]
            self.source.append("};")
        self.signals(frames)
        events = [f for f in cluster.frames.values() if f.collision_table in tables]
        if events:
            self.header += ["", "/* The schedule that resolves an event-triggered frame's "
                            "collisions. */"]  # fmt: skip
        for frame in events:
            macro = self.name("event-triggered frame", frame.name, "LIN_EVENT_", "_RESOLVES")
            self.header.append(f"#define {macro} {tables[frame.collision_table or '']}")
        self.header += ["", f"#endif /* {guard} */"]
        return "\n".join(self.header) + "\n", "\n".join(self.source) + "\n"

    def signals(self, frames: dict[str, str]) -> None:
        cluster = self.cluster
        carried: dict[str, list[LdfSignal]] = {name: [] for name in frames}
        loose: list[LdfSignal] = []
        for signal in cluster.signals.values():
            if len(signal.placements) > 1:
                where = ", ".join(frame for frame, _ in signal.placements)
                raise LdfError(f"{cluster.source}: signal {signal.name} is carried by several "
                               f"frames ({where}); the C tables give a signal one")  # fmt: skip
            if signal.placements:
                carried[signal.placements[0][0]].append(signal)
            else:
                loose.append(signal)
        groups = [(f"{name}", sorted(signals, key=lambda s: s.placements[0][1]))
                  for name, signals in carried.items() if signals]  # fmt: skip
        if loose:
            groups.append(("carried by no frame", loose))
        for title, signals in groups:
            self.header += ["", f"/* {title} */"]
            for signal in signals:
                self.signal(signal, frames)

    def signal(self, signal: LdfSignal, frames: dict[str, str]) -> None:
        macro = self.name("signal", signal.name, "LIN_SIGNAL_")
        for suffix in ("_FRAME", "_BIT", "_WIDTH", "_INIT"):
            self.claim(macro + suffix, f"signal {signal.name}")
        if signal.placements:
            frame, bit = signal.placements[0]
            self.header += [f"#define {macro}_FRAME {frames[frame]}", f"#define {macro}_BIT {bit}u"]
        self.header.append(f"#define {macro}_WIDTH {signal.width}u")
        if isinstance(signal.init, bytes):
            init = "{" + ", ".join(f"0x{b:02X}u" for b in signal.init) + "}"
        else:
            init = f"{signal.init}u"
        self.header.append(f"#define {macro}_INIT {init}")
        plain = macro.removeprefix("LIN_SIGNAL_")
        for raw, text in signal.logical:
            if text is not None:
                what = f"logical value {raw} of {signal.name}"
                value = self.name(what, text, f"LIN_{plain}_")
                self.header.append(f"#define {value} {raw}u")

    def direction(self, frame: LdfFrame) -> str:
        if self.node in frame.publishers:
            return "LIN_PUBLISH"
        return "LIN_SUBSCRIBE" if self.node in frame.subscribers else "LIN_IGNORE"

    def name(self, what: str, name: str, prefix: str, suffix: str = "") -> str:
        """`prefix` + `name` in UPPER_SNAKE + `suffix`, claimed for `what`."""
        spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
        spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
        upper = re.sub(r"[^A-Za-z0-9]+", "_", spaced).strip("_").upper()
        if not upper or not spaced.isascii():
            raise LdfError(f"{self.cluster.source}: {what} {name!r} makes no C identifier "
                           f"({prefix}...{suffix}): use letters, digits and _")  # fmt: skip
        macro = f"{prefix}{upper}{suffix}"
        self.claim(macro, f"{what} {name!r}")
        return macro

    def claim(self, macro: str, owner: str) -> None:
        first = self.defined.setdefault(macro, owner)
        if first != owner:
            raise LdfError(f"{self.cluster.source}: {owner} and {first} both become the C name "
                           f"{macro}")  # fmt: skip


def _micros(milliseconds: float) -> int:
    return round(milliseconds * 1000)


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
