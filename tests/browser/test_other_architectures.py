"""A decoder (GPT-2-like) and an encoder-decoder (BART-like) model configured through
ATTN_MODELS, in the real page: tiny random models saved as ordinary Hugging Face folders (what a
user has on disk), so this checks structure (causal blocks, cross-attention), not behaviour."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, GPT2Config, GPT2LMHeadModel

from dashboard import ids
from models import attention, loader
from tests.browser import helpers as P

pytestmark = pytest.mark.browser

SOURCE = "the cat sat on the mat"
TARGET = "le chat dort"


@pytest.fixture(scope="module")
def page_env(tmp_path_factory):
    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    torch.manual_seed(3)
    gpt = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=4)
                    ).save_pretrained(gpt)
    tok.save_pretrained(gpt)
    bart = tmp_path_factory.mktemp("tiny-bart")
    BartForConditionalGeneration(BartConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=101, eos_token_id=102, decoder_start_token_id=101)).save_pretrained(bart)
    tok.save_pretrained(bart)
    yield {"ATTN_MODELS": f"tiny-gpt2={gpt};tiny-bart={bart}"}
    for name in ("tiny-gpt2", "tiny-bart"):
        loader._LOADED.pop(name, None)


def engine(model, text, pair=None):
    return attention.extract(loader.get_loaded(model), text, pair)


def test_models_from_configuration_are_offered(page):
    P.open_page(page)
    options = P.js(page, "return Array.from(document.querySelectorAll('#%s option')).map(o => o.value);"
                   % ids.MODEL) or []
    assert {"all-MiniLM-L6-v2", "tiny-gpt2", "tiny-bart"} <= set(options), options
    P.no_console_errors(page)


def test_causal_model_leaves_the_upper_triangle_empty(page):
    P.open_page(page, model="tiny-gpt2", text=SOURCE, layer=1, head=2)
    P.wait_title(page, "Layer 1 · head 2 · self (causal)")
    w = engine("tiny-gpt2", SOURCE).main.weights.astype(np.float64)[1, 2]
    P.until(lambda: P.heatmap_z(page).shape == w.shape, what="the causal heatmap")
    z = P.heatmap_z(page)  # null cells arrive as NaN
    upper = np.triu_indices(len(w), 1)
    assert np.isnan(z[upper]).all(), "the future is not drawn as zeros"
    lower = np.tril_indices(len(w))
    np.testing.assert_allclose(z[lower], w[lower], atol=1e-3)
    assert z[0, 0] == pytest.approx(1.0, abs=1e-3)  # the first token can only attend to itself
    P.no_console_errors(page)


def test_encoder_decoder_offers_three_blocks_and_shows_cross_attention(page):
    P.open_page(page, model="tiny-bart", text=SOURCE, pair=TARGET, layer=1, head=3)
    run = engine("tiny-bart", SOURCE, TARGET)
    labels = P.until(lambda: P.js(page, "return Array.from(document.querySelectorAll('#%s option'))"
                                        ".map(o => o.textContent).filter(t => t);" % ids.BLOCK), what="block options")
    assert labels == ["encoder self", "decoder self (causal)", "cross (decoder → encoder)"], labels
    P.wait_title(page, "Layer 1 · head 3 · encoder self")  # the encoder has layers 0-1
    P.select(page, ids.BLOCK, "cross")
    P.wait_title(page, "Layer 1 · head 3 · cross (decoder → encoder)")
    P.select(page, ids.LAYER, "2")  # the decoder (and cross) have layers 0-2
    P.wait_title(page, "Layer 2 · head 3 · cross (decoder → encoder)")
    cross = run.block("cross").weights.astype(np.float64)[2, 3]
    assert cross.shape == (len(run.target_tokens), len(run.source_tokens))
    P.until(lambda: P.heatmap_z(page).shape == cross.shape, what="target x source heatmap")
    np.testing.assert_allclose(P.heatmap_z(page), cross, atol=1e-3)
    # rows are the target's tokens, columns the source's
    meta = P.heatmap_meta(page)
    assert meta["rows"] == len(run.target_tokens) and meta["cols"] == len(run.source_tokens)
    P.select(page, ids.BLOCK, "decoder")
    P.wait_title(page, "Layer 2 · head 3 · decoder self (causal)")
    dec = run.block("decoder").weights.astype(np.float64)[2, 3]
    P.until(lambda: P.heatmap_z(page).shape == dec.shape, what="decoder heatmap")
    assert np.isnan(P.heatmap_z(page)[np.triu_indices(len(dec), 1)]).all()
    P.no_console_errors(page)


def test_a_link_to_the_cross_block_reproduces_it(page):
    P.open_page(page, model="tiny-bart", text=SOURCE, pair=TARGET, layer=2, head=1, block="cross")
    P.wait_title(page, "Layer 2 · head 1 · cross (decoder → encoder)")
    cross = engine("tiny-bart", SOURCE, TARGET).block("cross").weights.astype(np.float64)[2, 1]
    P.until(lambda: P.heatmap_z(page).shape == cross.shape, what="target x source heatmap")
    np.testing.assert_allclose(P.heatmap_z(page), cross, atol=1e-3)
    P.no_console_errors(page)
