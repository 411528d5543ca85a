"""The engine on the embedded MiniLM (real behaviour) and on tiny random configs (structure)."""
import numpy as np
import pytest
import torch
from transformers import (AutoModel, BartConfig, BartForConditionalGeneration, GPT2Config, GPT2LMHeadModel)

from models import attention, loader
from models.attention import InputError

SENTENCES = [
    "The cat sat on the mat because it was tired.",
    "Unbelievably, tokenization splits rare words: antidisestablishmentarianism!",
    "Zürich's café serves crème brûlée — 3.5 CHF, naïvely cheap.",
    "She said \"no\", then left.",
]


@pytest.fixture(scope="module")
def minilm():
    return loader.get_loaded("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def eager_minilm(minilm):
    """transformers' own eager attention, loaded independently of our engine."""
    return AutoModel.from_pretrained(minilm.folder, attn_implementation="eager").eval()


@pytest.mark.parametrize("text", SENTENCES)
def test_matches_transformers_eager_output_attentions(minilm, eager_minilm, text):
    run = attention.extract(minilm, text)
    enc = minilm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        ref = eager_minilm(**enc, output_attentions=True).attentions
    ref = torch.stack([a[0] for a in ref]).numpy()  # [layers, heads, T, T]
    assert run.weights.shape == ref.shape == (6, 12, enc["input_ids"].shape[1], enc["input_ids"].shape[1])
    assert run.weights.dtype == np.float32
    np.testing.assert_allclose(run.weights.astype(np.float32), ref, atol=1e-3)
    np.testing.assert_allclose(run.weights.astype(np.float32).sum(-1), 1.0, atol=1e-3)


def test_pre_softmax_scores_reproduce_weights(minilm):
    run = attention.extract(minilm, SENTENCES[0])
    s = run.main.scores.astype(np.float32)
    soft = np.exp(s - s.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    np.testing.assert_allclose(soft, run.weights.astype(np.float32), atol=2e-3)


@pytest.mark.parametrize("text", SENTENCES)
def test_tokens_round_trip_through_offsets(minilm, text):
    run = attention.extract(minilm, text)
    toks = run.source_tokens
    assert toks[0].special and toks[0].label == "[CLS]" and toks[-1].label == "[SEP]"
    words = [t for t in toks if not t.special]
    # every non-special token points at a non-empty slice, in order, covering all non-space chars
    assert all(t.end > t.start for t in words)
    assert [t.start for t in words] == sorted(t.start for t in words)
    covered = "".join(text[t.start:t.end] for t in words)
    assert covered.replace(" ", "") == "".join(text.split())
    # the uncased tokenizer's pieces match the surface text (lower-cased, accents stripped)
    for t in words:
        assert t.piece.removeprefix("##") in text[t.start:t.end].lower() or t.piece == "[UNK]" or \
            len(t.piece.removeprefix("##")) == len(text[t.start:t.end])


def test_subword_pieces_are_marked(minilm):
    run = attention.extract(minilm, "antidisestablishmentarianism")
    labels = [t.label for t in run.source_tokens]
    assert labels[1] == "anti" and all(lab.startswith("##") for lab in labels[2:-1])
    assert [t.subword for t in run.source_tokens[1:-1]] == [False] + [True] * (len(labels) - 3)


def test_sentence_pair_segments(minilm):
    run = attention.extract(minilm, "The cat sat on the mat.", "It was tired.")
    segs = [(t.label, t.segment) for t in run.source_tokens]
    assert segs == [("[CLS]", 0), ("the", 0), ("cat", 0), ("sat", 0), ("on", 0), ("the", 0), ("mat", 0),
                    (".", 0), ("[SEP]", 0), ("it", 1), ("was", 1), ("tired", 1), (".", 1), ("[SEP]", 1)]
    b_tokens = [t for t in run.source_tokens if t.segment == 1 and not t.special]
    assert "".join(run.text_pair[t.start:t.end] for t in b_tokens) == "Itwastired."


def test_truncation_says_where(minilm):
    text = "word " * 600
    run = attention.extract(minilm, text)
    assert run.weights.shape[-1] == 512 and run.truncated
    (tr,) = run.truncations
    assert tr.max_tokens == 512 and tr.dropped_tokens == 600 - 510 and tr.total_chars == len(text)
    assert text[:tr.kept_chars].split() == ["word"] * 510


def test_max_tokens_option(minilm):
    run = attention.extract(minilm, SENTENCES[1], max_tokens=8)
    assert run.weights.shape[-1] == 8 and run.truncations[0].dropped_tokens > 0


@pytest.mark.parametrize("bad", ["", "   \n\t ", None, "\x00\x00"])
def test_empty_text_is_a_clear_error(minilm, bad):
    with pytest.raises(InputError, match="empty"):
        attention.extract(minilm, bad)


def test_embedding_matches_sentence_transformers_pooling(minilm):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm.folder), device="cpu")
    ref = st.encode(["The cat sat on the mat."], normalize_embeddings=True)[0]
    run = attention.extract(minilm, "The cat sat on the mat.")
    np.testing.assert_allclose(run.outputs["embedding"], ref, atol=1e-5)


