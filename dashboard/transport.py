"""The shown matrix as quantised bytes: what the heatmap sends to the browser (pure numpy).

    encode(values float [..., rows, cols], bits=16) -> {"dtype", "shape", "step", "b64"}
    decode(encoded) -> float32 [..., rows, cols]   (NaN where masked; tests and exports)

Each value v >= 0 becomes the integer code round(v / step), little-endian uint8 (bits=8) or
uint16 (bits=16), base64 text in the JSON; step = (largest finite value) / (top code - 1), so a
decoded value is within step / 2 of the engine's. The top code (255 / 65535) marks a masked cell
(NaN: a key the query cannot attend to), drawn empty. assets/heatmap.js decodes it the same way
(`attnHeatmap.decode`). A 512 x 512 head is 512 KiB of uint16 (about 700 KB as base64, before
gzip) where the JSON text of its decimals was ~2.5 MB.
"""
from __future__ import annotations

import base64

import numpy as np

DTYPES = {8: ("u8", np.uint8), 16: ("u16", np.uint16)}


def encode(values, bits: int = 16) -> dict:
    """Quantise float values (>= 0, NaN = masked) to `bits`-bit codes; see the module docstring."""
    name, dtype = DTYPES[bits]
    v = np.asarray(values, dtype=np.float32)
    top = np.iinfo(dtype).max
    finite = np.isfinite(v)
    vmax = float(v[finite].max()) if finite.any() else 0.0
    step = max(vmax, 1e-12) / (top - 1)
    codes = np.full(v.shape, top, dtype=dtype)
    codes[finite] = np.clip(np.rint(v[finite] / step), 0, top - 1).astype(dtype)
    raw = codes.astype(codes.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"dtype": name, "shape": list(v.shape), "step": step, "b64": base64.b64encode(raw).decode("ascii")}


def decode(encoded: dict) -> np.ndarray:
    """float32 values of `encode`'s output (NaN where masked)."""
    dtype = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2")}[encoded["dtype"]]
    codes = np.frombuffer(base64.b64decode(encoded["b64"]), dtype=dtype).reshape(encoded["shape"])
    out = codes.astype(np.float32) * np.float32(encoded["step"])
    out[codes == np.iinfo(dtype).max] = np.nan
    return out


def step_text(step: float, bits: int) -> str:
    """"16-bit, step 1.5e-05" for hover texts and notes."""
    return f"{bits}-bit, step {step:.2g}"
