"""City profiles: validation, Buffalo unchanged, Chicago end to end, several cities in one lake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from crime_pipeline.lib import synthetic
from crime_pipeline.lib.cities import profiles as cities
from crime_pipeline.lib.cities.profiles import BUILTIN_FOLDER, ProfileError, get_profile, load_profile, profiles
from crime_pipeline.lib.ingest.raw_csv import UnreadableFileError, read_raw_csv, sha256_file
from crime_pipeline.lib.lake.ledger import record_generated
from crime_pipeline.lib.validate.validate import validate_incidents
from crime_pipeline_tests.conftest import API_SAMPLE, Pipeline
from crime_pipeline_tests.lib.synthetic.test_synthetic import posterior_z_scores

CHICAGO_SAMPLE = API_SAMPLE.parent / "chicago_portal_sample.csv"

CHICAGO_HEADER = (
    "ID,Case Number,Date,Block,IUCR,Primary Type,Description,Location Description,Arrest,Domestic,Beat,"
    "District,Ward,Community Area,FBI Code,X Coordinate,Y Coordinate,Year,Updated On,Latitude,Longitude,"
    "Location"
)


# --- profiles -------------------------------------------------------------------------------------


def test_buffalo_profile_holds_exactly_the_constants_the_code_had():
    """The values hard-wired before profiles, written out here once: the default profile must equal them."""
    from crime_pipeline.lib.cities import columns
    from crime_pipeline.lib.cities.profiles import default_profile
    from crime_pipeline.lib.features import table as features
    from crime_pipeline.lib.validate import parse as validation
    from crime_pipeline.resources import OpenDataResource

    box = default_profile().box
    assert (box.lat_min, box.lat_max, box.lon_min, box.lon_max) == (42.828, 42.966, -78.910, -78.799)
    assert tuple(default_profile().center) == (42.8864, -78.8784)
    assert columns.CLASSES == (
        "Theft",
        "Assault",
        "Breaking & Entering",
        "Theft of Vehicle",
        "Robbery",
        "Sexual Assault",
        "Other Sexual Offense",
        "Homicide",
        "Sexual Offense",
    )
    assert columns.ALIASES == {
        "case_number": ("case_no", "case_num", "casenumber"),
        "incident_datetime": ("incident_date_time", "incident_date"),
        "incident_id": ("id",),
        "incident_type_primary": ("incident_type",),
        "incident_description": ("description",),
        "parent_incident_type": ("parent_type",),
        "clearance_type": (),
        "hour_of_day": ("hour",),
        "day_of_week": ("weekday",),
        "address": ("address_1", "address1", "street_address"),
        "address_2": ("address2",),
        "state": (),
        "zip_code": ("zip", "zipcode"),
        "country": (),
        "neighborhood": ("neighborhood_1", "neighbourhood"),
        "location": ("geocoded_location",),
        "latitude": ("lat",),
        "longitude": ("lon", "lng", "long"),
        "created_at": ("created",),
        "updated_at": ("updated",),
        "council_district": (),
        "police_district": (),
        "census_tract": (),
    }  # "city" left the table: our own `city` column names the profile; an export's City is `input_city`
    assert validation.DATETIME_FORMATS == ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")
    assert validation.LOCAL_TIMEZONE == "America/New_York"
    assert (OpenDataResource().base_url, OpenDataResource().dataset_id) == ("https://data.buffalony.gov", "d6g9-xbgu")
    from crime_pipeline.lib.ingest.open_data import SodaSettings, settings_for

    assert settings_for() == SodaSettings("https://data.buffalony.gov", "d6g9-xbgu")
    assert settings_for("chicago") == SodaSettings("https://data.cityofchicago.org", "ijzp-q8t2")
    assert features.label_map() == {c: i for i, c in enumerate(columns.CLASSES)}
    np.testing.assert_array_equal(
        synthetic.PRIORS,
        np.array([44.3, 20.5, 17.9, 9.0, 6.2, 0.75, 0.69, 0.35, 0.33])
        / np.array([44.3, 20.5, 17.9, 9.0, 6.2, 0.75, 0.69, 0.35, 0.33]).sum(),
    )
    assert synthetic.TYPE_TIME[3].tolist() == [2.0, 0.8, 1.0, 0.7] and len(synthetic.HOTSPOTS) == 11
    assert synthetic.HOTSPOTS[0] == synthetic.Hotspot(
        "Downtown / Chippewa", 42.8880, -78.8760, 0.0045, 0.0055, 0.5, 1.6, 1.8, 1.2
    )
    assert synthetic.PRIMARY_TYPES["Homicide"] == ("MURDER", "MANSLAUGHTER")
    # The generating model hashes every parameter: the same hash is the same generator, the same rows.
    assert synthetic.GENERATOR_VERSION == "249d25477f88af02"
    assert get_profile("buffalo").disguises == ["incident_type_primary", "incident_description"]


def _write_profile(tmp_path: Path, edit, key: str = "chicago") -> Path:
    data = yaml.safe_load((BUILTIN_FOLDER / "chicago.yaml").read_text())
    edit(data)
    path = tmp_path / f"{key}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _set(path: str, value):
    def edit(data):
        *head, last = path.split(".")
        target = data
        for part in head:
            target = target[int(part) if part.isdigit() else part]
        target[int(last) if last.isdigit() else last] = value

    return edit


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: d.pop("timezone"), "field 'timezone' is missing"),
        (_set("colour", "blue"), "field 'colour' is not a profile field (extra fields are forbidden)"),
        (_set("classes.2.shade", 1), "field 'classes.2.shade' is not a profile field"),
        (_set("timezone", "America/Gotham"), "field 'timezone': unknown IANA time zone 'America/Gotham'"),
        (_set("box.lat_min", "north"), "field 'box.lat_min': Input should be a valid number"),
        (_set("box.lat_min", 42.5), "field 'box': needs lat_min < lat_max"),
        (_set("center", [40.0, -87.6]), ": field 'center': [40.0, -87.6] lies outside the box"),
        (_set("open_data.dataset_id", "not an id"), "field 'open_data.dataset_id': String should match pattern"),
        (
            _set("header_aliases.colour", ["color"]),
            "field 'header_aliases': 'colour' is not a canonical column (case_number, ",
        ),
        (
            _set("header_aliases.incident_datetime", ["Date Of"]),
            "spelling 'Date Of' of 'incident_datetime' is not a normalised header",
        ),
        (_set("date_formats", ["%d.%m.%y"]), "'%d.%m.%y' is not a supported date format"),
        (_set("label_column", "colour"), "field 'label_column': 'colour' is not a canonical column"),
        (
            _set("classes.1.categories", ["BATTERY", "THEFT"]),
            "field 'classes': label value 'THEFT' names both 'Theft' and 'Battery'",
        ),
        (_set("classes.0.share", -1), "field 'classes.0.share': Input should be greater than 0"),
        (_set("disguises", ["latitude"]), "field 'disguises': ['latitude'] are feature sources"),
        (
            _set("generator.layout", "paris_portal"),
            "field 'generator.layout': Input should be 'buffalo_portal' or 'chicago_portal'",
        ),
        (_set("key", "gotham"), "field 'key' is 'gotham' but the file is named chicago.yaml"),
    ],
)
def test_a_bad_profile_fails_naming_the_file_the_field_and_the_value(tmp_path, edit, expected):
    path = _write_profile(tmp_path, edit)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message, message


def test_unreadable_profiles_fail_naming_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("key: [unclosed\n")
    (tmp_path / "b.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ProfileError, match=r"a\.yaml: not valid YAML"):
        load_profile(tmp_path / "a.yaml")
    with pytest.raises(ProfileError, match=r"b\.yaml: a city profile must be a YAML mapping of fields, not list"):
        load_profile(tmp_path / "b.yaml")


def test_adding_a_city_is_adding_a_file(tmp_path, monkeypatch):
    """A user profile in a folder named by CRIME_PIPELINE_CITIES (or <lake>/cities/) is a new city; a
    file-name prefix assigns a file to it although its layout is Chicago's."""
    folder = tmp_path / "mine"
    folder.mkdir()
    _write_profile(folder, lambda d: d.update(key="evanston", name="Evanston, IL"), key="evanston")
    assert "evanston" not in profiles(tmp_path / "lake")
    monkeypatch.setenv(cities.CITIES_ENV, str(folder))
    assert profiles(tmp_path / "lake")["evanston"].name == "Evanston, IL"
    row = (
        "1,JA1,01/04/2019 10:00:00 PM,0XX W X ST,0820,THEFT,SIMPLE,STREET,false,false,1,001,1,1,06,1,1,2019,,"
        "41.9,-87.65,"
    )
    data = f"{CHICAGO_HEADER}\n{row}\n".encode()
    known = profiles(tmp_path / "lake")
    with pytest.raises(
        UnreadableFileError,
        match=r"x\.csv: the header fits the city profiles chicago, evanston equally "
        r"well; name the city with a file-name prefix, e\.g\. evanston__x\.csv",
    ):
        read_raw_csv("x.csv", data, known)
    read = read_raw_csv("evanston__x.csv", data, known)
    assert read.city == "evanston" and read.rows["city"].tolist() == ["evanston"]


