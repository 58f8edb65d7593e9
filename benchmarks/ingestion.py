"""Ingestion + validation of one file, part by part, against the pyarrow parse and against a floor.

    python -m benchmarks.ingestion [FILE.csv] [--rows 322000] [--repeats 3]

Every part is timed in this process, best of `repeats`, on the same file:
  - `pyarrow.csv.read_csv` of the file: the issue's yardstick (types inferred, every core);
  - the floor: what any lossless design with a raw text table and a typed valid table must do,
    with pyarrow alone and nothing checked (parse every value as text, write the raw table, read
    it back, write it again as the valid table);
  - ours, as the two steps run them: the content hash (the partition key); the read (the line
    scan for UTF-8, quotes and where each record starts, the parse and the raw table, with the
    independent record count by Python's csv module beside it in a child process); validation
    (read the raw table, the pandera rules, write the valid and quarantine tables). The parts the
    read overlaps are also timed alone.
`python -m benchmarks` runs `measure_parts` on its default file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PARTS = {  # ours, one after another as the two steps run them; their sum is compared
    "hash": "content hash (the partition key)",
    "read": "line scan + parse as text + raw table, the independent count beside them in a child process",
    "validation_read": "validation: read the raw table",
    "validation_rules": "validation: typing and the pandera rules",
    "validation_write": "validation: write the valid and quarantine tables",
}
ALONE = {  # what `read` overlaps, each timed on its own (not summed)
    "scan": "line scan alone (UTF-8, quotes, where each record starts)",
    "parse_and_raw_table": "parse as text + raw table alone",
    "independent_count": "independent record count alone (Python's csv module)",
}


def _floor(path: Path, columns: list[str], work: Path) -> None:
    text = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}),
    )
    pq.write_table(text, work / "floor_raw.parquet")
    pq.write_table(pq.read_table(work / "floor_raw.parquet"), work / "floor_valid.parquet")


def measure_parts(path: Path, repeats: int = 3, as_of: str = "2026-01-01") -> dict:
    """Seconds of each part (best of `repeats`), their sum, the floor and the ratios."""
    from crime_pipeline.lib.ingest.raw_csv import RawCsv, sha256_file, stream_raw_csv
    from crime_pipeline.lib.ingest.record_count import count_csv_records, counting_records
    from crime_pipeline.lib.ingest.stages import write_raw_table
    from crime_pipeline.lib.lake.parquet import iter_parquet, parquet_batch_writer
    from crime_pipeline.lib.validate.validate import validate_incidents

    best: dict[str, float] = {}

    def timed(name: str, fn):
        started = time.perf_counter()
        out = fn()
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
        return out

    with tempfile.TemporaryDirectory(prefix="ingest-parts-") as tmp:
        work = Path(tmp)
        raw_path = work / "raw.parquet"
        with pacsv.open_csv(path) as reader:
            columns = reader.schema.names
        for _ in range(repeats):
            timed("pyarrow_read_csv", lambda: pacsv.read_csv(path))
            timed("floor", lambda: _floor(path, columns, work))
            timed("hash", lambda: sha256_file(path))
            raw = timed("scan", lambda: RawCsv(path))
            timed("parse_and_raw_table", lambda: write_raw_table(raw, raw_path, path.name, "0" * 64))
            timed("independent_count", lambda: count_csv_records(path))

            def read() -> None:  # as raw_incidents does it
                with counting_records(path) as counted:
                    stream_raw_csv(path, lambda raw: write_raw_table(raw, raw_path, path.name, "0" * 64))
                    counted()

            timed("read", read)
            batches = timed("validation_read", lambda: [b.to_pandas() for b in iter_parquet(raw_path)])
            results = timed("validation_rules", lambda: [validate_incidents(b, as_of=as_of) for b in batches])

            def write() -> None:
                with (
                    parquet_batch_writer(work / "valid.parquet") as valid,
                    parquet_batch_writer(work / "quarantine.parquet") as quarantine,
                ):
                    for result in results:
                        valid.write(result.valid)
                        quarantine.write(result.quarantine)

            timed("validation_write", write)
        rows = pq.ParquetFile(raw_path).metadata.num_rows
    seconds = {k: round(v, 3) for k, v in best.items()}  # the sum and ratios are of the figures shown
    ours = round(sum(seconds[k] for k in PARTS), 3)
    return {
        "file": path.name,
        "rows": rows,
        "repeats": repeats,
        "seconds": seconds,
        "ours_s": ours,
        "ratio_to_pyarrow": round(ours / seconds["pyarrow_read_csv"], 2),
        "floor_to_pyarrow": round(seconds["floor"] / seconds["pyarrow_read_csv"], 2),
        "ratio_to_floor": round(ours / seconds["floor"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingestion", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, help="a CSV export (default: a generated one of --rows)")
    parser.add_argument("--rows", type=int, default=322_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.file:
        result = measure_parts(args.file, args.repeats)
    else:
        from crime_pipeline.lib import synthetic

        with tempfile.TemporaryDirectory(prefix="ingest-file-") as tmp:
            path = Path(tmp) / f"buffalo_synthetic_{args.rows}.csv"
            synthetic.write_export_files([path], args.rows)
            result = measure_parts(path, args.repeats)
    width = max(map(len, result["seconds"]))
    for name, seconds in result["seconds"].items():
        print(f"{name:<{width}}  {seconds:8.3f} s  {seconds / result['seconds']['pyarrow_read_csv']:6.1f}x")
    print(json.dumps({k: v for k, v in result.items() if k != "seconds"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
