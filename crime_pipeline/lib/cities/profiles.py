"""City profiles: everything city-specific, one YAML file per city, validated before use.

Built-in profiles live in `crime_pipeline/cities/*.yaml`. Users add cities without code: every
`*.yaml` in the folders named by `CRIME_PIPELINE_CITIES` (os.pathsep-separated) and in `<lake>/cities/`
is loaded too (a user file with a built-in's key replaces it). The lake is a parameter, never
registered: stages pass `lake_root=layout.root`; without one, the default lake's profiles are read
(`default_lake_root()`). A bad profile fails with one sentence naming the file, the field and the
bad value. Buffalo is the default profile: a lake whose tables carry no `city` column is Buffalo's.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crime_pipeline.lib.cities.profile_yaml import (  # noqa: F401 (the limits are part of this module's API)
    MAX_PROFILE_BYTES,
    MAX_PROFILE_VALUES,
    ProfileError,
    parse_bounded,
    short_repr,
)
from crime_pipeline.lib.lake.layout import default_lake_root
from crime_pipeline.lib.lake.storage import is_remote

BUILTIN_FOLDER = Path(__file__).resolve().parents[2] / "cities"
DEFAULT_CITY = "buffalo"
CITIES_ENV = "CRIME_PIPELINE_CITIES"
# A file may name its city explicitly with this prefix: `chicago__export.csv`.
CITY_PREFIX_SEPARATOR = "__"
# Canonical columns a profile may alias onto; anything else is kept under its normalised name.
CANONICAL_COLUMNS = (
    "case_number",
    "incident_datetime",
    "incident_id",
    "incident_type_primary",
    "incident_description",
    "parent_incident_type",
    "clearance_type",
    "hour_of_day",
    "day_of_week",
    "address",
    "address_2",
    "state",
    "zip_code",
    "country",
    "neighborhood",
    "location",
    "latitude",
    "longitude",
    "created_at",
    "updated_at",
    "council_district",
    "police_district",
    "census_tract",
)
FEATURE_SOURCES = ("latitude", "longitude", "incident_datetime")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Box(_Strict):
    lat_min: float = Field(ge=-90, le=90)
    lat_max: float = Field(ge=-90, le=90)
    lon_min: float = Field(ge=-180, le=180)
    lon_max: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self):
        if not (self.lat_min < self.lat_max and self.lon_min < self.lon_max):
            raise ValueError(
                f"needs lat_min < lat_max and lon_min < lon_max (got {self.lat_min}..{self.lat_max}, "
                f"{self.lon_min}..{self.lon_max})"
            )
        return self


class OpenData(_Strict):
    base_url: str = Field(pattern=r"^https?://[^/\s]+$")
    dataset_id: str = Field(pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$")


class TimeProfile(_Strict):
    """When a class (or hotspot) is busiest: the generator's circular hour, weekday and month profiles."""

    hour_peak: float = Field(ge=0, lt=24)
    hour_sharpness: float = Field(ge=0)
    weekend_lift: float = Field(gt=0)
    summer_lift: float = Field(gt=0)


class CityClass(_Strict):
    name: str = Field(min_length=1)
    spellings: list[str] = []  # other spellings of the class name accepted in the label column
    categories: list[str] = []  # the raw offence categories the export writes for this class
    share: float = Field(gt=0)  # generator: relative weight of the class (normalised over the classes)
    time: TimeProfile  # generator: the class's own time profile


class Hotspot(_Strict):
    name: str
    lat: float
    lon: float
    sd_lat: float = Field(gt=0)
    sd_lon: float = Field(gt=0)
    hour_peak: float = Field(ge=0, lt=24)
    hour_sharpness: float = Field(ge=0)
    weekend_lift: float = Field(gt=0)
    summer_lift: float = Field(gt=0)


class Generator(_Strict):
    """What the built-in generator needs beyond the classes: the export layout and the hotspots."""

    layout: Literal["buffalo_portal", "chicago_portal"]
    hotspots: list[Hotspot] = Field(min_length=1)


