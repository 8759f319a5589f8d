"""ArgMaxMatcher on crafted similarity matrices."""

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model.matcher import ArgMaxMatcher
from odflow.protos import pipeline_pb2

SIM = np.array([[0.8, 0.45, 0.2, 0.1, 0.0],
                [0.6, 0.3, 0.55, 0.2, 0.0]], np.float32)


def test_thresholds_and_ignored_band():
    matcher = ArgMaxMatcher(matched_threshold=0.5, unmatched_threshold=0.4)
    assert matcher.match(SIM).numpy().tolist() == [0, -2, 1, -1, -1]
    flipped = ArgMaxMatcher(0.5, 0.4, negatives_lower_than_unmatched=False)
    assert flipped.match(SIM).numpy().tolist() == [0, -1, 1, -2, -2]


def test_equal_thresholds_and_boundary():
    matcher = ArgMaxMatcher(0.5, 0.5)
    sim = np.array([[0.5, 0.4999]], np.float32)
    assert matcher.match(sim).numpy().tolist() == [0, -1]


def test_force_match_for_each_row():
    sim = np.array([[0.9, 0.3, 0.0],
                    [0.1, 0.2, 0.0],   # best column 1, far below threshold
                    [0.0, 0.0, 0.0]], np.float32)  # all-zero row: argmax column 0, taken by row 0
    plain = ArgMaxMatcher(0.5, 0.5).match(sim).numpy().tolist()
    forced = ArgMaxMatcher(0.5, 0.5, force_match_for_each_row=True).match(sim).numpy().tolist()
    assert plain == [0, -1, -1]
    # Rows 0 and 2 both claim column 0: the lower row wins, as upstream.
    assert forced == [0, 1, -1]


def test_valid_rows_padding_and_batch():
    sim = np.stack([SIM, np.array([[0.9, 0.9, 0.9, 0.9, 0.9], [0.1, 0.2, 0.0, 0.0, 0.7]])])
    valid = np.array([[True, True], [False, True]])
    matcher = ArgMaxMatcher(0.5, 0.5, force_match_for_each_row=True)
    out = matcher.match(tf.constant(sim, tf.float32), valid_rows=valid).numpy().tolist()
    assert out[0] == [0, -1, 1, -1, -1]  # forced columns 0 (row 0) and 2 (row 1) already match
    assert out[1] == [-1, -1, -1, -1, 1]  # padded row 0 never matches, even forced


def test_no_valid_rows_and_empty():
    matcher = ArgMaxMatcher(None, None, force_match_for_each_row=True)
    out = matcher.match(np.ones([2, 3], np.float32), valid_rows=[False, False])
    assert out.numpy().tolist() == [-1, -1, -1]
    assert matcher.match(np.zeros([0, 4], np.float32)).numpy().tolist() == [-1] * 4


def test_in_tf_function():
    matcher = ArgMaxMatcher(0.5, 0.4, force_match_for_each_row=True)
    fn = tf.function(lambda s, v: matcher.match(s, v),
                     input_signature=[tf.TensorSpec([None, None, None]),
                                      tf.TensorSpec([None, None], tf.bool)])
    out = fn(tf.constant(SIM[None]), tf.constant([[True, True]])).numpy().tolist()
    assert out == [[0, -2, 1, -1, -1]]


def test_from_config():
    proto = pipeline_pb2.Matcher()
    proto.argmax_matcher.matched_threshold = 0.6
    proto.argmax_matcher.unmatched_threshold = 0.3
    proto.argmax_matcher.force_match_for_each_row = True
    matcher = ArgMaxMatcher.from_config(proto)
    assert (matcher.matched_threshold, matcher.force_match_for_each_row) == (
        pytest.approx(0.6), True)
    proto.argmax_matcher.ignore_thresholds = True
    assert ArgMaxMatcher.from_config(proto).matched_threshold is None
    with pytest.raises(OdflowError, match="bipartite_matcher"):
        ArgMaxMatcher.from_config(pipeline_pb2.Matcher(bipartite_matcher={}))
    with pytest.raises(OdflowError, match="unmatched_threshold"):
        ArgMaxMatcher(0.5, 0.5, negatives_lower_than_unmatched=False)