def test_payload_round_trip(minilm):
    from models.run import AttentionRun

    run = attention.extract(minilm, "The cat sat.", "It slept.")
    meta, arrays = run.to_payload()
    back = AttentionRun.from_payload(meta, arrays)
    assert back.source_tokens == run.source_tokens and back.text_pair == "It slept."
    np.testing.assert_array_equal(back.weights, run.weights)
    np.testing.assert_array_equal(back.main.scores, run.main.scores)


# ---- tiny random models built here: structure, not behaviour --------------------------------

@pytest.fixture(scope="module")
def tiny_gpt2(minilm):
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(minilm.tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     bos_token_id=101, eos_token_id=102)
    return loader.wrap("tiny-gpt2", GPT2LMHeadModel(cfg), minilm.tokenizer)


def test_causal_mask_structure(tiny_gpt2):
    run = attention.extract(tiny_gpt2, "the cat sat on the mat")
    assert tiny_gpt2.architecture == "decoder" and run.main.kind == "causal" and run.main.name == "self"
    w = run.weights.astype(np.float32)
    assert w.shape == (2, 4, 8, 8)
    iu = np.triu_indices(8, 1)
    assert np.all(w[:, :, iu[0], iu[1]] == 0.0)
    assert np.all(w[:, :, 0, 0] == 1.0) and np.all(w[:, :, 0, 1:] == 0.0)
    assert np.all(np.isneginf(run.main.scores[:, :, iu[0], iu[1]]))
    assert "loss" in run.outputs and np.isfinite(run.outputs["loss"])


def test_encoder_decoder_cross_attention(minilm):
    torch.manual_seed(0)
    cfg = BartConfig(vocab_size=len(minilm.tokenizer), d_model=32, encoder_layers=2, decoder_layers=3,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                     decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=0, bos_token_id=101,
                     eos_token_id=102, decoder_start_token_id=101)
    bart = loader.wrap("tiny-bart", BartForConditionalGeneration(cfg), minilm.tokenizer)
    run = attention.extract(bart, "the cat sat on the mat", "le chat")
    src, tgt = len(run.source_tokens), len(run.target_tokens)
    assert (src, tgt) == (8, 4)
    kinds = {b.name: (b.kind, b.weights.shape) for b in run.blocks}
    assert kinds == {"encoder": ("self", (2, 4, src, src)), "decoder": ("causal", (3, 4, tgt, tgt)),
                     "cross": ("cross", (3, 4, tgt, src))}
    for b in run.blocks:
        np.testing.assert_allclose(b.weights.astype(np.float32).sum(-1), 1.0, atol=1e-3)
    dec = run.block("decoder").weights.astype(np.float32)
    assert np.all(dec[:, :, np.triu_indices(tgt, 1)[0], np.triu_indices(tgt, 1)[1]] == 0)
    assert run.query_tokens("cross") == run.target_tokens and run.key_tokens("cross") == run.source_tokens
    # the cross block equals transformers' own eager cross_attentions
    eager = BartForConditionalGeneration(cfg).eval()
    eager.load_state_dict(bart.model.state_dict())
    eager.config._attn_implementation = "eager"
    inputs, *_ = attention.forward_inputs(bart, "the cat sat on the mat", "le chat", 64)
    with torch.no_grad():
        out = eager(**inputs, output_attentions=True)
    ref = torch.stack([a[0] for a in out.cross_attentions]).numpy()
    np.testing.assert_allclose(run.block("cross").weights.astype(np.float32), ref, atol=1e-3)
