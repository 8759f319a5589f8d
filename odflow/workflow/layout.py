"""Which members of a model-zoo tarball the pipeline uses: the TF1 or the TF2 zoo's layout.

The two zoos pack their tarballs differently, and the workflow must know the file names before
any tarball exists (Snakemake plans outputs by name):

* TF1 (``ssd_mobilenet_v1_coco_2018_01_28``): ``<folder>/pipeline.config`` and a name-based
  checkpoint ``<folder>/model.ckpt.{index,data-00000-of-00001}``, beside a ``checkpoint`` state
  file.  Fine-tuning reads ``ckpt/model.ckpt`` (``fine_tune_checkpoint_version: V1``).
* TF2 (``ssd_mobilenet_v2_320x320_coco17_tpu-8``, ``efficientdet_d0_coco17_tpu-32``):
  ``<folder>/pipeline.config`` and an object-based checkpoint
  ``<folder>/checkpoint/ckpt-0.{index,data-00000-of-00001}`` beside the state file
  ``<folder>/checkpoint/checkpoint``.  Fine-tuning reads ``ckpt/ckpt-0``
  (``fine_tune_checkpoint_version: V2``): the tarball's own file names, so the path a TF2
  tutorial reader expects, and a name training never writes (it saves ``model.ckpt-<step>``).

Neither state file is ever copied: in ``ckpt/`` it would make training take the zoo's
checkpoint for its own latest one.  ``model.layout: auto`` picks TF2 for a URL under the TF2
zoo's ``/tf2/`` folder and for a starter model of a TF2 zoo architecture
(``TF2_FEATURE_EXTRACTORS``).
"""

from __future__ import annotations

from dataclasses import dataclass

from odflow.errors import OdflowError

#: Values of ``model.layout`` (config.yaml).
LAYOUT_SETTINGS = ("auto", "tf1", "tf2")

#: ``feature_extractor.type`` of the 18 SSD configs of the TF2 zoo (configs/tf2/): a starter
#: model of one of these is written as the TF2 zoo writes it.
TF2_FEATURE_EXTRACTORS = frozenset({
    "ssd_mobilenet_v2_keras",
    "ssd_mobilenet_v1_fpn_keras",
    "ssd_mobilenet_v2_fpn_keras",
    "ssd_resnet50_v1_fpn_keras",
    "ssd_resnet101_v1_fpn_keras",
    "ssd_resnet152_v1_fpn_keras",
    *(f"ssd_efficientnet-b{k}_bifpn_keras" for k in range(8)),
})

#: Where the TF2 zoo keeps its tarballs (download.tensorflow.org/models/object_detection/tf2/...).
TF2_URL_PART = "/tf2/"


@dataclass(frozen=True)
class TarballLayout:
    """File names of one zoo layout, relative to the tarball's top folder or to ``ckpt/``."""

    name: str
    #: The checkpoint's index and data file in the tarball.
    checkpoint_members: tuple[str, str]
    #: The zoo's ``checkpoint`` state file: never extracted, never copied.
    state_file: str
    #: The fine-tune checkpoint's prefix in ``ckpt/`` (``train_config.fine_tune_checkpoint``).
    fine_tune_prefix: str
    #: ``train_config.fine_tune_checkpoint_version`` for that checkpoint.
    checkpoint_version: str
    pipeline_config: str = "pipeline.config"

    @property
    def members(self) -> tuple[str, ...]:
        """What ``extract_model`` takes from the tarball: the config and the checkpoint."""
        return (self.pipeline_config, *self.checkpoint_members)

    @property
    def fine_tune_files(self) -> tuple[str, str]:
        """The checkpoint's index and data file as copied into ``ckpt/``."""
        return (f"{self.fine_tune_prefix}.index",
                f"{self.fine_tune_prefix}.data-00000-of-00001")


TF1 = TarballLayout(name="tf1",
                    checkpoint_members=("model.ckpt.index", "model.ckpt.data-00000-of-00001"),
                    state_file="checkpoint", fine_tune_prefix="model.ckpt",
                    checkpoint_version="V1")
TF2 = TarballLayout(name="tf2",
                    checkpoint_members=("checkpoint/ckpt-0.index",
                                        "checkpoint/ckpt-0.data-00000-of-00001"),
                    state_file="checkpoint/checkpoint", fine_tune_prefix="ckpt-0",
                    checkpoint_version="V2")
LAYOUTS: dict[str, TarballLayout] = {TF1.name: TF1, TF2.name: TF2}


def get_layout(name: str) -> TarballLayout:
    """The layout called ``name`` (``tf1`` or ``tf2``); ``OdflowError`` naming the setting."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise OdflowError(f"model.layout {name!r} is not one of {', '.join(LAYOUTS)}") from None


def resolve_layout(setting: str, url: str, architecture: str) -> str:
    """``model.layout`` with ``auto`` decided: from the starter's architecture for a
    ``starter:`` model, else from the URL (the TF2 zoo's ``/tf2/`` folder)."""
    if setting not in LAYOUT_SETTINGS:
        raise OdflowError(f"model.layout {setting!r} is not one of {', '.join(LAYOUT_SETTINGS)}")
    if url.startswith("starter:"):
        # The starter builder writes the layout of its architecture's zoo, whatever is asked.
        built = starter_layout(architecture).name
        if setting not in ("auto", built):
            raise OdflowError(
                f"model.layout {setting!r}: the starter model {architecture!r} (model.starter."
                f"architecture) is written in the {built} layout; set model.layout to auto or "
                f"{built}")
        return built
    if setting != "auto":
        return setting
    return TF2.name if TF2_URL_PART in url else TF1.name


def starter_layout(architecture: str) -> TarballLayout:
    """The layout a starter model of ``architecture`` is written in: its zoo's (TF2 for the TF2
    zoo's feature extractors, TF1 for the others)."""
    return TF2 if starter_type(architecture) in TF2_FEATURE_EXTRACTORS else TF1


def starter_type(architecture: str) -> str:
    """The ``feature_extractor.type`` a starter architecture builds (a variant may set it)."""
    from odflow.workflow.starter import variant_type

    return variant_type(architecture)


def other_layout_hint(layout: TarballLayout, available: set[str]) -> str:
    """A sentence for a tarball missing ``layout``'s files but holding the other layout's."""
    for other in LAYOUTS.values():
        if other is not layout and set(other.members) <= available:
            return (f" It holds the {other.name.upper()} zoo's layout: set model.layout: "
                    f"{other.name} (or auto) in config.yaml, or `--layout {other.name}`.")
    return ""