def test_from_config_reads_every_field():
    """unmatched_threshold and negatives_lower_than_unmatched come from the proto too (the API's
    defaults 0.5 / true would otherwise hide a dropped field)."""
    proto = pipeline_pb2.ArgMaxMatcher(matched_threshold=0.7, unmatched_threshold=0.3,
                                       negatives_lower_than_unmatched=False)
    matcher = ArgMaxMatcher.from_config(proto)
    assert matcher.unmatched_threshold == pytest.approx(0.3)
    assert matcher.negatives_lower_than_unmatched is False
    assert matcher.force_match_for_each_row is False
    with pytest.raises(OdflowError, match="matcher: nothing is set; odflow supports "
                       "argmax_matcher"):
        ArgMaxMatcher.from_config(pipeline_pb2.Matcher())


def test_defaults_are_the_proto_defaults():
    """Without arguments: matched 0.5, unmatched = matched (no ignored band), negatives below,
    no forced matches (the ArgMaxMatcher proto's defaults)."""
    matcher = ArgMaxMatcher()
    assert (matcher.matched_threshold, matcher.unmatched_threshold) == (0.5, 0.5)
    assert matcher.negatives_lower_than_unmatched and not matcher.force_match_for_each_row
    # SIM's column maxima 0.8, 0.45, 0.55, 0.2, 0.0: matched iff >= 0.5, else negative.
    assert matcher.match(SIM).numpy().tolist() == [0, -1, 1, -1, -1]
    assert ArgMaxMatcher(0.6).unmatched_threshold == 0.6


def test_unmatched_threshold_itself_is_in_the_ignored_band():
    """The API: negative iff sim < unmatched_threshold, ignored iff unmatched <= sim < matched
    (0.25 and 0.75 are exact in float32)."""
    sim = np.array([[0.25, 0.2499, 0.75, 0.7499]], np.float32)
    assert ArgMaxMatcher(0.75, 0.25).match(sim).numpy().tolist() == [-2, -1, 0, -2]
    flipped = ArgMaxMatcher(0.75, 0.25, negatives_lower_than_unmatched=False)
    assert flipped.match(sim).numpy().tolist() == [-1, -2, 0, -1]


def test_constructor_errors_say_what_is_wrong():
    with pytest.raises(OdflowError, match=r"^argmax_matcher: unmatched_threshold needs a "
                       r"matched_threshold \(ignore_thresholds is set\)$"):
        ArgMaxMatcher(None, 0.3)
    with pytest.raises(OdflowError, match="^argmax_matcher: unmatched_threshold 0.6 must not "
                       "exceed matched_threshold 0.5$"):
        ArgMaxMatcher(0.5, 0.6)
    with pytest.raises(OdflowError, match="^argmax_matcher: with negatives_lower_than_unmatched "
                       "false the negatives lie between the thresholds, so unmatched_threshold "
                       "must be below matched_threshold$"):
        ArgMaxMatcher(0.5, negatives_lower_than_unmatched=False)


def test_plain_python_and_numpy_inputs():
    """Integer similarities (a python list) are read as floats; a numpy 0/1 array is a
    valid_rows mask."""
    sim = [[1, 0, 0], [0, 2, 0]]
    assert ArgMaxMatcher(0.5).match(sim).numpy().tolist() == [0, 1, -1]
    valid = np.array([0, 1])
    assert ArgMaxMatcher(0.5).match(sim, valid).numpy().tolist() == [-1, 1, -1]


def test_batch_without_valid_rows_and_with_an_empty_image():
    """A [B, N, M] batch with valid_rows omitted (all valid); an all-padding image is
    unmatched even without thresholds, whatever the other images hold."""
    sim = np.array([[[0.9, 0.1], [0.2, 0.3], [0.0, 0.8]],
                    [[0.1, 0.6], [0.7, 0.2], [0.3, 0.1]]], np.float32)
    assert ArgMaxMatcher(0.5).match(sim).numpy().tolist() == [[0, 2], [1, 0]]
    no_thresholds = ArgMaxMatcher(None)
    valid = np.array([[True, False, True], [False, False, False]])
    assert no_thresholds.match(sim, valid).numpy().tolist() == [[0, 2], [-1, -1]]


def test_batch_with_no_groundtruth_rows():
    out = ArgMaxMatcher(0.5).match(np.zeros([2, 0, 3], np.float32))
    assert out.numpy().tolist() == [[-1, -1, -1], [-1, -1, -1]]
    assert out.dtype == tf.int32
