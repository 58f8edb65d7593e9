"""Run configs derived from the settings dataclasses in lib/: each setting is declared once.

`config_from_settings` builds a `dg.Config` class with the settings' field names, types, defaults
and descriptions (tuples become lists: Dagster config has no tuples); `settings_of` turns a run
config back into the settings dataclass the stage function takes.
"""

# No `from __future__ import annotations`: pydantic and Dagster read these annotations at run time.
import dataclasses
import typing

import dagster as dg
import pydantic


def _config_type(annotation, default):
    """Dagster config has no tuples: a tuple setting is a list in the run config."""
    if typing.get_origin(annotation) is tuple:
        return list[typing.get_args(annotation)[0]], list(default)
    return annotation, default


def config_from_settings(name: str, doc: str, *settings) -> type[dg.Config]:
    """A Dagster config class with the fields of settings dataclasses (each a class, or an instance
    whose values are the defaults): the same names, defaults and descriptions, tuples as lists."""
    fields = {}
    for source in settings:
        cls = source if isinstance(source, type) else type(source)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            annotation, default = _config_type(
                hints[f.name], getattr(source, f.name) if source is not cls else f.default
            )
            fields[f.name] = (annotation, pydantic.Field(default=default, description=f.metadata.get("description")))
    return pydantic.create_model(name, __base__=dg.Config, __doc__=doc, __module__=__name__, **fields)


def settings_of(config: dg.Config, settings_cls: type):
    """The settings dataclass a run config holds (lists back to tuples; other config fields left out)."""
    hints, values = typing.get_type_hints(settings_cls), config.model_dump()
    return settings_cls(
        **{
            f.name: tuple(values[f.name]) if typing.get_origin(hints[f.name]) is tuple else values[f.name]
            for f in dataclasses.fields(settings_cls)
        }
    )


def first_paragraph(cls: type) -> str:
    """A settings class's docstring up to its first blank line: the config's description in the UI."""
    return (cls.__doc__ or "").split("\n\n")[0]
