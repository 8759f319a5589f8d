"""One image and its boxes as a ``tf.train.Example`` in the TF Object Detection API's layout.

The key names are the API's own (``image/encoded``, ``image/object/bbox/xmin``...), so records
written here can be read by the API's tools and records users already made with
``generate_tfrecord.py`` can be read by odflow.  The image bytes are stored as given, never
re-encoded: re-encoding a JPEG loses quality and costs most of the conversion time.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from odflow.errors import OdflowError

# Feature keys of the API's record layout.
ENCODED = "image/encoded"
FORMAT = "image/format"
FILENAME = "image/filename"
SOURCE_ID = "image/source_id"
SHA256 = "image/key/sha256"
HEIGHT = "image/height"
WIDTH = "image/width"
XMIN = "image/object/bbox/xmin"
XMAX = "image/object/bbox/xmax"
YMIN = "image/object/bbox/ymin"
YMAX = "image/object/bbox/ymax"
CLASS_TEXT = "image/object/class/text"
CLASS_LABEL = "image/object/class/label"
DIFFICULT = "image/object/difficult"
TRUNCATED = "image/object/truncated"
VIEW = "image/object/view"

#: Keys every record must have (the per-object lists may be empty, but present).
REQUIRED_KEYS = (ENCODED, FORMAT, FILENAME, SOURCE_ID, HEIGHT, WIDTH,
                 XMIN, XMAX, YMIN, YMAX, CLASS_LABEL)

#: Pillow's format name -> the value of ``image/format``.
_FORMATS = {"JPEG": "jpeg", "PNG": "png"}


@dataclass
class ImageAnnotation:
    """What a converter knows about one image, before it becomes a record.

    ``boxes`` are ``[ymin, xmin, ymax, xmax]`` normalised to [0, 1] (the project's convention);
    ``difficult``/``truncated``/``view`` are ``None`` when the source does not say.
    """

    encoded: bytes
    image_format: str
    filename: str
    source_id: str
    height: int
    width: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    class_texts: Sequence[str] = ()
    class_ids: Sequence[int] = ()
    difficult: Sequence[int] | None = None
    truncated: Sequence[int] | None = None
    view: Sequence[str] | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        n = len(self.boxes)
        lengths = {"class_texts": len(self.class_texts), "class_ids": len(self.class_ids)}
        for name in ("difficult", "truncated", "view"):
            values = getattr(self, name)
            if values is not None:
                lengths[name] = len(values)
        wrong = {k: v for k, v in lengths.items() if v != n}
        if wrong:
            raise ValueError(f"{self.filename}: {n} boxes but {wrong}")


@dataclass
class DecodedExample:
    """A record read back into numpy (evaluation ground truth, inspection, tests)."""

    encoded: bytes
    image_format: str
    filename: str
    source_id: str
    sha256: str
    height: int
    width: int
    boxes: np.ndarray            # float32 [N, 4] ymin, xmin, ymax, xmax (normalised)
    classes: np.ndarray          # int32 [N]
    class_texts: list[str]
    difficult: np.ndarray        # int32 [N], 0 where the record has none
    truncated: np.ndarray | None
    view: list[str] | None

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    def decode_image(self) -> np.ndarray:
        """The pixels as uint8 ``[H, W, 3]`` (RGB), decoded with Pillow."""
        from PIL import Image

        with Image.open(io.BytesIO(self.encoded)) as image:
            return np.asarray(image.convert("RGB"))


def image_info(encoded: bytes, source: str) -> tuple[str, int, int]:
    """``(format, height, width)`` from the image header, without decoding the pixels.

    Raises ``OdflowError`` naming ``source`` when the bytes are not a JPEG or PNG image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(encoded)) as image:
            pil_format = image.format
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise OdflowError(f"{source}: not a readable image ({error})") from None
    if pil_format not in _FORMATS:
        raise OdflowError(f"{source}: image format {pil_format} is not supported; "
                          "convert it to JPEG or PNG")
    return _FORMATS[pil_format], height, width