class CityProfile(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name: str = Field(min_length=1)
    timezone: str
    box: Box
    center: tuple[float, float]  # (latitude, longitude): distances are measured from here
    open_data: OpenData
    header_aliases: dict[str, list[str]]  # canonical column -> normalised header spellings
    signature: list[str] = Field(min_length=1)  # normalised headers typical of this layout (decides ties)
    date_formats: list[str] = Field(min_length=1)
    label_column: str  # canonical column holding the label
    label_holds: Literal["class_names", "categories"]  # class names (and spellings), or raw offence categories
    classes: list[CityClass] = Field(min_length=2)
    disguises: list[str]  # columns (as read) that are the label in disguise: never features
    generator: Generator
    source: str = ""  # the file the profile came from (set by the loader)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("header_aliases")
    @classmethod
    def _aliases(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for canonical, spellings in value.items():
            if canonical not in CANONICAL_COLUMNS:
                raise ValueError(f"{canonical!r} is not a canonical column ({', '.join(CANONICAL_COLUMNS)})")
            for s in spellings:
                if s != re.sub(r"[^0-9a-z]+", "_", s.strip().lower()).strip("_") or not s:
                    raise ValueError(
                        f"spelling {s!r} of {canonical!r} is not a normalised header (lower case, underscores)"
                    )
        return value

    @field_validator("date_formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        for fmt in value:
            # Month first, 4-digit year: parse_datetimes reads every parse back field by field in that order.
            if not re.fullmatch(r"%m/%d/%Y(?:[ T](?:%[HIMSp]|[ :])+)?", fmt):
                raise ValueError(
                    f"{fmt!r} is not a supported date format (it must start %m/%d/%Y, then optionally "
                    "a time of %H or %I, %M, %S, %p)"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self):
        b = self.box
        if not (b.lat_min <= self.center[0] <= b.lat_max and b.lon_min <= self.center[1] <= b.lon_max):
            raise ValueError(f"field 'center': {list(self.center)} lies outside the box")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"field 'classes': duplicate class names in {names}")
        seen: dict[str, str] = {}
        for c in self.classes:
            for value in self.label_values(c):
                other = seen.setdefault(_label_key(value), c.name)
                if other != c.name:
                    raise ValueError(f"field 'classes': label value {value!r} names both {other!r} and {c.name!r}")
        if self.label_holds == "categories" and any(not c.categories for c in self.classes):
            raise ValueError("field 'classes': every class needs categories when label_holds is 'categories'")
        if self.label_column not in CANONICAL_COLUMNS:
            raise ValueError(f"field 'label_column': {self.label_column!r} is not a canonical column")
        for column in self.disguises:
            if column != re.sub(r"[^0-9a-z]+", "_", column.lower()).strip("_") or not column:
                raise ValueError(
                    f"field 'disguises': {column!r} is not a normalised column name (lower case, underscores)"
                )
        if set(self.disguises) & set(FEATURE_SOURCES):
            raise ValueError(
                f"field 'disguises': {sorted(set(self.disguises) & set(FEATURE_SOURCES))} are feature sources"
            )
        return self

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def label_values(self, c: CityClass) -> list[str]:
        """What the label column may hold for class `c`."""
        return [c.name, *c.spellings, *(c.categories if self.label_holds == "categories" else [])]

    def label_lookup(self) -> dict[str, str]:
        """Normalised label value -> class name."""
        return {_label_key(v): c.name for c in self.classes for v in self.label_values(c)}

    def header_lookup(self) -> dict[str, str]:
        """Normalised header -> canonical name, for this city's exports."""
        out = {c: c for c in CANONICAL_COLUMNS}
        for canonical, spellings in self.header_aliases.items():
            out.update({s: canonical for s in spellings})
        return out


def _label_key(value: str) -> str:
    """Labels compare ignoring case, spacing and '&' vs 'and'."""
    return re.sub(r"\s+", " ", value.replace("&", "and")).strip().casefold()


def _describe(error: dict) -> str:
    field = ".".join(str(p) for p in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if not field:  # a check across fields: its message names them
        return message
    if error["type"] == "missing":
        return f"field {field!r} is missing"
    if error["type"] == "extra_forbidden":
        return f"field {field!r} is not a profile field (extra fields are forbidden)"
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f" (got {short_repr(value)})"
    return f"field {field!r}: {message}{shown}"


def load_profile(path: Path) -> CityProfile:
    """One profile file, validated; ProfileError names the file, the field and the bad value."""
    path = Path(path)
    try:
        data = parse_bounded(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the city profile ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    except RecursionError:  # only without libyaml, which bounds nesting itself
        raise ProfileError(f"{path}: not valid YAML (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a city profile must be a YAML mapping of fields, not {type(data).__name__}")
    try:
        profile = CityProfile.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        raise ProfileError(f"{path}: " + "; ".join(_describe(e) for e in exc.errors())) from exc
    if profile.key != path.stem:
        raise ProfileError(
            f"{path}: field 'key' is {profile.key!r} but the file is named {path.name} (name it {profile.key}.yaml)"
        )
    return profile


def _local_folder(root: str | os.PathLike) -> Path | None:
    """A lake root as a local folder; None for an object store (no profiles are read from there)."""
    if is_remote(root):
        return None
    text = os.fspath(root)
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() != "file":
        return None
    return Path(rest if sep else text)


def profile_folders(lake_root: str | os.PathLike | None = None) -> list[Path]:
    """Where profiles are read from, later folders overriding earlier ones: the built-ins,
    `CRIME_PIPELINE_CITIES`, then `cities/` of the lake (the default lake when `lake_root` is None)."""
    folders = [BUILTIN_FOLDER]
    folders += [Path(p) for p in os.environ.get(CITIES_ENV, "").split(os.pathsep) if p]
    root = _local_folder(default_lake_root() if lake_root is None else lake_root)
    if root is not None and (root / "cities").is_dir():
        folders.append(root / "cities")
    return folders


@lru_cache(maxsize=8)
def _load_all(folders: tuple[Path, ...], stamp: tuple) -> dict[str, CityProfile]:
    found: dict[str, CityProfile] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            profile = load_profile(path)
            found[profile.key] = profile
    if DEFAULT_CITY not in found:
        raise ProfileError(f"no {DEFAULT_CITY}.yaml among the city profiles in {', '.join(map(str, folders))}")
    return found


def profiles(lake_root: str | os.PathLike | None = None) -> dict[str, CityProfile]:
    """Every known city profile by key (built-ins, then user folders, then the lake's `cities/`)."""
    folders = tuple(profile_folders(lake_root))
    stamp = tuple((str(p), p.stat().st_mtime_ns) for f in folders if f.is_dir() for p in sorted(f.glob("*.yaml")))
    return _load_all(folders, stamp)


def get_profile(key: str | None = None, lake_root: str | os.PathLike | None = None) -> CityProfile:
    """The profile of `key` (the default city when None); ProfileError for an unknown key."""
    known = profiles(lake_root)
    key = key or DEFAULT_CITY
    if key not in known:
        raise ProfileError(f"no city profile {key!r}; known cities: {', '.join(sorted(known))}")
    return known[key]


def default_profile() -> CityProfile:
    """Buffalo, from the built-in file only: what every module falls back to."""
    return _builtin_default()


@lru_cache(maxsize=1)
def _builtin_default() -> CityProfile:
    return load_profile(BUILTIN_FOLDER / f"{DEFAULT_CITY}.yaml")


def primary_city(cities) -> str:
    """The city whose results fill the single-city views (figures, headline): the default if present."""
    cities = sorted(set(cities))
    return DEFAULT_CITY if DEFAULT_CITY in cities or not cities else cities[0]


def model_name(kind: str, city: str) -> str:
    """File stem of a city's model: the default city keeps `<kind>`, others are `<kind>.<city>`."""
    return kind if city == DEFAULT_CITY else f"{kind}.{city}"


def city_from_filename(name: str) -> str | None:
    """The city a file names with its `<city>__` prefix, if any."""
    head, sep, _ = Path(name).name.partition(CITY_PREFIX_SEPARATOR)
    return head.lower() if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", head) else None
