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