def test_the_lake_root_is_passed_not_registered(tmp_path, monkeypatch):
    """A lake's `cities/` profiles count for lookups given that lake (or, without one, when it is the
    default lake); building another lake's layout makes them known to nobody else."""
    from crime_pipeline.resources import LakeResource

    lake_a, default_lake = tmp_path / "a", tmp_path / "default"
    (lake_a / "cities").mkdir(parents=True)
    _write_profile(lake_a / "cities", lambda d: d.update(key="evanston", name="Evanston, IL"), key="evanston")
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(default_lake))
    LakeResource(root=str(lake_a)).layout  # the old registry learnt lake a's profiles here
    assert "evanston" not in profiles() and "evanston" not in profiles(default_lake)
    assert profiles(lake_a)["evanston"].name == get_profile("evanston", lake_root=str(lake_a)).name == "Evanston, IL"
    with pytest.raises(ProfileError, match="no city profile 'evanston'; known cities: buffalo, chicago"):
        get_profile("evanston")
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(lake_a))  # the default lake's profiles count without a root
    assert "evanston" in profiles()
    assert "evanston" not in profiles("s3://bucket/lake")  # an object store's lake: built-ins only


# --- which city a file belongs to --------------------------------------------------------------------


def test_each_layout_is_assigned_to_its_city_by_its_header():
    chicago = synthetic.generate_incidents(200, seed=1, city="chicago").frame
    buffalo = synthetic.generate_incidents(200, seed=1).frame
    assert read_raw_csv("c.csv", chicago.to_csv(index=False).encode()).city == "chicago"
    assert read_raw_csv("b.csv", buffalo.to_csv(index=False).encode()).city == "buffalo"
    assert read_raw_csv(API_SAMPLE).city == "buffalo"  # the real API layout (snake_case)
    minimal = (
        b"case_number,incident_datetime,parent_incident_type,latitude,longitude\n"
        b"1,01/04/2019 10:00:00 AM,Theft,42.9,-78.85\n"
    )
    assert read_raw_csv("m.csv", minimal).city == "buffalo"
    # Both profiles fit a Chicago export that also carries Buffalo's required columns: the signature decides.
    both = chicago.assign(**{"Parent Incident Type": "Theft", "Incident Datetime": chicago["Date"]})
    assert read_raw_csv("both.csv", both.to_csv(index=False).encode()).city == "chicago"


