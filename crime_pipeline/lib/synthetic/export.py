"""Writing generated exports as CSV: one file at once, or chunk by chunk into one or 12 monthly files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crime_pipeline.lib.lake.atomic import atomic_path
from crime_pipeline.lib.synthetic.generate import GeneratedIncidents, generate_incidents
from crime_pipeline.lib.synthetic.spec import DEFAULT_ROWS, DEFAULT_SEED


def write_export_csv(data: GeneratedIncidents | pd.DataFrame, path: str | Path) -> Path:
    """Write a generated export as CSV (quoting only where needed), atomically."""
    frame = data.frame if isinstance(data, GeneratedIncidents) else data
    table = export_table(frame)
    with atomic_path(path) as tmp:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return Path(path)


def export_table(frame: pd.DataFrame) -> pa.Table:
    """The export as an Arrow table of text columns (missing values as nulls: empty in the CSV)."""
    table = pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None), preserve_index=False)
    return table.cast(pa.schema([pa.field(c, pa.string()) for c in frame.columns]))


# Above this many rows, generation runs in chunks of at most this many (bounded memory: one chunk
# of text columns is about 1 GB). At or below it the output is exactly `generate_incidents`'s.
CHUNK_ROWS = 500_000


def chunk_sizes(rows: int, chunk_rows: int = CHUNK_ROWS) -> list[int]:
    """Rows per chunk: as equal as possible, none above `chunk_rows`."""
    k = max(1, -(-rows // chunk_rows))
    base, extra = divmod(rows, k)
    return [base + (i < extra) for i in range(k)]


def generate_chunks(
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    chunk_rows: int = CHUNK_ROWS,
    city: str | None = None,
    lake_root: str | Path | None = None,
    near_repeat: bool = True,
) -> Iterator[GeneratedIncidents]:
    """`rows` incidents as a sequence of generated chunks, each at most `chunk_rows` long.

    One chunk is exactly `generate_incidents(rows, seed, city)`. With several, chunk i is drawn from
    the seed (seed, i) and its case numbers carry the chunk's number after their first three
    characters ("19-003" + digits in Buffalo), so no two chunks share a case number; each chunk has
    its own re-issued records.
    """
    sizes = chunk_sizes(rows, chunk_rows)
    if len(sizes) == 1:
        yield generate_incidents(rows, seed, city=city, lake_root=lake_root, near_repeat=near_repeat)
        return
    for i, size in enumerate(sizes):
        # default_rng takes a sequence of ints as its seed
        chunk = generate_incidents(size, [seed, i], city=city, lake_root=lake_root, near_repeat=near_repeat)
        case = chunk.frame["Case Number"]
        chunk.frame["Case Number"] = case.str.slice(0, 3) + f"{i:03d}" + case.str.slice(3)
        yield chunk


def write_export_files(
    paths: list[Path],
    rows: int,
    seed: int = DEFAULT_SEED,
    chunk_rows: int = CHUNK_ROWS,
    city: str | None = None,
    lake_root: str | Path | None = None,
    near_repeat: bool = True,
) -> list[int]:
    """Generate `rows` incidents chunk by chunk into one CSV, or into 12 by the month of Created At.

    With 12 paths, file m holds every record created in calendar month m (of any year), as monthly
    exports would: a re-issued record usually lands in a later month's file than its original.
    Only layouts with a Created At column split by month. Returns the rows written per file.
    Each file is written atomically.
    """
    if len(paths) not in (1, 12):
        raise ValueError("write one file or 12 monthly files")
    if len(paths) == 1 and len(chunk_sizes(rows, chunk_rows)) == 1:
        # byte-identical to the one-shot writer
        write_export_csv(
            generate_incidents(rows, seed, city=city, lake_root=lake_root, near_repeat=near_repeat), paths[0]
        )
        return [rows]
    counts = [0] * len(paths)
    options = pacsv.WriteOptions(quoting_style="needed")
    with contextlib.ExitStack() as stack:
        writers = None
        for chunk in generate_chunks(rows, seed, chunk_rows, city, lake_root, near_repeat):
            table = export_table(chunk.frame)
            del chunk
            if writers is None:  # the city's layout: the first chunk's columns, all text
                writers = [
                    stack.enter_context(
                        pacsv.CSVWriter(stack.enter_context(atomic_path(p)), table.schema, write_options=options)
                    )
                    for p in paths
                ]
            if len(paths) == 1:
                writers[0].write_table(table)
                counts[0] += table.num_rows
                continue
            if "Created At" not in table.column_names:
                raise ValueError(f"12 monthly files need a Created At column; the {city} layout has none")
            month = pc.cast(pc.utf8_slice_codeunits(table.column("Created At"), 0, 2), pa.int64())
            for m, writer in enumerate(writers, start=1):
                part = table.filter(pc.equal(month, m))
                writer.write_table(part)
                counts[m - 1] += part.num_rows
        if sum(counts) != rows:  # every record has a Created At month; anything else is a bug here
            raise AssertionError(f"wrote {sum(counts)} of {rows} generated rows")
    return counts
