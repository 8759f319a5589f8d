"""Build the offline demo's model tarball in the model zoo's layout.

The demo must run with no downloads, yet exercise the same extract → copy → patch →
fine-tune → export path as the real ``ssd_mobilenet_v1_coco`` tarball.  So this writes a
tarball shaped like the zoo's (``<name>/pipeline.config``, ``model.ckpt.{index,data}``,
``checkpoint``) holding a small SSD with the zoo's variable names and random initial weights
(no pretrained weights are shipped or fetched).  The bytes depend only on the arguments:
same arguments, same tarball.

An architecture of the TF2 zoo (``ssd_mobilenet_v2_keras``, ``ssd_mobilenet_v1_fpn_keras``,
``ssd_mobilenet_v2_fpn_keras`` (FPNLite), ``ssd_resnet{50,101,152}_v1_fpn_keras``,
``ssd_efficientnet-b0_bifpn_keras``: ``odflow.workflow.layout.TF2_FEATURE_EXTRACTORS``) is written as the TF2 zoo writes it:
``<name>/pipeline.config`` and an object-based checkpoint ``<name>/checkpoint/ckpt-0.*`` under
the TF2 API's keys (``odflow.model.tf2_checkpoint.write_v2``) beside the state file
``<name>/checkpoint/checkpoint``; no ``saved_model/`` (the workflow never reads it).  So tests
and the demo fine-tune every TF2 family through the same V2 path as a downloaded tarball.

The architecture (``model.starter.architecture``) is any feature-extractor type the model
builder has registered (``odflow.model.builder.FEATURE_EXTRACTORS``), filled into one
template; an architecture whose config differs in more than ``feature_extractor.type``
(SSDLite's depthwise layers, FPN's anchors, weight-shared box predictor and focal loss) adds
``starter_variants/<architecture>.overrides``: ``PATH=VALUE`` lines in the grammar of
``pipeline.overrides`` (``odflow.config.overrides``), applied to the filled-in template.  A
variant may also be a name that is not a type itself (``ssdlite_mobilenet_v2`` sets
``model.ssd.feature_extractor.type=ssd_mobilenet_v2``); it is offered once its type is
registered.  Aliases of one builder (``ssd_mobilenet_v1_keras``) are offered once.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_output

log = logging.getLogger(__name__)

TEMPLATE = "starter_pipeline.config"
VARIANTS = "starter_variants"
DEFAULT_ARCHITECTURE = "ssd_mobilenet_v1"
_TYPE_PATH = "model.ssd.feature_extractor.type"


def _variants() -> dict[str, list[str]]:
    """Architecture name -> its ``PATH=VALUE`` overrides of the template."""
    folder = resources.files("odflow.workflow").joinpath(VARIANTS)
    if not folder.is_dir():
        return {}
    variants = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".overrides"):
            lines = [line.strip() for line in entry.read_text().splitlines()]
            variants[entry.name[: -len(".overrides")]] = [
                line for line in lines if line and not line.startswith("#")]
    return variants


def _variant_type(name: str, overrides: list[str]) -> str:
    for line in overrides:
        path, _, value = line.partition("=")
        if path.strip() == _TYPE_PATH:
            return value.strip().strip("'\"")
    return name


def variant_type(architecture: str) -> str:
    """The ``feature_extractor.type`` a starter architecture builds: its variant's type line,
    else the name itself.  Reads only the variant files (no TensorFlow), so the workflow can
    ask while it plans."""
    return _variant_type(architecture, _variants().get(architecture, []))


def starter_architectures() -> list[str]:
    """The architectures a starter model can be built for: each registered feature-extractor
    builder once (under its first name), and each variant whose type is registered."""
    from odflow.model.builder import FEATURE_EXTRACTORS

    names, builders = set(), set()
    for name, build in FEATURE_EXTRACTORS.items():
        if build not in builders:
            names.add(name)
            builders.add(build)
    for name, overrides in _variants().items():
        if _variant_type(name, overrides) in FEATURE_EXTRACTORS:
            names.add(name)
    return sorted(names)


def starter_pipeline_text(*, depth_multiplier: float, image_size: int, num_classes: int,
                          architecture: str = DEFAULT_ARCHITECTURE) -> str:
    """The starter's pipeline.config (our own template, filled in)."""
    supported = starter_architectures()
    if architecture not in supported:
        raise OdflowError(f"model.starter.architecture {architecture!r} is not supported; "
                          "use one of " + ", ".join(supported))
    values = {
        "architecture": architecture,
        "depth_multiplier": repr(float(depth_multiplier)),
        "image_size": str(int(image_size)),
        "num_classes": str(int(num_classes)),
        # The synthetic faces go down to 12 px of a 256-px image (5 %): the lowest layer's
        # anchors start at 10 % of the input.  At 0.2 (the zoo's value) the smallest faces
        # overlapped no anchor by IoU 0.5, were never matched, and the demo's AP50 stayed
        # lower (0.885 after 2,500 steps against 0.896 at 0.1; 0.68 against 0.79 at step
        # 1,000: benchmarks/train_step.md).
        "min_scale": "0.1",
    }
    fill = lambda text: re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], text)
    text = fill(resources.files("odflow.workflow").joinpath(TEMPLATE).read_text())
    overrides = _variants().get(architecture)
    if overrides is None:
        return text
    # A variant may use the same {placeholders} (EfficientDet's resizer takes {image_size}).
    overrides = [fill(line) for line in overrides]
    from google.protobuf import text_format

    from odflow.config import loads
    from odflow.config.overrides import apply_overrides

    config = apply_overrides(loads(text, source=TEMPLATE), overrides)
    return (f"# odflow starter model ({architecture}): {TEMPLATE} with "
            f"{VARIANTS}/{architecture}.overrides applied.\n"
            + text_format.MessageToString(config))


