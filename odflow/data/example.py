"""One image and its boxes as a ``tf.train.Example`` in the TF Object Detection API's layout.

The key names are the API's own (``image/encoded``, ``image/object/bbox/xmin``...), so records
written here can be read by the API's tools and records users already made with
``generate_tfrecord.py`` can be read by odflow.  The image bytes are stored as given, never
re-encoded: re-encoding a JPEG loses quality and costs most of the conversion time.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
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
IS_CROWD = "image/object/is_crowd"
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
    ``difficult``/``is_crowd``/``truncated``/``view`` are ``None`` when the source does not
    say.  ``is_crowd`` marks a box around a group (COCO's ``iscrowd``): COCO evaluation neither
    counts it as missed nor a detection on it as false.
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
    is_crowd: Sequence[int] | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        n = len(self.boxes)
        lengths = {"class_texts": len(self.class_texts), "class_ids": len(self.class_ids)}
        for name in ("difficult", "truncated", "view", "is_crowd"):
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
    is_crowd: np.ndarray         # int32 [N], 0 where the record has none

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    def decode_image(self) -> np.ndarray:
        """The pixels as uint8 ``[H, W, 3]`` (RGB), decoded with Pillow."""
        from PIL import Image

        with Image.open(io.BytesIO(self.encoded)) as image:
            return np.asarray(image.convert("RGB"))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _header_size(encoded: bytes) -> tuple[str, int, int] | None:
    """``(format, height, width)`` read straight from a JPEG's SOF or a PNG's IHDR.

    About ten times cheaper than ``PIL.Image.open``, which parses every marker segment; this
    was a large share of the conversion time.  ``None`` for anything unusual, and the caller
    falls back to Pillow.
    """
    if encoded[:8] == _PNG_SIGNATURE and encoded[12:16] == b"IHDR":
        width = int.from_bytes(encoded[16:20], "big")
        height = int.from_bytes(encoded[20:24], "big")
        return ("png", height, width) if height and width else None
    if encoded[:2] != b"\xff\xd8":
        return None
    position, end = 2, len(encoded)
    while position + 9 < end:
        if encoded[position] != 0xFF:
            return None
        marker = encoded[position + 1]
        if marker == 0xFF:                                   # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:         # markers without a length
            position += 2
            continue
        if marker in _JPEG_SOF:
            height = int.from_bytes(encoded[position + 5:position + 7], "big")
            width = int.from_bytes(encoded[position + 7:position + 9], "big")
            return ("jpeg", height, width) if height and width else None
        position += 2 + int.from_bytes(encoded[position + 2:position + 4], "big")
    return None


def image_info(encoded: bytes, source: str) -> tuple[str, int, int]:
    """``(format, height, width)`` from the image header, without decoding the pixels.

    Raises ``OdflowError`` naming ``source`` when the bytes are not a JPEG or PNG image.
    """
    from PIL import Image, UnidentifiedImageError

    fast = _header_size(encoded)
    if fast is not None:
        return fast

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


def _op_message(error: Exception) -> str:
    """TensorFlow's error text without the op-wrapper noise around it."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:\w+\].*$", "", text, flags=re.DOTALL).strip()


def check_decodable(encoded: bytes, source: str) -> None:
    """Decode the pixels fully with the decoder and call training uses (``decode_image``).

    A truncated JPEG, or one with a broken table inside that still ends with its end marker,
    has a valid header but fails here, naming ``source``, instead of failing mid-training
    with ``jpeg::Uncompress failed`` and no image named.
    """
    import tensorflow as tf

    try:
        tf.io.decode_image(encoded, channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        raise OdflowError(f"{source}: image cannot be decoded ({_op_message(error)})") from None


@functools.cache
def _example_class():
    """``tf.train.Example``, imported on first use (TensorFlow takes seconds to import)."""
    import tensorflow as tf

    return tf.train.Example


def encode_example(annotation: ImageAnnotation) -> bytes:
    """Serialise one annotated image to ``tf.train.Example`` bytes (the API's layout).

    The message is filled in place rather than built from ``tf.train.Feature(...)`` objects:
    that is about five times faster, and encoding was the largest cost of a conversion.

    ``features.feature`` is a protobuf map, whose entries protobuf writes in no fixed order
    unless asked (the order changes from one process to the next): serialising with
    ``deterministic=True`` (keys sorted) makes identical inputs give identical bytes, so a
    rebuilt record file has the digest the training fingerprint stored and resumes training.
    Every record writer (``RecordWriter.write``) encodes through here.
    """
    example = _example_class()()
    feature = example.features.feature
    feature[ENCODED].bytes_list.value.append(annotation.encoded)
    feature[FORMAT].bytes_list.value.append(annotation.image_format.encode())
    feature[FILENAME].bytes_list.value.append(annotation.filename.encode())
    feature[SOURCE_ID].bytes_list.value.append(annotation.source_id.encode())
    feature[SHA256].bytes_list.value.append(
        hashlib.sha256(annotation.encoded).hexdigest().encode())
    feature[HEIGHT].int64_list.value.append(int(annotation.height))
    feature[WIDTH].int64_list.value.append(int(annotation.width))
    ymin, xmin, ymax, xmax = annotation.boxes.T.tolist()
    # Every key is present even for an image without boxes (an empty list), as the API does.
    for key, values in ((YMIN, ymin), (XMIN, xmin), (YMAX, ymax), (XMAX, xmax)):
        feature[key].float_list.SetInParent()
        feature[key].float_list.value.extend(values)
    feature[CLASS_TEXT].bytes_list.SetInParent()
    feature[CLASS_TEXT].bytes_list.value.extend(t.encode() for t in annotation.class_texts)
    feature[CLASS_LABEL].int64_list.SetInParent()
    feature[CLASS_LABEL].int64_list.value.extend(int(i) for i in annotation.class_ids)
    if annotation.difficult is not None:
        feature[DIFFICULT].int64_list.value.extend(int(v) for v in annotation.difficult)
    if annotation.is_crowd is not None:
        feature[IS_CROWD].int64_list.value.extend(int(v) for v in annotation.is_crowd)
    if annotation.truncated is not None:
        feature[TRUNCATED].int64_list.value.extend(int(v) for v in annotation.truncated)
    if annotation.view is not None:
        feature[VIEW].bytes_list.value.extend(v.encode() for v in annotation.view)
    return example.SerializeToString(deterministic=True)


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
    try:
        example = _example_class().FromString(serialized)
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
    crowd_values = _values(fmap, IS_CROWD)
    is_crowd = (np.asarray(crowd_values, np.int32) if crowd_values else np.zeros(n, np.int32))
    if len(difficult) != n or len(is_crowd) != n:
        raise OdflowError(f"{source}: {n} boxes but {len(difficult)} {DIFFICULT} and "
                          f"{len(is_crowd)} {IS_CROWD} flags")
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
        is_crowd=is_crowd,
    )
