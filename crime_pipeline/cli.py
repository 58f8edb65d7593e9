"""The `crime-pipeline` command: generate the built-in data set, run the pipeline, open the UI."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from crime_pipeline.instance import prepare_dagster_home
from crime_pipeline.lib.lake.layout import PROJECT_ROOT, default_lake_root


def cmd_generate(args: argparse.Namespace) -> int:
    from crime_pipeline.lib import synthetic
    from crime_pipeline.lib.ingest.raw_csv import sha256_file
    from crime_pipeline.lib.lake.layout import LakeLayout
    from crime_pipeline.lib.lake.ledger import record_generated
    from crime_pipeline.lib.lake.storage import lake_path

    layout = LakeLayout(lake_path(default_lake_root())).ensure()
    out = (
        lake_path(args.out) if args.out else layout.incoming / f"{args.city}_synthetic_{args.rows}_seed{args.seed}.csv"
    )
    paths = [out] if args.files == 1 else [out.with_name(f"{out.stem}_month{m:02d}{out.suffix}") for m in range(1, 13)]
    started = time.perf_counter()
    counts = synthetic.write_export_files(
        paths,
        args.rows,
        args.seed,
        city=args.city,  # in chunks: bounded memory
        lake_root=layout.root,
        near_repeat=not args.no_near_repeat,
    )
    version = synthetic.generator_version(args.city, lake_root=layout.root, near_repeat=not args.no_near_repeat)
    for path, rows in zip(paths, counts):
        record_generated(
            layout,
            sha256_file(path),
            {"file": path.name, "rows": rows, "seed": args.seed, "city": args.city, "generator_version": version},
        )
    where = out if args.files == 1 else f"{len(paths)} monthly files {paths[0].name} .. {paths[-1].name}"
    seconds = time.perf_counter() - started
    print(f"generated {args.rows:,} {args.city} incidents (seed {args.seed}) in {seconds:.1f}s -> {where}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from crime_pipeline.orchestrate import run_pipeline

    prepare_dagster_home()
    return run_pipeline(force=args.force, echo=print)


def cmd_forecast(args: argparse.Namespace) -> int:
    from crime_pipeline.forecast_runs import run_forecasts

    prepare_dagster_home()
    settings = {
        key: value
        for key, value in {
            "events_source": args.events_source,
            "city": args.city,
            "cell_m": args.cell_m,
            "test_weeks": args.test_weeks,
            "test_from": args.test_from,
        }.items()
        if value is not None
    }
    return run_forecasts(backfill=args.backfill, weeks=args.weeks, settings=settings or None, echo=print)


def cmd_predict(args: argparse.Namespace) -> int:
    from crime_pipeline.lib.ingest.raw_csv import UnreadableFileError
    from crime_pipeline.lib.lake.atomic import write_json, write_text
    from crime_pipeline.lib.lake.layout import LakeLayout
    from crime_pipeline.lib.lake.storage import check_reachable, is_remote, lake_path
    from crime_pipeline.lib.models.artifacts import ArtifactError
    from crime_pipeline.lib.models.scoring import csv_safe, predictions_geojson, score_csv

    layout = LakeLayout(lake_path(default_lake_root()))
    if is_remote(layout.root):
        check_reachable(layout.root)
    try:
        scored = score_csv(Path(args.input), args.model, layout.models, args.city, lake_root=layout.root)
        if args.format == "geojson":
            write_json(args.out, predictions_geojson(scored.predictions))
        else:
            write_text(args.out, csv_safe(scored.predictions).to_csv(index=False))
    except (ArtifactError, UnreadableFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"scored {len(scored.predictions)} incidents with the {scored.city} {args.model} model "
        f"({scored.model_version}) -> {args.out}"
    )
    if scored.training_note:
        print(scored.training_note)
    if len(scored.rejected):
        print(f"{len(scored.rejected)} rows failed validation and were not scored:", file=sys.stderr)
        for line, rules in scored.rejected.head(20).itertuples(index=False):
            print(f"  line {line}: {rules}", file=sys.stderr)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    home = prepare_dagster_home()
    print(f"DAGSTER_HOME={home}; opening the UI on http://127.0.0.1:{args.port}")
    dg = Path(sys.executable).parent / "dg"  # the venv's, even when the venv is not activated
    os.chdir(PROJECT_ROOT)  # `dg dev` finds the project ([tool.dg] in pyproject.toml) from here
    os.execv(dg, [str(dg), "dev", "--host", "127.0.0.1", "--port", str(args.port)])
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    from crime_pipeline.lib import synthetic
    from crime_pipeline.lib.cities.profiles import ProfileError, profiles

    try:
        cities = sorted(profiles(default_lake_root()))  # the lake the commands work on
    except ProfileError as exc:  # a bad user profile: one sentence naming the file and the field
        print(f"error: {exc}", file=sys.stderr)
        return 1

    parser = argparse.ArgumentParser(prog="crime-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the built-in synthetic export into the lake")
    gen.add_argument("--rows", type=int, default=synthetic.DEFAULT_ROWS)
    gen.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    gen.add_argument(
        "--city", default="buffalo", choices=cities, help="city profile whose layout, box and class shares to use"
    )
    gen.add_argument(
        "--out", help="output CSV (default: data_lake/raw/incoming/<city>_synthetic_<rows>_seed<seed>.csv)"
    )
    gen.add_argument(
        "--files",
        type=int,
        choices=[1, 12],
        default=1,
        help="12: one file per calendar month of Created At (<out>_month01.csv .. _month12.csv)",
    )
    gen.add_argument(
        "--no-near-repeat",
        action="store_true",
        help="independent incidents: without the near-repeat (self-exciting) component",
    )
    gen.set_defaults(func=cmd_generate)
    run = sub.add_parser("run", help="materialize everything missing or stale, for every incoming file")
    run.add_argument("--force", action="store_true", help="rebuild everything below ingestion")
    run.set_defaults(func=cmd_run)
    forecast = sub.add_parser(
        "forecast", help="grid counts, this week's hotspot forecast, the backtest (--backfill: the test window too)"
    )
    forecast.add_argument("--backfill", action="store_true", help="forecast every week of the test window first")
    forecast.add_argument("--weeks", type=int, help="with --backfill: only the last N weeks of the test window")
    forecast.add_argument("--events-source", choices=["incidents", "xyt"], help="xyt: raw/events/*_<year>_xyt.csv")
    forecast.add_argument("--city", help="whose box the grid covers (default: the data's city)")
    forecast.add_argument("--cell-m", type=float, help="grid cell side in metres (default 150)")
    forecast.add_argument("--test-weeks", type=int, help="weeks in the test window (default 26)")
    forecast.add_argument("--test-from", help="ISO date: the test window is every complete week from this one on")
    forecast.set_defaults(func=cmd_forecast)
    predict = sub.add_parser("predict", help="score a CSV export with a saved model")
    predict.add_argument("--model", choices=["baseline", "mlp", "mlp_weighted", "gbdt"], required=True)
    predict.add_argument("--input", required=True, help="CSV in any accepted layout")
    predict.add_argument("--out", required=True, help="file to write: one probability column (property) per class")
    predict.add_argument(
        "--format",
        choices=["csv", "geojson"],
        default="csv",
        help="geojson: an RFC 7946 FeatureCollection of points ([lon, lat]) that QGIS opens",
    )
    predict.add_argument("--city", help="whose models to use (default: the only city with models, else the file's)")
    predict.set_defaults(func=cmd_predict)
    ui = sub.add_parser("ui", help="start `dg dev` on 127.0.0.1 with the project's DAGSTER_HOME")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    args = parser.parse_args(argv)
    from crime_pipeline.lib.lake.storage import LakeError

    try:
        return args.func(args)
    except LakeError as exc:  # a bad lake URL or an unreachable object store: one sentence, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