def write_starter_checkpoint(pipeline_text: str, directory: Path, seed: int) -> None:
    """Initialise the model from the config; save it as the zoo does (``model.ckpt`` +
    ``checkpoint``), under the zoo's variable names, at global step 0."""
    import tensorflow as tf

    from odflow.config import loads
    from odflow.export.checkpoint import write_export_checkpoint
    from odflow.model.builder import build

    tf.keras.utils.set_random_seed(seed)
    config = loads(pipeline_text, source=TEMPLATE)
    model = build(config.model, is_training=False)
    values = {name: variable.numpy() for name, variable in model.named_variables().items()}
    write_export_checkpoint(directory, values, global_step=0)
    log.info("initialised %d variables (seed %d)", len(values), seed)


def write_starter_checkpoint_v2(pipeline_text: str, directory: Path, seed: int) -> None:
    """Initialise the model from the config; save it as the TF2 exporter does: an object-based
    ``ckpt-0`` under the TF2 API's keys, and the ``checkpoint`` state file naming it."""
    import tensorflow as tf

    from odflow.config import loads
    from odflow.model.builder import build
    from odflow.model.tf2_checkpoint import key_mapping, write_v2

    tf.keras.utils.set_random_seed(seed)
    config = loads(pipeline_text, source=TEMPLATE)
    model = build(config.model, is_training=False)
    write_v2(model, directory / "ckpt-0")
    (directory / "checkpoint").write_text('model_checkpoint_path: "ckpt-0"\n'
                                          'all_model_checkpoint_paths: "ckpt-0"\n')
    log.info("initialised %d variables (seed %d), TF2 keys",
             len(key_mapping(model).variables), seed)


def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def build_starter_tarball(output: str | Path, *, name: str, depth_multiplier: float = 0.25,
                          image_size: int = 256, num_classes: int = 1, seed: int = 7,
                          architecture: str = DEFAULT_ARCHITECTURE) -> Path:
    """Write ``output`` (.tar.gz) with ``<name>/{pipeline.config, model.ckpt.*, checkpoint}``
    (TF1 zoo layout), or ``<name>/{pipeline.config, checkpoint/{checkpoint, ckpt-0.*}}`` for an
    architecture of the TF2 zoo."""
    from odflow.workflow.layout import TF2, starter_layout

    pipeline_text = starter_pipeline_text(depth_multiplier=depth_multiplier,
                                          image_size=image_size, num_classes=num_classes,
                                          architecture=architecture)
    tf2 = starter_layout(architecture) == TF2
    with tempfile.TemporaryDirectory() as tmp:
        if tf2:
            write_starter_checkpoint_v2(pipeline_text, Path(tmp), seed)
        else:
            write_starter_checkpoint(pipeline_text, Path(tmp), seed)
        members = {"pipeline.config": pipeline_text.encode()}
        folder = "checkpoint/" if tf2 else ""
        for path in sorted(Path(tmp).iterdir()):
            members[folder + path.name] = path.read_bytes()
        # gzip's header holds a name and a time; empty and 0 keep the bytes reproducible.
        with atomic_output(output) as tmp_out, open(tmp_out, "wb") as raw, \
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            for member in sorted(members):
                _add_file(archive, f"{name}/{member}", members[member])
    log.info("wrote %s (%s)", output, ", ".join(sorted(members)))
    return Path(output)
