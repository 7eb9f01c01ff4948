"""One-line reports on what the robust decoder and SCA found (printed by ``src.restore``)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from src.jpeg import MCU_ERROR, MCU_LOST, MCU_RESTART, MCU_RESYNC, Decoded
from src.sca import Compensated


def describe_decode(decoded: Decoded) -> str:
    """One paragraph on what the robust decoder found (size, sampling, MCU grid, resyncs, lost MCUs,
    events)."""
    comps = ", ".join(f"{c.h}x{c.v}" for c in decoded.components)
    status = np.asarray(decoded.mcu_status)
    parts = [
        f"{decoded.width}x{decoded.height}, {len(decoded.components)} component(s) sampled {comps}",
        f"MCU grid {decoded.mcu_cols}x{decoded.mcu_rows} ({decoded.mcu_width}x{decoded.mcu_height} px)",
        f"{int(np.count_nonzero(status & MCU_RESYNC))} resync(s)",
        f"{int(np.count_nonzero(status & MCU_LOST))} of {status.size} MCUs lost",
        f"{int(np.count_nonzero(status & MCU_ERROR))} decoded with errors",
        f"{int(np.count_nonzero(status & MCU_RESTART))} restart(s)",
    ]
    skipped = int(np.asarray(decoded.mcu_skipped_bits).sum())
    if skipped:
        parts.append(f"{skipped} bit(s) skipped")
    kinds = Counter(e.kind for e in decoded.events)
    if kinds:
        parts.append("events: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    else:
        parts.append("no decoder events (the scan decoded cleanly, or errors resynchronised silently)")
    return "; ".join(parts)


def describe_sca(comp: Compensated) -> str:
    """One line on SCA's findings: segments, shifted segments, garbage MCUs, trusted share."""
    shifted = sum(1 for s in comp.segments if s.shift_mcus)
    garbage = sum(int(b) - int(a) for a, b in comp.garbage)
    trust = float(np.mean(comp.trust)) if comp.trust is not None else float("nan")
    return (
        f"SCA {comp.method}: {len(comp.segments)} segment(s), {shifted} shifted, {garbage} garbage MCU(s), "
        f"{100 * trust:.1f}% of pixels trusted"
    )
