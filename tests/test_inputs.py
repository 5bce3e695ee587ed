"""Bad input to BertModel is a clear Python exception, never a crash or a silent answer."""

from __future__ import annotations

import numpy as np
import pytest
import transformers

import pybert
from conftest import bert_config, randomize_, save


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = bert_config(vocab_size=50, type_vocab_size=2, max_position_embeddings=16)
    return pybert.BertModel.from_pretrained(
        save(randomize_(transformers.BertModel(cfg)), tmp_path_factory.mktemp("m")))


@pytest.mark.parametrize("ids,match", [
    ([[1, 2, -1]], "input id -1 is out of range: expected 0 <= value < vocab_size \\(50\\)"),
    ([[1, 50]], "input id 50 is out of range"),
])
def test_ids_out_of_range(model, ids, match):
    with pytest.raises(ValueError, match=match):
        model(ids)


def test_token_type_out_of_range(model):
    with pytest.raises(ValueError, match="token type id 2 is out of range.*type_vocab_size"):
        model([[1, 2]], token_type_ids=[[0, 2]])


def test_sequence_too_long(model):
    with pytest.raises(ValueError, match="sequence length 17 exceeds max_position_embeddings "
                                         "\\(16\\)"):
        model(np.ones((1, 17), np.int64))


@pytest.mark.parametrize("kwargs", [
    dict(attention_mask=[[1, 1]]),
    dict(token_type_ids=[[0, 0, 0, 0]]),
    dict(attention_mask=[[1, 1, 1], [1, 1, 1]]),
])
def test_mismatched_shapes(model, kwargs):
    with pytest.raises(ValueError, match="expected the shape of input_ids"):
        model([[1, 2, 3]], **kwargs)


@pytest.mark.parametrize("ids", [np.int64(3), np.ones((1, 2, 3), np.int64)])
def test_wrong_rank(model, ids):
    with pytest.raises(ValueError, match="must be 1-D .* or 2-D"):
        model(ids)


def test_float_ids(model):
    with pytest.raises(TypeError, match="input_ids must hold integers, got dtype float64"):
        model([[1.0, 2.0]])


def test_ragged_ids(model):
    with pytest.raises(ValueError, match="rectangular"):
        model([[1, 2], [3]])


def test_mask_values(model):
    with pytest.raises(ValueError, match="attention_mask values must be 0 or 1, found 2"):
        model([[1, 2]], attention_mask=[[1, 2]])
    out = model([[1, 2]], attention_mask=np.array([[True, False]]))
    assert out.last_hidden_state.shape == (1, 2, 32)


def test_all_masked_row_is_defined(model):
    out = model([[1, 2, 3], [4, 5, 6]], attention_mask=[[1, 1, 0], [0, 0, 0]])
    assert np.isfinite(out.last_hidden_state).all() and np.isfinite(out.pooler_output).all()
    assert not out.last_hidden_state[1].any()


def test_empty_batch(model):
    out = model(np.zeros((0, 4), np.int64))
    assert out.last_hidden_state.shape == (0, 4, 32)
    assert out.pooler_output.shape == (0, 32)


def test_non_contiguous_and_read_only(model):
    ids = np.arange(40).reshape(4, 10)[:, ::2] % 50
    ids.flags.writeable = False
    ref = model(np.ascontiguousarray(ids)).last_hidden_state
    np.testing.assert_array_equal(model(ids).last_hidden_state, ref)


def test_bad_num_threads(model):
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        model.num_threads = 0