def test_a_header_fitting_no_city_names_the_closest_profile_and_what_it_misses():
    header = CHICAGO_HEADER.replace("Primary Type", "Kind").replace("Date,", "When,")
    with pytest.raises(UnreadableFileError) as info:
        read_raw_csv("odd.csv", f"{header}\n".encode())
    message = str(info.value)
    assert message.startswith(
        "odd.csv: not an incident export: missing required column(s) incident_datetime, incident_type_primary; "
    )
    assert message.endswith(f"the closest city profile is chicago ({BUILTIN_FOLDER / 'chicago.yaml'})")
    with pytest.raises(
        UnreadableFileError,
        match=r"^chicago__b\.csv: named city 'chicago' by its prefix but not an "
        r"incident export of that city: missing required column\(s\) "
        r"incident_type_primary",
    ):
        read_raw_csv("chicago__b.csv", b"case_number,incident_datetime,parent_incident_type,latitude,longitude\n")


def test_a_buffalo_export_without_its_label_column_is_refused_not_taken_for_chicago():
    """It has Chicago's required columns (Incident Type Primary is Chicago's label column) but none of
    Chicago's own names and a dozen of Buffalo's: it used to be read as Chicago, every row quarantined."""
    buffalo = synthetic.generate_incidents(50, seed=1).frame.drop(columns="Parent Incident Type")
    with pytest.raises(UnreadableFileError) as info:
        read_raw_csv("b.csv", buffalo.to_csv(index=False).encode())
    assert str(info.value).startswith("b.csv: not an incident export: missing required column(s) parent_incident_type;")
    api = pd.read_csv(API_SAMPLE, dtype=str).drop(columns="parent_incident_type")
    with pytest.raises(
        UnreadableFileError, match=r"^api\.csv: not an incident export: missing .* parent_incident_type;"
    ):
        read_raw_csv("api.csv", api.to_csv(index=False).encode())


