"""A model's metadata JSON (`models/<name>.json`): sealed by its own hash, read with bounded work.

The metadata names the weights file and its SHA-256, and it sizes the network, so it is covered
too: `metadata_sha256` is the SHA-256 of the canonical JSON of every other entry (sorted keys, no
spaces). A file edited after it was saved, by hand or by a half-done copy, is refused. Reading is
bounded before anything is built from the file: its size (MAX_METADATA_BYTES), its nesting (Python's
JSON reader stops at its recursion limit: refused in one sentence) and every size field (LIMITS).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import reprlib
import stat
from pathlib import Path

from crime_pipeline.lib.lake import storage

SEAL = "metadata_sha256"
MAX_METADATA_BYTES = 128 * 2**20  # an MLP's JSON holds its place encoding: about 5 MB for Buffalo
MAX_WEIGHTS_BYTES = 2**30  # the largest (gbdt) is about 6 MB
# Upper bounds of every field that sizes what loading or scoring allocates (today: 17 features,
# 9 classes, 129 MLP inputs, 1 member, no cell embeddings).
LIMITS = {
    "features": 256,
    "classes": 1_000,
    "mlp.n_inputs": 4_096,
    "mlp.n_offset": 1_000,
    "mlp.members": 16,
    "mlp.embed_dim": 256,
    "mlp.vocab_sizes": 16,  # embedding tables
    "mlp.vocab_sizes[]": 2_000_000,  # rows of one table
    "mlp.input_encoder.fourier": 32,
}
MLP_KINDS = ("mlp", "mlp_weighted")

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 6, 4, 60, 60


class MetadataError(RuntimeError):
    """Raised with the problem only; the caller adds the file and what to do."""


def shown(value) -> str:
    """A value for an error message, built only as far as shown (never the whole text of a huge list)."""
    text = value[:60] if isinstance(value, str) else _SHORT.repr(value)[:60]
    return repr(text)


def _canonical(meta: dict) -> bytes:
    body = {k: v for k, v in meta.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def seal_metadata(meta: dict) -> dict:
    """`meta` as it will read back from JSON, with its `metadata_sha256` (replacing any earlier one)."""
    plain = json.loads(json.dumps({k: v for k, v in meta.items() if k != SEAL}, default=str))  # order kept
    return {**plain, SEAL: hashlib.sha256(_canonical(plain)).hexdigest()}


def read_bounded(path: Path, limit: int) -> bytes:
    """A lake file's bytes, refusing a symbolic link (never followed), anything but a regular file, and
    a file over `limit` bytes before reading it (MetadataError with the problem)."""
    if storage.is_remote(path):
        if not storage.is_file(path):
            raise MetadataError("is not a regular file")
        data = storage.read_bytes_at_most(path, limit)  # the object's size asked first: never downloaded whole
        if data is None:
            raise MetadataError(f"is over the {limit:,}-byte limit")
    else:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise MetadataError("is a symbolic link (a model is loaded from regular files only)") from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            os.close(fd)
            if not stat.S_ISREG(info.st_mode):
                raise MetadataError("is not a regular file")
            raise MetadataError(f"is {info.st_size:,} bytes, over the {limit:,}-byte limit")
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
    if len(data) > limit:
        raise MetadataError(f"is over the {limit:,}-byte limit")
    return data


def parse_metadata(data: bytes) -> dict:
    """The sealed JSON object in `data`; MetadataError names what is wrong."""
    try:
        meta = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MetadataError(f"is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise MetadataError(f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise MetadataError("nests arrays or objects too deeply to be model metadata") from None
    if not isinstance(meta, dict):
        json_type = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
        raise MetadataError(f"holds a JSON {json_type.get(type(meta), 'null')}, not an object")
    sealed = meta.get(SEAL)
    if sealed is None:
        raise MetadataError(f"has no {SEAL!r} entry (saved by an older version, or written by hand)")
    try:
        actual = hashlib.sha256(_canonical(meta)).hexdigest()
    except (RecursionError, ValueError):
        raise MetadataError("nests arrays or objects too deeply to be model metadata") from None
    if sealed != actual:
        raise MetadataError(f"was edited after it was saved (its content does not match its {SEAL!r})")
    return meta


def _count(meta: dict, field: str, value, low: int = 0) -> int:
    """`value` as a whole number within [low, LIMITS[field]]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetadataError(f"has {field!r} = {shown(value)}, not a whole number")
    if not low <= value <= LIMITS[field]:
        raise MetadataError(f"has {field!r} = {value}, outside {low}..{LIMITS[field]:,}")
    return value


def check_sizes(meta: dict, kind: str) -> None:
    """Every field that sizes an allocation is bounded (LIMITS) before anything is built."""
    _count(meta, "features", len(meta["features"]), 1)
    _count(meta, "classes", len(meta["classes"]), 2)
    if kind not in MLP_KINDS:
        return
    spec = meta.get("mlp")
    if not isinstance(spec, dict):
        raise MetadataError(f"has no 'mlp' object (got {shown(spec)})")
    for key in ("n_inputs", "members", "embed_dim"):
        if key not in spec:
            raise MetadataError(f"has no 'mlp.{key}' entry")
    n_inputs = _count(meta, "mlp.n_inputs", spec["n_inputs"], 1)
    _count(meta, "mlp.members", spec["members"], 1)
    _count(meta, "mlp.embed_dim", spec["embed_dim"])
    _count(meta, "mlp.n_offset", spec.get("n_offset", 0))
    vocab = spec.get("vocab_sizes", [])
    if not isinstance(vocab, list):
        raise MetadataError(f"has 'mlp.vocab_sizes' = {shown(vocab)}, not a list")
    _count(meta, "mlp.vocab_sizes", len(vocab))
    for size in vocab:
        _count(meta, "mlp.vocab_sizes[]", size)
    if n_inputs - len(vocab) - spec.get("n_offset", 0) < 0:
        raise MetadataError("has 'mlp.n_inputs' smaller than its offset columns and cell ids together")
    encoder = spec.get("input_encoder")
    if encoder is not None:
        if not isinstance(encoder, dict):
            raise MetadataError(f"has 'mlp.input_encoder' = {shown(encoder)}, not an object")
        _count(meta, "mlp.input_encoder.fourier", encoder.get("fourier", 0))


def mlp_parameters(meta: dict) -> int:
    """How many float32 parameters the network described by (checked) metadata holds."""
    spec = meta["mlp"]
    vocab, n_offset = spec.get("vocab_sizes", []), spec.get("n_offset", 0)
    embed = spec["embed_dim"] or 8
    n_in = spec["n_inputs"] - len(vocab) - n_offset + embed * len(vocab)
    widths = [n_in, 128, 64, 32, len(meta["classes"])]
    trunk = sum(a * b + b for a, b in zip(widths, widths[1:]))
    return sum((size + 1) * embed for size in vocab) + spec["members"] * trunk
