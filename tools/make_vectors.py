"""Write tests/vectors/protocol.json: golden vectors of the link protocol.

Made with the host encoder (thermoguard.protocol, zlib's CRC); the firmware tests prove
the device encoder and command reader produce and accept exactly these bytes, the host
tests prove the decoder gives exactly these fields. Run after a protocol change:

    .venv/bin/python tools/make_vectors.py
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from tgfw import codes
from thermoguard import protocol as p

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "vectors" / "protocol.json"
NONE32 = p.INT32_MIN
Q = 1024


def q10(c: float) -> int:
    return round(c * Q)


def channel(temp=NONE32, cj=NONE32, fault=0, warn=0, trip=0, rate=NONE32, dose_hi=0, dose_lo=0):
    return dict(temp=temp, cj=cj, fault=fault, warn=warn, trip=trip, rate=rate, dose_hi=dose_hi,
                dose_lo=dose_lo)


COLUMNS = ("temp", "cj", "fault", "warn", "trip", "rate", "dose_hi", "dose_lo")


def telemetry(name, chans, seq=1, t_s=0, t_us=0, state=codes.DISARMED, flags=p.FL_CONFIG_VALID,
              global_causes=0, first_channel=0, first_cause=0, first_fault=0, max_late_us=0, overruns=0,
              dropped=0, config_hash=0x12345678):
    inputs = dict(seq=seq, t_s=t_s, t_us=t_us, state=state, flags=flags, global_causes=global_causes,
                  first_channel=first_channel, first_cause=first_cause, first_fault=first_fault,
                  max_late_us=max_late_us, overruns=overruns, dropped=dropped, config_hash=config_hash,
                  n_channels=len(chans))
    for col in COLUMNS:
        inputs[col] = [c[col] for c in chans]
    args = [inputs[k] for k in ("seq", "t_s", "t_us", "state", "flags", "global_causes", "first_channel",
                                "first_cause", "first_fault", "max_late_us", "overruns", "dropped")]
    args += [inputs[c] for c in COLUMNS]
    payload = p.telemetry_payload(*args, config_hash=config_hash)
    return vector(name, inputs, payload)


def vector(name, inputs, payload):
    wire = p.encode_frame(payload)
    item = p.decode_frame(wire[1:-1])
    return dict(name=name, inputs=inputs, payload_hex=payload.hex(), wire_hex=wire.hex(),
                decoded=dataclasses.asdict(item))


def telemetry_vectors():
    healthy = channel(temp=q10(37.25), cj=q10(24.5), rate=q10(0.5), dose_hi=3, dose_lo=0)
    return [
        telemetry("one channel, healthy, disarmed", [healthy], seq=0, t_s=0, t_us=100000),
        telemetry(
            "one channel, armed, interlock on with readback",
            [channel(temp=q10(48.125), cj=q10(25.0), warn=codes.C_HIGH, rate=q10(1.75), dose_hi=1024 * 12,
                     dose_lo=0x8000)],
            seq=1234, t_s=61, t_us=999999, state=codes.ARMED,
            flags=(p.FL_INTERLOCK_ON | p.FL_READBACK_HIGH | p.FL_HAS_READBACK | p.FL_HOST_OK
                   | p.FL_CONFIG_VALID),
            max_late_us=850,
        ),
        telemetry(
            "eight channels, negative temperatures, faults, dose in both parts",
            [
                channel(temp=q10(-12.5), cj=q10(-3.0), rate=q10(-0.25), dose_hi=0, dose_lo=1),
                channel(fault=codes.F_OPEN, temp=q10(1300.0), cj=q10(25.0), rate=q10(5.0), trip=codes.C_FAULT,
                        dose_hi=77, dose_lo=65535),
                channel(temp=q10(-200.0), cj=q10(-40.0), rate=NONE32),
                channel(fault=codes.F_ZEROS, temp=0, cj=0, rate=0, trip=codes.C_FAULT),
                channel(temp=q10(95.0), cj=q10(125.0), trip=codes.C_HIGH | codes.C_RATE, rate=q10(12.0),
                        dose_hi=(1 << 31) - 1, dose_lo=12345),
                channel(fault=codes.F_STALE),
                channel(),  # no reading yet
                channel(temp=q10(44.999), cj=q10(23.97), warn=codes.C_HIGH | codes.C_DOSE, rate=q10(0.01),
                        dose_hi=40 * 1024, dose_lo=0x4000),
            ],
            seq=2**30 - 1, t_s=(1 << 30) - 1, t_us=500000, state=codes.TRIPPED, flags=p.FL_CONFIG_VALID,
            first_channel=1, first_cause=codes.C_FAULT, first_fault=codes.F_OPEN, max_late_us=123456,
            overruns=3, dropped=17, config_hash=0xDEADBEEF,
        ),
        telemetry(
            "two channels, tripped on a global cause (host heartbeat), seq wrapped to 0",
            [healthy, channel(temp=q10(45.0), cj=q10(25.03125), trip=codes.C_HIGH, rate=q10(2.0))],
            seq=0, t_s=3600, t_us=0, state=codes.TRIPPED, flags=p.FL_HAS_READBACK | p.FL_CONFIG_VALID,
            global_causes=codes.G_HOST | codes.G_OPERATOR, first_channel=codes.GLOBAL,
            first_cause=codes.G_HOST,
            config_hash=0xFFFFFFFF,
        ),
        telemetry(
            "no channels, boot, no valid configuration",
            [], seq=0, t_s=0, t_us=0, state=codes.BOOT, flags=0, global_causes=codes.G_CONFIG,
            first_channel=codes.GLOBAL, first_cause=codes.G_CONFIG, config_hash=0,
        ),
    ]


def event_vectors():
    cases = [
        ("boot", 0, 0, 1000, p.EV_BOOT, codes.DISARMED,
         "fw=0.1.0 board=virtual config=1a2b3c4d state=DISARMED"),
        ("trip with two causes", 77, 12, 345678, p.EV_TRIP, codes.TRIPPED, "foramen:high,tip:open"),
        ("reset with reason", 78, 30, 0, p.EV_RESET, codes.DISARMED, "probe repositioned"),
        ("config change", 5, 2, 1, p.EV_CONFIG, codes.DISARMED, "sample_hz=8 foramen.high_c=44.5"),
        ("refused, non-ASCII text", 9, 3, 2, p.EV_REFUSED, codes.DISARMED, "ARM: tip: open (Δ ≥ 5 °C)"),
        ("warning, empty text", 10, 4, 3, p.EV_WARNING, codes.ARMED, ""),
        ("text truncated at a character boundary", 11, 5, 4, p.EV_WARNING, codes.ARMED, "é" * 200),
    ]
    out = []
    for name, seq, t_s, t_us, ev, state, text in cases:
        inputs = dict(seq=seq, t_s=t_s, t_us=t_us, event=ev, state=state, text=text)
        out.append(vector(name, inputs, p.event_payload(seq, t_s, t_us, ev, state, text)))
    return out


def reply_vectors():
    cases = [
        ("ok", 100, 10, 0, "OK ARM"),
        ("ok with details", 101, 10, 100000, "OK GET sample_hz=10"),
        ("error", 102, 10, 200000, "ERR RESET missing argument: RESET needs a reason"),
        ("long reply truncated", 103, 10, 300000, "OK GET " + "x" * 300),
    ]
    out = []
    for name, seq, t_s, t_us, text in cases:
        inputs = dict(seq=seq, t_s=t_s, t_us=t_us, text=text)
        out.append(vector(name, inputs, p.reply_payload(seq, t_s, t_us, text)))
    return out


def with_crc(text: str) -> bytes:
    return (f"{text}*{p.command_crc(text)}").encode()


def raw_with_crc(text: bytes) -> bytes:
    return text + b"*" + (b"%08x" % p.crc32(text))


def command_vectors():
    good = [
        ("HB", ""), ("INFO", ""), ("ARM", ""), ("DISARM", ""), ("RESET", "probe repositioned"),
        ("TRIP", ""), ("TRIP", "operator pressed stop"), ("GET", ""), ("GET", "sample_hz"),
        ("SET", "sample_hz=8"), ("SET", "foramen.high_c=44.5 stale_ms=250"),
    ]
    out = []
    for verb, args in good:
        line = p.encode_command(verb, args)
        result = "HB" if verb == "HB" else "LINE"
        name = f"{verb} {args}" if args else verb
        out.append(dict(name=name, line_hex=line.hex(), result=result, verb=verb, args=args,
                        crc=line[-9:-1].decode()))
    ok_crlf = with_crc("ARM") + b"\r\n"
    out.append(dict(name="CRLF line end", line_hex=ok_crlf.hex(), result="LINE", verb="ARM", args=""))
    blank = b"\r\n"
    out.append(dict(name="blank line is ignored", line_hex=blank.hex(), result="NONE"))
    bad = [
        ("wrong checksum", b"ARM*00000000\n", p.E_CHECKSUM),
        ("upper-case checksum", with_crc("ARM").upper() + b"\n", p.E_CHECKSUM),
        ("checksum of 7 digits", with_crc("ARM")[:-1] + b"\n", p.E_CHECKSUM),
        ("bit flip in the verb", b"ASM" + with_crc("ARM")[3:] + b"\n", p.E_CHECKSUM),
        ("no checksum", b"ARM\n", p.E_NO_CHECKSUM),
        ("line too long", with_crc("SET " + " ".join(f"k{i}=1" for i in range(60))) + b"\n", p.E_TOO_LONG),
        ("Ctrl-C in a line", b"AR\x03M" + with_crc("ARM")[3:] + b"\n", p.E_CONTROL),
        ("NUL in a line", b"\x00" + with_crc("ARM") + b"\n", p.E_CONTROL),
        ("CR inside a line", b"AR\rM" + with_crc("ARM")[3:] + b"\n", p.E_CONTROL),
        ("not ASCII (UTF-8)", raw_with_crc("RESET café".encode()) + b"\n", p.E_NOT_ASCII),
        ("lower-case verb", with_crc("arm") + b"\n", p.E_UNKNOWN_VERB),
        ("unknown verb", with_crc("FIRE") + b"\n", p.E_UNKNOWN_VERB),
        ("RESET without reason", with_crc("RESET") + b"\n", p.E_MISSING_ARGUMENT),
        ("SET without pairs", with_crc("SET") + b"\n", p.E_MISSING_ARGUMENT),
        ("SET with a bare word", with_crc("SET sample_hz") + b"\n", p.E_BAD_ARGUMENT),
        ("GET with two keys", with_crc("GET a b") + b"\n", p.E_BAD_ARGUMENT),
        ("INFO with an argument", with_crc("INFO now") + b"\n", p.E_UNEXPECTED_ARGUMENT),
        ("HB with an argument", with_crc("HB 1") + b"\n", p.E_UNEXPECTED_ARGUMENT),
    ]
    for name, line, kind in bad:
        try:
            p.parse_command(line)
        except p.CommandError as e:
            assert e.kind == kind, (name, e.kind, kind)
            message = str(e)
        else:
            raise AssertionError("accepted: " + name)
        out.append(dict(name=name, line_hex=line.hex(), result="BAD", error=kind, message=message))
    return out


def build() -> dict:
    return dict(
        about="Golden vectors of the thermoguard link protocol (docs/protocol.md). "
        "Generated by tools/make_vectors.py; do not edit by hand.",
        version=p.VERSION,
        telemetry=telemetry_vectors(),
        events=event_vectors(),
        replies=reply_vectors(),
        commands=command_vectors(),
    )


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=True) + "\n"


def main() -> int:
    OUT.write_text(render())
    print("wrote", OUT.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
