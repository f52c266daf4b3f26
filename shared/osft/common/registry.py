"""Finds installed stages through the ``osft.stages`` entry-point group.

The common package never imports a stage package directly: each image's distribution
declares its stages, and the local runner discovers whichever are installed.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from osft.common.errors import OsftError
from osft.common.stage import StageDefinition

ENTRY_POINT_GROUP = "osft.stages"
PACKAGE_FOR_STAGE = {
    "extract": "images/extractor",
    "querygen": "images/querygen",
    "train": "images/trainer",
    "evaluate": "images/trainer",
    "register": "images/registrar",
}


def installed_stages() -> dict[str, StageDefinition]:
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_stage(name: str) -> StageDefinition:
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return ep.load()
    raise OsftError(
        f"stage '{name}' is not installed",
        hint=f"pip install -e {PACKAGE_FOR_STAGE.get(name, 'images/...')} (or run 'make install')",
    )
