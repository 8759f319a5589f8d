"""Synthetic faces for the offline demo: the whole pipeline runs with no download.

A face here is a skin-toned ellipse with two eyes, a nose and a mouth (often hair and brows),
drawn at sizes from about 12 px to half the image, several per image, with occlusion, blur,
lighting changes and noise, on cluttered backgrounds.  Among the clutter are *distractors*:
skin-toned ellipses, circles and blobs, some with hair (a head seen from behind), but never
with eyes or a mouth.  A detector therefore has to learn the facial features, not "find the
beige ellipse", and the ground truth stays unambiguous, so a small SSD trained for minutes on
a CPU can learn it well.

Everything is drawn with Pillow and numpy from a generator seeded with ``(seed, split,
index)``: image ``i`` is the same whatever ``--num-images`` is, and train and val differ.
"""

from __future__ import annotations

import io
import logging
import os
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance

from odflow.data.convert import class_id, resolve_label_map
from odflow.data.example import ImageAnnotation
from odflow.data.records import RecordWriter
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

#: Default numbers of images per split for the demo (train is the CLI default).
DEFAULT_NUM_IMAGES = {"train": 400, "val": 100, "test": 100}

# Skin tones from light to dark (RGB); a face takes a random mix of two neighbours plus jitter.
_SKIN = np.array([(255, 224, 196), (241, 194, 155), (224, 172, 125), (198, 134, 86),
                  (161, 102, 62), (120, 75, 45), (84, 54, 38)], np.float64)
_HAIR = np.array([(20, 16, 14), (45, 30, 20), (90, 60, 30), (150, 110, 60), (210, 180, 120),
                  (160, 160, 160), (120, 40, 20)], np.float64)
