"""Training and evaluation batches from record files, as a ``tf.data.Dataset``.

The order of the stages follows the API's input pipeline (shuffle the file names,
interleave the files, shuffle the records, then decode and transform), so that a config
means what it meant there, with one difference: each epoch is shuffled on its own, with a
seed of its own, instead of one shuffle buffer running across the repeats.  That makes the
stream a function of (seed, position), so a resumed training run continues the very stream
the interrupted one was reading (``start``): it skips the finished epochs without reading
them and reads past the rest of the current one without decoding it.  Decoding, augmenting and resizing run in one parallel map with
``AUTOTUNE``: on a CPU the pipeline competes with the training step for the same cores, and
tf.data's tuner sizes the parallelism better than the API's fixed ``num_parallel_batches``.

The API's queue and thread settings (``num_parallel_batches``, ``num_prefetch_batches``,
``queue_capacity``, ``min_after_dequeue``, ``prefetch_size``, ``num_parallel_map_calls``) only
tuned speed; they are ignored in favour of ``AUTOTUNE``.  Options that change what the model
sees and that odflow does not implement (keypoints, masks, extra channels...) are errors.

Randomness comes from one base seed: each epoch's shuffles get a seed folded from it and the
epoch number, and each example's augmentations a stateless seed folded from it and the
example's position in the stream, so a given ``seed`` gives the same batches in every run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import tensorflow as tf

from odflow.data import records
from odflow.errors import OdflowError
from odflow.inputs.augment import DEFAULT_FIELD as AUGMENT_FIELD
from odflow.inputs.augment import build_augmenter
from odflow.inputs.resize import build_resizer
from odflow.inputs.sample import Sample
from odflow.protos import pipeline_pb2

log = logging.getLogger(__name__)

#: Keys of a batch (the contract in docs/architecture.md).
BATCH_KEYS = ("image", "true_image_shape", "original_image_shape", "groundtruth_boxes",
              "groundtruth_classes", "num_groundtruth_boxes", "source_id")
#: Evaluation batches also carry the crowd flags, for the COCO evaluator (training has no use
#: for them, and its augmentations would have to keep them aligned with the boxes they crop).
EVAL_BATCH_KEYS = BATCH_KEYS + ("groundtruth_is_crowd",)

# InputReader options that would change what the model sees; odflow does not implement them.
_UNSUPPORTED_FLAGS = ("load_instance_masks", "load_multiclass_scores", "load_context_features",
                      "load_context_image_ids", "load_dense_pose", "load_track_id",
                      "load_keypoint_depth_features", "use_display_name",
                      "expand_labels_hierarchy")
_UNSUPPORTED_COUNTS = ("num_additional_channels", "num_keypoints")


def check_input_reader(reader: pipeline_pb2.InputReader, field: str, is_training: bool) -> None:
    """Reject options odflow does not implement, naming the field (before any data is read)."""
    kind = reader.WhichOneof("input_reader")
    if kind != "tf_record_input_reader":
        found = f"{kind} is not supported" if kind else "no reader is set"
        raise OdflowError(f"{field}: {found}; use tf_record_input_reader "
                          "{ input_path: \"<file.record>\" }")
    if not reader.tf_record_input_reader.input_path:
        raise OdflowError(f"{field}.tf_record_input_reader.input_path: not set; "
                          "name the record file(s) to read")
    if reader.input_type not in (pipeline_pb2.INPUT_DEFAULT, pipeline_pb2.TF_EXAMPLE):
        name = pipeline_pb2.InputType.Name(reader.input_type)
        raise OdflowError(f"{field}.input_type: {name} is not supported; records must hold "
                          "tf.train.Example (TF_EXAMPLE)")
    for name in _UNSUPPORTED_FLAGS:
        if getattr(reader, name):
            raise OdflowError(f"{field}.{name}: true is not supported by odflow; remove it")
    for name in _UNSUPPORTED_COUNTS:
        if getattr(reader, name):
            raise OdflowError(f"{field}.{name}: {getattr(reader, name)} is not supported by "
                              "odflow (boxes only); remove it or set it to 0")
    if reader.sample_from_datasets_weights:
        raise OdflowError(f"{field}.sample_from_datasets_weights: not supported by odflow; "
                          "remove it (all input_path files are read as one dataset)")
    if reader.frame_index != -1:
        raise OdflowError(f"{field}.frame_index: not supported by odflow (no sequence "
                          "examples); remove it")
    if reader.sample_1_of_n_examples < 1:
        raise OdflowError(f"{field}.sample_1_of_n_examples: must be at least 1")
    if is_training:
        if reader.num_readers < 1:
            raise OdflowError(f"{field}.num_readers: must be at least 1")
        if reader.shuffle and reader.shuffle_buffer_size < 1:
            raise OdflowError(f"{field}.shuffle_buffer_size: must be at least 1 when "
                              "shuffle is true")


# Both base seeds come from one ``seed``; the salts keep the augmentations' seeds apart from
# the epochs' shuffle seeds.
_AUGMENT_SALT = 0x0DF10
_SHUFFLE_SALT = 0x5EED


def _base_seed(seed: int | None, salt: int) -> tf.Tensor:
    """A stateless seed pair: ``(seed, salt)``, or fresh entropy when there is no seed."""
    if seed is None:
        high, low = (int.from_bytes(os.urandom(7), "little") for _ in range(2))
        return tf.constant([high, low], tf.int64)
    return tf.constant([int(seed), salt], tf.int64)


def _read_records(paths: list[str], reader: pipeline_pb2.InputReader) -> tf.data.Dataset:
    """One pass over the files in the given order: evaluation must see each image once."""
    dataset = tf.data.TFRecordDataset(paths)
    if reader.sample_1_of_n_examples > 1:
        dataset = dataset.shard(reader.sample_1_of_n_examples, 0)
    return dataset


def _training_stream(paths: list[str], reader: pipeline_pb2.InputReader, seed: int | None,
                     start: int) -> tf.data.Dataset:
    """``(position, record)`` pairs of the shuffled, repeated stream, from position ``start``.

    Epoch ``e`` shuffles the file names and the records with seeds folded from the base seed
    and ``e``, so it is the same in every run with that seed, and position ``start`` lies in
    epoch ``start // (records per epoch)``.  Without a seed the base seed is fresh entropy
    (every epoch still gets a different order).
    """
    deterministic = seed is not None or not reader.shuffle
    base = _base_seed(seed, _SHUFFLE_SALT)
    cycle_length = min(reader.num_readers, len(paths))
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": deterministic}

    def epoch(number: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = tf.random.experimental.stateless_fold_in(base, number)
        files = tf.data.Dataset.from_tensor_slices(paths)
        if reader.shuffle and len(paths) > 1:
            files = files.shuffle(max(1, min(reader.filenames_shuffle_buffer_size, len(paths))),
                                  seed=epoch_seed[0])
        dataset = files.interleave(tf.data.TFRecordDataset, cycle_length=cycle_length,
                                   block_length=max(1, reader.read_block_length),
                                   **(parallel if cycle_length > 1 else {}))
        if reader.sample_1_of_n_examples > 1:
            dataset = dataset.shard(reader.sample_1_of_n_examples, 0)
        if reader.shuffle:
            dataset = dataset.shuffle(reader.shuffle_buffer_size, seed=epoch_seed[1])
        return dataset

    first_epoch, offset = 0, 0
    if start > 0:
        # Records one epoch yields (every n-th with sample_1_of_n_examples); none is an error.
        per_epoch = -(-records.count_examples(paths) // reader.sample_1_of_n_examples)
        first_epoch, offset = divmod(start, per_epoch)
        log.info("continuing the training stream at example %d (epoch %d, %d into it)",
                 start, first_epoch, offset)
    last_epoch = reader.num_epochs if reader.num_epochs else tf.int64.max
    epochs = tf.data.Dataset.range(first_epoch, last_epoch)
    stream = epochs.flat_map(epoch).skip(offset)
    positions = tf.data.Dataset.range(start, tf.int64.max)
    return tf.data.Dataset.zip(positions, stream)


def _pad_or_clip(tensor: tf.Tensor, length: int) -> tf.Tensor:
    """The first ``length`` rows of ``tensor``, padded with zeros when it has fewer."""
    tensor = tensor[:length]
    padding = [[0, length - tf.shape(tensor)[0]]] + [[0, 0]] * (tensor.shape.rank - 1)
    padded = tf.pad(tensor, padding)
    return tf.ensure_shape(padded, [length] + tensor.shape.as_list()[1:])


def build_dataset(input_reader: pipeline_pb2.InputReader, *,
                  model_config: pipeline_pb2.DetectionModel,
                  augmentations: Sequence[pipeline_pb2.PreprocessingStep] = (),
                  batch_size: int,
                  is_training: bool,
                  max_number_of_boxes: int | None = None,
                  seed: int | None = None,
                  start: int = 0,
                  drop_remainder: bool | None = None,
                  field: str | None = None) -> tf.data.Dataset:
    """Batches of resized images and padded boxes (keys ``BATCH_KEYS``; ``EVAL_BATCH_KEYS``
    when not training).

    Training repeats for ``num_epochs`` (0: forever), shuffles, augments and, by default,
    drops the last partial batch (``input_reader.drop_remainder``).  Evaluation reads every
    record once, in file order, without augmentation, and keeps the last partial batch.
    Boxes are truncated/padded to ``max_number_of_boxes`` (default: the reader's, 100); classes
    outside ``1..num_classes`` are dropped with their boxes, as the API's one-hot encoding
    ignored them.  ``original_image_shape`` is the decoded image's shape, before any
    augmentation.  ``start`` (training only) is the position in the stream to begin at: a
    resumed run passes the number of examples already trained on.  ``field`` names the
    reader in error messages (default ``train_input_reader`` or ``eval_input_reader``).
    """
    field = field or ("train_input_reader" if is_training else "eval_input_reader")
    check_input_reader(input_reader, field, is_training)
    if model_config.WhichOneof("model") != "ssd":
        raise OdflowError(f"model: {model_config.WhichOneof('model') or 'nothing'} is set; "
                          "odflow supports only ssd models")
    num_classes = model_config.ssd.num_classes
    if num_classes < 1:
        raise OdflowError("model.ssd.num_classes: must be at least 1")
    resizer = build_resizer(model_config.ssd.image_resizer)
    if not is_training and augmentations:
        raise ValueError("evaluation batches are never augmented; pass augmentations=()")
    augment = build_augmenter(augmentations, AUGMENT_FIELD)
    boxes_field = "train_config.max_number_of_boxes" if is_training else "max_number_of_boxes"
    if max_number_of_boxes is None:
        max_number_of_boxes = input_reader.max_number_of_boxes
        boxes_field = f"{field}.max_number_of_boxes"
    if max_number_of_boxes < 1:
        raise OdflowError(f"{boxes_field}: must be at least 1, got {max_number_of_boxes}")
    if batch_size < 1:
        raise OdflowError(f"batch_size: must be at least 1, got {batch_size}")
    if drop_remainder is None:
        drop_remainder = input_reader.drop_remainder if is_training else False

    paths = records.expand_record_paths(list(input_reader.tf_record_input_reader.input_path))
    base_seed = _base_seed(seed, _AUGMENT_SALT) if augment is not None else None

    # Plain TF ops only (tf.cond where needed): autograph would spend seconds converting it.
    @tf.autograph.experimental.do_not_convert
    def transform(index: tf.Tensor, serialized: tf.Tensor) -> dict:
        example = records.parse_example_tensors(serialized)
        image = example["image"]
        original_shape = tf.shape(image, out_type=tf.int32)
        classes = example["groundtruth_classes"]
        known = (classes >= 1) & (classes <= num_classes)
        sample = Sample(image, tf.boolean_mask(example["groundtruth_boxes"], known),
                        tf.boolean_mask(classes, known))
        if augment is not None:
            sample = augment(sample, tf.random.experimental.stateless_fold_in(base_seed, index))
        resized, true_shape = resizer(sample.image)
        boxes = sample.boxes
        if hasattr(resizer, "realign_boxes"):  # padding: boxes into the padded frame
            boxes = resizer.realign_boxes(tf.cast(boxes, tf.float32), true_shape)
        num_boxes = tf.minimum(tf.shape(sample.boxes)[0], max_number_of_boxes)
        batch = {
            "image": resized,
            "true_image_shape": true_shape,
            "original_image_shape": original_shape,
            "groundtruth_boxes": _pad_or_clip(tf.cast(boxes, tf.float32),
                                              max_number_of_boxes),
            "groundtruth_classes": _pad_or_clip(tf.cast(sample.classes, tf.int32),
                                                max_number_of_boxes),
            "num_groundtruth_boxes": tf.cast(num_boxes, tf.int32),
            "source_id": example["source_id"],
        }
        if not is_training:
            batch["groundtruth_is_crowd"] = _pad_or_clip(
                tf.boolean_mask(example["groundtruth_is_crowd"], known), max_number_of_boxes)
        return batch

    if is_training:
        dataset = _training_stream(paths, input_reader, seed, start)
    elif start:
        raise ValueError("evaluation reads every record once; start must be 0")
    else:
        dataset = _read_records(paths, input_reader).enumerate()
    deterministic = not is_training or seed is not None or not input_reader.shuffle
    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
