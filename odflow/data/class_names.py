"""A dataset's own class names matched to ``classes`` (the label map), for COCO and YOLO.

Both formats number their classes themselves (COCO's ``category_id``, YOLO's line index into
``names``), and those numbers mean nothing to the label map: only the names do.  So a class
is mapped by name, and the two ways this goes wrong get messages that say what to write:

- none of ``classes`` is among the dataset's names (the demo's ``classes: [face]`` left in
  place): the error lists the dataset's names as a ``classes:`` line to paste;
- some dataset names are not in ``classes``: an error listing both sets, or, when the user
  asked for it (``skip_unknown``), their boxes are dropped and counted per name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from odflow import label_map as label_map_lib
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

_PLAIN_YAML = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]*(?<! )$")


def yaml_list(names: Iterable[str]) -> str:
    """``[a, b, "c: d"]``: names as a YAML flow list, quoting only those that need it."""
    return "[" + ", ".join(n if _PLAIN_YAML.match(n) else json.dumps(n) for n in names) + "]"


def unknown_reason(name: str) -> str:
    """The summary's drop reason for the boxes of a dataset class not in ``classes``."""
    return f"class {name!r} not in classes (skip_unknown_classes)"


class ClassMatcher:
    """Maps a dataset's class names to label-map ids; ``None`` for a skipped unknown name."""

    def __init__(self, label_map: label_map_lib.LabelMap, dataset_names: Iterable[str],
                 source: str, *, skip_unknown: bool, option: str):
        """``dataset_names``: the names the dataset's boxes use (in the dataset's order);
        ``source`` names the file they come from; ``option`` is the setting that skips
        unknown names (``coco.skip_unknown_classes``), quoted in the error."""
        names = list(dict.fromkeys(dataset_names))
        known = label_map.name_to_id
        if names and not any(name in known for name in names):
            raise OdflowError(
                f"{source}: none of classes {yaml_list(known)} is among the dataset's class "
                f"names {yaml_list(names)}; to train on the dataset's classes, set in "
                f"config.yaml:  classes: {yaml_list(names)}  (or name them in your own "
                "label map)")
        unknown = [name for name in names if name not in known]
        if unknown and not skip_unknown:
            raise OdflowError(
                f"{source}: the dataset's classes {yaml_list(unknown)} are not in classes "
                f"{yaml_list(known)} (the dataset has {yaml_list(names)}); add them to "
                f"classes, or set {option}: true to drop their boxes (counted in the summary)")
        self.label_map = label_map
        self.unknown = set(unknown)

    def id_of(self, name: str, summary: DatasetSummary) -> int | None:
        """The label-map id of ``name``; ``None`` (counted as dropped) for a skipped name."""
        if name in self.unknown:
            summary.drop_boxes(unknown_reason(name))
            return None
        return self.label_map.name_to_id[name]