_LIPS = np.array([(150, 40, 50), (120, 50, 50), (90, 30, 35), (170, 80, 80)], np.float64)


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator; the defaults are what the demo is tuned for."""

    height: int = 256
    width: int = 256
    min_face: int = 12                 # smallest face height, pixels
    max_face_fraction: float = 0.5     # largest face height, fraction of the shorter side
    small_face_share: float = 0.15     # share of faces drawn between min_face and 2 x min_face
    max_faces: int = 4
    empty_image_share: float = 0.08    # images with distractors only
    min_distractors: int = 2
    max_distractors: int = 6
    occlusion_share: float = 0.25
    blur_share: float = 0.3
    jpeg_quality: int = 90


@dataclass
class SyntheticImage:
    """One generated image (for tests of other modules, without going through a record)."""

    image: np.ndarray          # uint8 [H, W, 3]
    boxes: np.ndarray          # float32 [N, 4] ymin, xmin, ymax, xmax, normalised
    boxes_abs: np.ndarray      # float32 [N, 4] the same in pixels
    occluded: np.ndarray       # int32 [N], 1 where an occluder covers part of the face


def _color(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> tuple[int, int, int]:
    i = rng.integers(len(palette) - 1)
    t = rng.random()
    base = palette[i] * (1 - t) + palette[i + 1] * t + rng.normal(0, jitter, 3)
    return tuple(min(255, max(0, int(v))) for v in base)


def _skin(rng: np.random.Generator) -> tuple[int, int, int]:
    return _color(rng, _SKIN, 8.0)


def _darker(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in color)


def _background(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """A smooth two-colour gradient in a random direction."""
    c0 = rng.uniform(20, 235, 3)
    c1 = rng.uniform(20, 235, 3)
    angle = rng.uniform(0, 2 * np.pi)
    # Linear in x and y, so built from a row and a column by broadcasting; the colours come
    # from a palette (Pillow maps it in C), which is several times faster than float RGB.
    tx = np.cos(angle) * np.linspace(0, 1, width, dtype=np.float32)
    ty = np.sin(angle) * np.linspace(0, 1, height, dtype=np.float32)
    t = ty[:, None] + tx[None, :]
    t -= t.min()
    t *= 255.0 / max(float(t.max()), 1e-6)
    image = Image.fromarray(t.astype(np.uint8), mode="L")
    ramp = np.linspace(0, 1, 256)[:, None]
    palette = np.clip(c0 + ramp * (c1 - c0), 0, 255).astype(np.uint8)
    image = image.convert("P")
    image.putpalette(palette.tobytes())
    return image.convert("RGB")


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, height: int, width: int,
             count: int) -> None:
    """Rectangles, lines, polygons and rings in random colours."""
    for _ in range(count):
        kind = rng.integers(4)
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        w, h = rng.uniform(0.03, 0.4) * width, rng.uniform(0.03, 0.4) * height
        if kind == 0:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=color)
        elif kind == 1:
            draw.line([x0, y0, x0 + rng.uniform(-1, 1) * w * 2, y0 + rng.uniform(-1, 1) * h * 2],
                      fill=color, width=int(rng.integers(1, 6)))
        elif kind == 2:
            points = [(x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)) for _ in range(3 + rng.integers(3))]
            draw.polygon(points, fill=color)
        else:
            draw.ellipse([x0, y0, x0 + w, y0 + w], outline=color, width=int(rng.integers(1, 4)))


def _blob(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float
          ) -> list[tuple[float, float]]:
    """An irregular closed shape around (cx, cy)."""
    n = 12
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radii = rng.uniform(0.7, 1.15, n)
    return [(cx + rx * r * np.cos(a), cy + ry * r * np.sin(a)) for a, r in zip(angles, radii)]


def _distractor(rng: np.random.Generator, draw: ImageDraw.ImageDraw, height: int, width: int,
                min_size: float, max_size: float) -> None:
    """Something face-like without facial features: must NOT be detected."""
    size = float(np.exp(rng.uniform(np.log(min_size), np.log(max_size))))
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    ry = size / 2
    rx = ry * rng.uniform(0.6, 1.3)
    color = _skin(rng) if rng.random() < 0.75 else tuple(int(v) for v in rng.integers(0, 256, 3))
    kind = rng.integers(4)
    if kind == 3:   # a head from behind: hair over a skin ellipse, no face
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=color)
        hair = _color(rng, _HAIR, 10.0)
        draw.ellipse([cx - rx * 1.08, cy - ry * 1.1, cx + rx * 1.08, cy + ry * 0.8], fill=hair)
    elif kind == 2:
        draw.polygon(_blob(rng, cx, cy, rx, ry), fill=color)
    elif kind == 1:
        draw.ellipse([cx - ry, cy - ry, cx + ry, cy + ry], fill=color)
    else:
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=color,
                     outline=_darker(color, 0.7) if rng.random() < 0.5 else None)


def _face(rng: np.random.Generator, draw: ImageDraw.ImageDraw, x0: float, y0: float,
          w: float, h: float) -> None:
    """Hair, face, brows, eyes, nose and mouth inside the box (x0, y0, w, h)."""
    skin = _skin(rng)
    cx = x0 + w / 2
    if rng.random() < 0.75:
        hair = _color(rng, _HAIR, 10.0)
        top = y0 - h * rng.uniform(0.04, 0.15)
        bottom = y0 + h * rng.uniform(0.35, 0.75)
        side = w * rng.uniform(0.02, 0.12)
        draw.ellipse([x0 - side, top, x0 + w + side, bottom], fill=hair)
    draw.ellipse([x0, y0, x0 + w, y0 + h], fill=skin)
    yaw = rng.uniform(-0.08, 0.08) * w            # features shifted as if turned a little
    eye_y = y0 + h * rng.uniform(0.4, 0.47)
    eye_dx = w * rng.uniform(0.17, 0.22)
    eye_r = max(w * rng.uniform(0.06, 0.09), 0.9)
    eye_ry = eye_r * rng.uniform(0.6, 0.9)
    dark = tuple(int(v) for v in rng.integers(10, 60, 3))
    for side in (-1, 1):
        ex = cx + yaw + side * eye_dx
        if w >= 28:
            draw.ellipse([ex - eye_r * 1.4, eye_y - eye_ry * 1.2, ex + eye_r * 1.4,
                          eye_y + eye_ry * 1.2], fill=(240, 240, 235))
            draw.line([ex - eye_r * 1.5, eye_y - eye_ry * 2.6, ex + eye_r * 1.5,
                       eye_y - eye_ry * 2.8], fill=_darker(skin, 0.45),
                      width=max(1, int(h * 0.025)))
        draw.ellipse([ex - eye_r, eye_y - eye_ry, ex + eye_r, eye_y + eye_ry], fill=dark)
    nose_y = y0 + h * rng.uniform(0.58, 0.64)
    nose_w = w * 0.07
    nx = cx + yaw * 1.3
    nose_color = _darker(skin, rng.uniform(0.6, 0.8))
    if w >= 16:
        draw.polygon([(nx, eye_y + eye_ry), (nx - nose_w, nose_y), (nx + nose_w, nose_y)],
                     fill=nose_color)
    else:
        draw.point([(nx, nose_y)], fill=nose_color)
    mouth_y = y0 + h * rng.uniform(0.74, 0.8)
    mouth_w = w * rng.uniform(0.15, 0.22)
    mouth_h = max(h * rng.uniform(0.025, 0.07), 0.8)
    lips = _color(rng, _LIPS, 10.0)
    mx = cx + yaw
    if rng.random() < 0.5:
        draw.ellipse([mx - mouth_w, mouth_y - mouth_h, mx + mouth_w, mouth_y + mouth_h],
                     fill=lips)
    else:  # a smile
        draw.arc([mx - mouth_w, mouth_y - mouth_h * 3, mx + mouth_w, mouth_y + mouth_h],
                 start=10, end=170, fill=lips, width=max(1, int(h * 0.04)))


def _occlude(rng: np.random.Generator, draw: ImageDraw.ImageDraw, x0: float, y0: float,
             w: float, h: float) -> None:
    """Cover one side of the face (15-40 %) with an object in front of it."""
    color = tuple(int(v) for v in rng.integers(0, 256, 3))
    share = rng.uniform(0.15, 0.4)
    side = rng.integers(4)
    if side == 0:
        rect = [x0 - w * 0.1, y0 + h * (1 - share), x0 + w * 1.1, y0 + h * 1.2]    # bottom
    elif side == 1:
        rect = [x0 - w * 0.1, y0 - h * 0.2, x0 + w * share, y0 + h * 1.1]        # left
    elif side == 2:
        rect = [x0 + w * (1 - share), y0 - h * 0.2, x0 + w * 1.1, y0 + h * 1.1]  # right
    else:
        rect = [x0 - w * 0.1, y0 - h * 0.2, x0 + w * 1.1, y0 + h * share]        # top (a hat)
    if rng.random() < 0.5:
        draw.rectangle(rect, fill=color)
    else:
        draw.ellipse(rect, fill=color)


def _iou(box: np.ndarray, others: list[np.ndarray]) -> float:
    if not others:
        return 0.0
    o = np.asarray(others)
    iy = np.clip(np.minimum(box[2], o[:, 2]) - np.maximum(box[0], o[:, 0]), 0, None)
    ix = np.clip(np.minimum(box[3], o[:, 3]) - np.maximum(box[1], o[:, 1]), 0, None)
    inter = iy * ix
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (o[:, 2] - o[:, 0]) * (o[:, 3] - o[:, 1])
    return float(np.max(inter / (area + areas - inter)))


def _face_height(rng: np.random.Generator, config: SyntheticConfig) -> float:
    largest = config.max_face_fraction * min(config.height, config.width)
    smallest = float(config.min_face)
    if rng.random() < config.small_face_share:
        return float(rng.uniform(smallest, min(2 * smallest, largest)))
    low = min(2 * smallest, largest)
    return float(np.exp(rng.uniform(np.log(low), np.log(largest))))


_NOISE_BANKS: dict[tuple[int, int, float], Image.Image] = {}
_NOISE_SIGMAS = (2.5, 5.0)


def _noise_bank(height: int, width: int, sigma: float) -> Image.Image:
    """Fixed Gaussian noise around 128, twice the image size; images use random windows of it.

    Fresh noise for every pixel was the generator's slowest step; a window at a random offset
    of one fixed field looks the same to a detector and stays deterministic.
    """
    key = (height, width, sigma)
    if key not in _NOISE_BANKS:
        bank_rng = np.random.default_rng(12345)
        noise = 128 + sigma * bank_rng.normal(0, 1, (2 * height, 2 * width, 3))
        _NOISE_BANKS[key] = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
    return _NOISE_BANKS[key]


def _light(rng: np.random.Generator, image: Image.Image) -> Image.Image:
    """Global brightness, a light falling off to one side, and sensor noise."""
    width, height = image.size
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.3))
    strength = rng.uniform(0.0, 0.45)
    if strength > 0.05:
        angle = rng.uniform(0, 2 * np.pi)
        tx = np.cos(angle) * np.linspace(0, 1, width, dtype=np.float32)
        ty = np.sin(angle) * np.linspace(0, 1, height, dtype=np.float32)
        t = ty[:, None] + tx[None, :]
        t -= t.min()
        t /= max(float(t.max()), 1e-6)
        shade = Image.fromarray((255 * (1 - strength * t)).astype(np.uint8), mode="L")
        image = ImageChops.multiply(image, Image.merge("RGB", (shade, shade, shade)))
    choice = int(rng.integers(len(_NOISE_SIGMAS) + 1))
    if choice < len(_NOISE_SIGMAS):
        oy, ox = int(rng.integers(height)), int(rng.integers(width))
        bank = _noise_bank(height, width, _NOISE_SIGMAS[choice])
        window = bank.crop((ox, oy, ox + width, oy + height))
        image = ImageChops.add(image, window, scale=1.0, offset=-128)
    return image


def generate_example(rng: np.random.Generator,
                     config: SyntheticConfig = SyntheticConfig()) -> SyntheticImage:
    """Draw one image and its face boxes (in memory; no files)."""
    height, width = config.height, config.width
    image = _background(rng, height, width)
    draw = ImageDraw.Draw(image)
    _clutter(rng, draw, height, width, int(rng.integers(6, 16)))
    largest = config.max_face_fraction * min(height, width)
    # Distractors first, then faces over them; a few more distractors may overlap faces' edges.
    for _ in range(int(rng.integers(config.min_distractors, config.max_distractors + 1))):
        _distractor(rng, draw, height, width, config.min_face, largest)
    num_faces = 0 if rng.random() < config.empty_image_share else int(
        rng.integers(1, config.max_faces + 1))
    boxes: list[np.ndarray] = []
    occluded: list[int] = []
    for _ in range(num_faces):
        for _attempt in range(10):
            h = _face_height(rng, config)
            w = h * rng.uniform(0.72, 0.88)
            x0 = rng.uniform(0, width - w)
            y0 = rng.uniform(0, height - h)
            box = np.array([y0, x0, y0 + h, x0 + w])
            if _iou(box, boxes) < 0.05:
                break
        else:
            continue
        _face(rng, draw, x0, y0, w, h)
        is_occluded = rng.random() < config.occlusion_share
        if is_occluded:
            _occlude(rng, draw, x0, y0, w, h)
        boxes.append(box)
        occluded.append(int(is_occluded))
    if rng.random() < config.blur_share:
        # Down- and up-sampling: the blur of a low-resolution camera, and much cheaper than a
        # Gaussian filter.
        factor = rng.uniform(1.4, 3.0)
        small = (max(1, int(width / factor)), max(1, int(height / factor)))
        image = image.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    pixels = np.asarray(_light(rng, image))
    boxes_abs = np.asarray(boxes, np.float32).reshape(-1, 4)
    scale = np.array([height, width, height, width], np.float32)
    return SyntheticImage(pixels, np.clip(boxes_abs / scale, 0.0, 1.0),
                          boxes_abs, np.asarray(occluded, np.int32))


def split_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of how many are made."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def encode_jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def generate_records(output_path: str | os.PathLike, *, split: str = "train",
                     num_images: int | None = None, seed: int = 1,
                     label_map_path: str | os.PathLike | None = None,
                     class_name: str = "face", num_shards: int = 1,
                     config: SyntheticConfig = SyntheticConfig()) -> DatasetSummary:
    """Write ``num_images`` synthetic images of ``split`` as records; returns the summary."""
    if num_images is None:
        num_images = DEFAULT_NUM_IMAGES.get(split, 100)
    if num_images < 1:
        raise OdflowError(f"{output_path}: --num-images is {num_images}; an empty {split} set "
                          "cannot train or be evaluated (dataset.synthetic.*_images in "
                          "config.yaml must be at least 1)")
    label_map = resolve_label_map(label_map_path, [class_name])
    label = class_id(label_map, class_name, str(label_map_path or "--class-name"))
    summary = DatasetSummary()
    options = {"source": "synthetic", "split": split, "seed": seed, "num_images": num_images,
               "class": class_name, "label": label,
               "config": {k: getattr(config, k) for k in config.__dataclass_fields__}}
    with RecordWriter(output_path, num_shards, summary, {"options": options}) as writer:
        for index in range(num_images):
            sample = generate_example(split_rng(seed, split, index), config)
            n = len(sample.boxes)
            name = f"synthetic/{split}/{index:06d}.jpg"
            writer.write(ImageAnnotation(
                encoded=encode_jpeg(sample.image, config.jpeg_quality), image_format="jpeg",
                filename=name, source_id=f"synthetic-{split}-{index:06d}",
                height=config.height, width=config.width, boxes=sample.boxes,
                class_texts=[class_name] * n, class_ids=[label] * n))
    return summary