def test_a_prefix_naming_a_city_whose_layout_the_header_lacks_is_refused():
    buffalo = synthetic.generate_incidents(50, seed=1).frame.to_csv(index=False).encode()
    with pytest.raises(UnreadableFileError) as info:
        read_raw_csv("chicago__x.csv", buffalo)
    message = str(info.value)
    assert message.startswith(
        "chicago__x.csv: the file-name prefix names city 'chicago' but the header has none of its export's "
        "column names and "
    ), message
    assert "of buffalo's (" in message and message.endswith("rename the file with the right prefix, or none")
    assert read_raw_csv("buffalo__x.csv", buffalo).city == "buffalo"
    # Chicago's real export with only six of its columns still names enough of Chicago's layout.
    assert read_raw_csv("chicago__sample.csv", CHICAGO_SAMPLE.read_bytes()).city == "chicago"
    assert read_raw_csv(CHICAGO_SAMPLE).city == "chicago"


# --- Chicago's generator ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chicago() -> synthetic.GeneratedIncidents:
    return synthetic.generate_incidents(40_000, seed=11, city="chicago")


def test_chicago_export_layout_shares_and_disguises(chicago):
    frame = chicago.frame
    assert tuple(frame.columns) == synthetic.CHICAGO_COLUMNS
    profile = get_profile("chicago")
    clean = frame[chicago.dirt == "clean"]
    lat, lon = clean["Latitude"].astype(float), clean["Longitude"].astype(float)
    assert (
        lat.between(profile.box.lat_min, profile.box.lat_max).all()
        and lon.between(profile.box.lon_min, profile.box.lon_max).all()
    )
    assert clean["Date"].str.fullmatch(r"\d\d/\d\d/20\d\d \d\d:\d\d:\d\d [AP]M").all()
    shares = pd.Series(chicago.true_label).value_counts(normalize=True).reindex(profile.class_names).to_numpy()
    prior = synthetic.spec("chicago").priors
    assert np.all(np.abs(shares - prior) < 4 * np.sqrt(prior * (1 - prior) / len(frame)))
    # Primary Type is the label in disguise: each value belongs to one class.
    purity = clean.groupby(clean["Primary Type"].str.upper()).apply(
        lambda g: pd.Series(chicago.true_label[g.index]).value_counts(normalize=True).iloc[0], include_groups=False
    )
    assert purity.min() == 1.0
    assert synthetic.generator_version("chicago") != synthetic.GENERATOR_VERSION


@pytest.mark.slow  # a z-test over a large generated sample: seconds
def test_chicago_posterior_is_exact_on_clean_rows(chicago):
    """The z-tests of test_synthetic.py, on Chicago: its own box, hotspots, classes and shares."""
    clean = chicago.frame[chicago.dirt == "clean"]
    when = pd.to_datetime(clean["Date"], format=synthetic.DATETIME_FORMAT)
    post = synthetic.posterior(clean["Latitude"].astype(float), clean["Longitude"].astype(float), when, city="chicago")
    classes = get_profile("chicago").class_names
    truth = pd.Series(chicago.true_label[chicago.dirt == "clean"]).map(classes.index).to_numpy()
    assert post.shape == (len(truth), len(classes))
    scores = posterior_z_scores(post, truth)
    assert max(abs(z) for z in scores.values()) < 4, scores
    tempered = post**1.25
    tempered /= tempered.sum(axis=1, keepdims=True)
    assert max(abs(z) for z in posterior_z_scores(tempered, truth).values()) > 5