def check_decodable(encoded: bytes, source: str) -> None:
    """Decode the pixels fully: a truncated JPEG has a valid header but fails here."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(encoded)) as image:
            image.load()
    except Exception as error:  # noqa: BLE001 - Pillow raises many types for corrupt data
        raise OdflowError(f"{source}: image cannot be decoded ({error})") from None


def _bytes_feature(values: Sequence[bytes]):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int_feature(values: Sequence[int]):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _float_feature(values: Sequence[float]):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def encode_example(annotation: ImageAnnotation) -> bytes:
    """Serialise one annotated image to ``tf.train.Example`` bytes (the API's layout)."""
    import tensorflow as tf

    boxes = annotation.boxes
    features = {
        ENCODED: _bytes_feature([annotation.encoded]),
        FORMAT: _bytes_feature([annotation.image_format.encode()]),
        FILENAME: _bytes_feature([annotation.filename.encode()]),
        SOURCE_ID: _bytes_feature([annotation.source_id.encode()]),
        SHA256: _bytes_feature([hashlib.sha256(annotation.encoded).hexdigest().encode()]),
        HEIGHT: _int_feature([annotation.height]),
        WIDTH: _int_feature([annotation.width]),
        YMIN: _float_feature(boxes[:, 0].tolist()),
        XMIN: _float_feature(boxes[:, 1].tolist()),
        YMAX: _float_feature(boxes[:, 2].tolist()),
        XMAX: _float_feature(boxes[:, 3].tolist()),
        CLASS_TEXT: _bytes_feature([t.encode() for t in annotation.class_texts]),
        CLASS_LABEL: _int_feature(annotation.class_ids),
    }
    if annotation.difficult is not None:
        features[DIFFICULT] = _int_feature(annotation.difficult)
    if annotation.truncated is not None:
        features[TRUNCATED] = _int_feature(annotation.truncated)
    if annotation.view is not None:
        features[VIEW] = _bytes_feature([v.encode() for v in annotation.view])
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def _values(feature_map, key: str):
    if key not in feature_map:
        return None
    feature = feature_map[key]
    kind = feature.WhichOneof("kind")
    if kind is None:
        return []
    return list(getattr(feature, kind).value)


def decode_example(serialized: bytes, source: str = "record") -> DecodedExample:
    """Parse ``tf.train.Example`` bytes into numpy; ``OdflowError`` names missing keys."""
    import tensorflow as tf

    try:
        example = tf.train.Example.FromString(serialized)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise OdflowError(f"{source}: not a tf.train.Example ({error})") from None
    fmap = example.features.feature
    missing = [key for key in REQUIRED_KEYS if key not in fmap]
    if missing:
        raise OdflowError(f"{source}: missing keys {', '.join(missing)}")

    def one(key: str, default=None):
        values = _values(fmap, key)
        if not values:
            if default is None:
                raise OdflowError(f"{source}: key {key} is empty")
            return default
        return values[0]

    ymin, xmin, ymax, xmax = (np.asarray(_values(fmap, k), np.float32)
                              for k in (YMIN, XMIN, YMAX, XMAX))
    if not len(ymin) == len(xmin) == len(ymax) == len(xmax):
        raise OdflowError(f"{source}: the bbox lists have different lengths "
                          f"(ymin {len(ymin)}, xmin {len(xmin)}, ymax {len(ymax)}, xmax {len(xmax)})")
    n = len(ymin)
    classes = np.asarray(_values(fmap, CLASS_LABEL), np.int32)
    if len(classes) != n:
        raise OdflowError(f"{source}: {n} boxes but {len(classes)} class labels")
    texts = [t.decode("utf-8", "replace") for t in (_values(fmap, CLASS_TEXT) or [])]
    difficult_values = _values(fmap, DIFFICULT)
    difficult = (np.asarray(difficult_values, np.int32) if difficult_values
                 else np.zeros(n, np.int32))
    truncated_values = _values(fmap, TRUNCATED)
    view_values = _values(fmap, VIEW)
    return DecodedExample(
        encoded=one(ENCODED),
        image_format=one(FORMAT, b"").decode(),
        filename=one(FILENAME, b"").decode("utf-8", "replace"),
        source_id=one(SOURCE_ID, b"").decode("utf-8", "replace"),
        sha256=one(SHA256, b"").decode() if _values(fmap, SHA256) else "",
        height=int(one(HEIGHT)),
        width=int(one(WIDTH)),
        boxes=np.stack([ymin, xmin, ymax, xmax], axis=1).reshape(n, 4),
        classes=classes,
        class_texts=texts,
        difficult=difficult,
        truncated=(np.asarray(truncated_values, np.int32)
                   if truncated_values is not None else None),
        view=[v.decode() for v in view_values] if view_values is not None else None,
    )