def test_chicago_dirt_is_quarantined_by_the_right_rule(chicago):
    read = read_raw_csv("chicago.csv", chicago.frame.to_csv(index=False).encode())
    result = validate_incidents(read.rows, as_of=pd.Timestamp("2026-06-01"))
    by_line = result.quarantine.set_index("source_line")["rules"]
    dirt = pd.Series(chicago.dirt, index=np.arange(len(chicago.dirt)) + 2)
    for rule in synthetic.DIRT_RATES:
        lines = dirt.index[dirt == rule]
        assert len(lines) and by_line.reindex(lines).str.contains(rule).all(), rule
    assert len(result.valid) == (~dirt.isin(list(synthetic.DIRT_RATES))).sum()
    assert set(result.valid["label"]) == set(get_profile("chicago").class_names)
    assert (result.valid["city"] == "chicago").all()


# --- the whole graph --------------------------------------------------------------------------------


def _generate(pipe: Pipeline, city: str, rows: int, seed: int) -> None:
    data = synthetic.generate_incidents(rows, seed, city=city)
    path = synthetic.write_export_csv(data, pipe.lake.incoming / f"{city}_gen.csv")
    record_generated(
        pipe.lake,
        sha256_file(path),
        {
            "file": path.name,
            "rows": rows,
            "seed": seed,
            "city": city,
            "generator_version": synthetic.generator_version(city),
        },
    )


def test_chicago_alone_runs_through_every_asset(defs, instance, lake):
    pipe = Pipeline(defs, instance, lake)
    _generate(pipe, "chicago", 2000, seed=3)
    assert pipe.run() == 0, pipe.output
    evaluation = json.loads(lake.report_file("evaluation.json").read_text())
    assert evaluation["city"] == "chicago" and evaluation["classes"] == list(get_profile("chicago").class_names)
    assert (
        evaluation["generated_data"]
        and evaluation["bayes"]["accuracy"] > evaluation["baselines"]["majority"]["accuracy"]
    )
    for kind in ("baseline", "mlp", "mlp_weighted", "gbdt"):
        assert json.loads((lake.models / f"{kind}.chicago.json").read_text())["city"] == "chicago"
        assert not (lake.models / f"{kind}.json").exists()
    html = lake.report_file("report.html").read_text()
    assert "Chicago, IL crime incidents" in html
    leakage = json.loads(lake.lake_file("leakage_check.json").read_text())
    assert leakage["passed"] and leakage["disguises"]["chicago"]["incident_type_primary"]["leaky"]
    assert json.loads(lake.report_file("seed_reproduction.json").read_text())["city"] == "chicago"


def test_a_profile_dropped_into_the_lake_is_used_by_a_run_on_that_lake(defs, instance, lake):
    """`<lake>/cities/evanston.yaml` (Chicago's layout under another key) and a file named for it:
    ingestion, validation and the merge all know the city, with nothing registered beforehand."""
    (lake.root / "cities").mkdir()
    _write_profile(lake.root / "cities", lambda d: d.update(key="evanston", name="Evanston, IL"), key="evanston")
    pipe = Pipeline(defs, instance, lake, downstream=["incidents"])
    data = synthetic.generate_incidents(300, seed=6, city="chicago")
    synthetic.write_export_csv(data, lake.incoming / "evanston__export.csv")
    assert pipe.run() == 0, pipe.output
    assert [e["city"] for e in json.loads(lake.ledger.read_text())["files"].values()] == ["evanston"]
    incidents = pd.read_parquet(lake.table("incidents"))
    assert len(incidents) and set(incidents["city"]) == {"evanston"}


def test_two_cities_in_one_lake_give_two_sets_of_models_and_one_comparison(defs, instance, lake, tmp_path, monkeypatch):
    pipe = Pipeline(defs, instance, lake)
    _generate(pipe, "buffalo", 2000, seed=4)
    _generate(pipe, "chicago", 2000, seed=5)
    assert pipe.run() == 0, pipe.output
    ledger = json.loads(lake.ledger.read_text())["files"]
    assert sorted(e["city"] for e in ledger.values()) == ["buffalo", "chicago"]
    splits = pd.read_parquet(lake.table("dataset_splits"))
    for city, rows in splits.groupby("city"):  # each city: its own classes, its own time line
        assert set(rows["label"]) == set(get_profile(city).class_names)
        assert (rows["label_id"] == rows["label"].map(get_profile(city).class_names.index)).all()
        assert (
            rows.loc[rows["split"] == "train", "incident_datetime"].max()
            <= rows.loc[rows["split"] == "test", "incident_datetime"].min()
        )
    evaluation = json.loads(lake.report_file("evaluation.json").read_text())
    assert evaluation["city"] == "buffalo" and set(evaluation["cities"]) == {"buffalo", "chicago"}
    rows = {r["city"]: r for r in evaluation["comparison"]}
    assert set(rows) == {"buffalo", "chicago"}
    for city, doc in evaluation["cities"].items():  # each against its own majority class and Bayes limit
        assert doc["classes"] == list(get_profile(city).class_names)
        assert rows[city]["majority_accuracy"] == doc["baselines"]["majority"]["accuracy"]
        assert rows[city]["bayes_accuracy"] == doc["bayes"]["accuracy"]
        assert rows[city]["n_test"] == int(((splits["city"] == city) & (splits["split"] == "test")).sum())
    assert rows["buffalo"]["majority_accuracy"] != rows["chicago"]["majority_accuracy"]
    for kind in ("baseline", "mlp", "mlp_weighted", "gbdt"):
        assert json.loads((lake.models / f"{kind}.json").read_text())["classes"] == list(
            get_profile("buffalo").class_names
        )
        assert json.loads((lake.models / f"{kind}.chicago.json").read_text())["classes"] == list(
            get_profile("chicago").class_names
        )
    html = lake.report_file("report.html").read_text()
    assert '<h2 id="cities">Cities compared</h2>' in html and "<td>buffalo</td>" in html and "<td>chicago</td>" in html
    from crime_pipeline.lib.reports.headline import headline

    printed = headline(lake)
    assert "buffalo" in printed and "chicago" in printed

    # predict: two cities have models, so the file's own header picks the city; --city forces one.
    from crime_pipeline.cli import main

    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(lake.root))
    sample = tmp_path / "chicago_sample.csv"
    synthetic.write_export_csv(synthetic.generate_incidents(300, seed=9, city="chicago"), sample)
    assert main(["predict", "--model", "gbdt", "--input", str(sample), "--out", str(tmp_path / "p.csv")]) == 0
    scored = pd.read_csv(tmp_path / "p.csv")
    assert {f"p_{c.lower().replace(' ', '_')}" for c in get_profile("chicago").class_names} <= set(scored.columns)
    assert (
        main(
            [
                "predict",
                "--model",
                "gbdt",
                "--city",
                "buffalo",
                "--input",
                str(sample),
                "--out",
                str(tmp_path / "q.csv"),
            ]
        )
        == 1
    )  # a Chicago export is no Buffalo export


def test_classes_absent_from_a_citys_data_are_handled():
    """Chicago rows of three classes only: features, split, training and evaluation keep the city's
    nine classes, the absent ones with no recall, and nothing crashes."""
    from crime_pipeline.lib.features.splits import fit_minmax, split_per_city
    from crime_pipeline.lib.features.table import MODEL_FEATURES, build_feature_table
    from crime_pipeline.lib.models.artifacts import predict_proba
    from crime_pipeline.lib.models.training import matrices, train_gbdt, train_logistic_regression
    from crime_pipeline.lib.reports.evaluation import evaluate

    generated = synthetic.generate_incidents(3000, seed=2, city="chicago")
    read = read_raw_csv("c.csv", generated.frame.to_csv(index=False).encode())
    valid = validate_incidents(read.rows, as_of=pd.Timestamp("2026-06-01")).valid
    kept = ["Theft", "Battery", "Robbery"]
    incidents = valid[valid["label"].isin(kept)].drop_duplicates("case_number").reset_index(drop=True)
    table = build_feature_table(incidents)
    table["split"] = split_per_city(table, "temporal", 0.15, 0.15).to_numpy()
    classes = list(get_profile("chicago").class_names)
    assert sorted(table["label_id"].unique()) == sorted(classes.index(c) for c in kept)
    scaler = fit_minmax(table[table["split"] == "train"], MODEL_FEATURES)
    train, test = matrices(table, scaler, "train"), matrices(table, scaler, "test")
    probas = {
        "baseline": predict_proba("baseline", train_logistic_regression(train, False), test.x, len(classes)),
        "gbdt": predict_proba("gbdt", train_gbdt(train, False, max_iter=20), test.x, len(classes)),
    }
    doc = evaluate(test.y, train.y, probas, classes, "temporal")
    for kind, metrics in doc["models"].items():
        assert probas[kind].shape == (len(test.y), 9) and np.allclose(probas[kind].sum(axis=1), 1)
        assert set(metrics["per_class_recall"]) == set(classes)
        assert all(metrics["per_class_recall"][c] == 0 for c in classes if c not in kept)
