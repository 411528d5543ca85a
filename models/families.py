"""Tiny random configs of the model families the dashboard is checked against (no weights, no downloads).

    FAMILIES: {family name: build(vocab_size) -> (config, auto class name)}
    build_model(family, vocab_size, seed=0) -> PreTrainedModel (random weights, float32, eval)
    save_family(family, tokenizer, folder) -> Path: an ordinary Hugging Face folder (weights + the
                                              given tokenizer), what a team would point ATTN_MODELS at

Sizes: hidden 32, 2 layers, 4 query heads (2 key/value heads where the family has grouped-query
attention), so every family builds and runs in well under a second. Features that change the
attention math are switched on where the family has them: sliding windows (Mistral, Gemma-2/3,
ModernBERT, GPT-OSS, GPT-Neo local layers), Gemma-2's logit softcap, GPT-OSS sinks, T5's relative
position bias, ALiBi (BLOOM, MPT-style Falcon off).
"""
from __future__ import annotations

from pathlib import Path

import torch
import transformers as tf

SEQ2SEQ, CAUSAL, MASKED, BASE = "AutoModelForSeq2SeqLM", "AutoModelForCausalLM", "AutoModelForMaskedLM", "AutoModel"
MAX_POS = 128


def _dec(cls, v, **kw):
    base = dict(vocab_size=v, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=MAX_POS, pad_token_id=0, bos_token_id=101, eos_token_id=102)
    base.update(kw)
    return cls(**base), CAUSAL


def _enc(cls, v, **kw):
    base = dict(vocab_size=v, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=MAX_POS, pad_token_id=0)
    base.update(kw)
    return cls(**base), MASKED


FAMILIES = {
    # encoders
    "BERT": lambda v: _enc(tf.BertConfig, v),
    "RoBERTa": lambda v: _enc(tf.RobertaConfig, v, max_position_embeddings=MAX_POS + 2),
    "ELECTRA": lambda v: _enc(tf.ElectraConfig, v, embedding_size=32),
    "ModernBERT": lambda v: _enc(tf.ModernBertConfig, v, global_attn_every_n_layers=2, local_attention=4,
                                 bos_token_id=101, eos_token_id=102, cls_token_id=101, sep_token_id=102),
    "XLM-R": lambda v: _enc(tf.XLMRobertaConfig, v, max_position_embeddings=MAX_POS + 2),
    "DistilBERT": lambda v: (tf.DistilBertConfig(vocab_size=v, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                                 max_position_embeddings=MAX_POS, pad_token_id=0), MASKED),
    "ALBERT": lambda v: _enc(tf.AlbertConfig, v, embedding_size=16),
    "DeBERTa-v2": lambda v: _enc(tf.DebertaV2Config, v, relative_attention=True, position_buckets=8,
                                 max_relative_positions=16, pos_att_type=["p2c", "c2p"]),
    "MPNet": lambda v: _enc(tf.MPNetConfig, v, max_position_embeddings=MAX_POS + 2),
    # decoders
    "GPT-2": lambda v: (tf.GPT2Config(vocab_size=v, n_positions=MAX_POS, n_embd=32, n_layer=2, n_head=4,
                                      bos_token_id=101, eos_token_id=102), CAUSAL),
    "GPT-NeoX": lambda v: _dec(tf.GPTNeoXConfig, v, rotary_pct=0.5),
    "OPT": lambda v: (tf.OPTConfig(vocab_size=v, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   ffn_dim=64, word_embed_proj_dim=32, max_position_embeddings=MAX_POS,
                                   pad_token_id=0, bos_token_id=101, eos_token_id=102), CAUSAL),
    "Llama": lambda v: _dec(tf.LlamaConfig, v, num_key_value_heads=2),
    "Mistral": lambda v: _dec(tf.MistralConfig, v, num_key_value_heads=2, sliding_window=4),
    "Qwen2": lambda v: _dec(tf.Qwen2Config, v, num_key_value_heads=2),
    "Qwen3": lambda v: _dec(tf.Qwen3Config, v, num_key_value_heads=2, head_dim=8),
    "Gemma": lambda v: _dec(tf.GemmaConfig, v, num_key_value_heads=2, head_dim=8),
    "Gemma-2": lambda v: _dec(tf.Gemma2Config, v, num_key_value_heads=2, head_dim=8, sliding_window=4,
                              attn_logit_softcapping=2.0, query_pre_attn_scalar=8),
    "Gemma-3": lambda v: _dec(tf.Gemma3TextConfig, v, num_key_value_heads=2, head_dim=8, sliding_window=4,
                              query_pre_attn_scalar=8),
    "Phi": lambda v: _dec(tf.PhiConfig, v, partial_rotary_factor=0.5),
    "Phi-3": lambda v: _dec(tf.Phi3Config, v, num_key_value_heads=2),
    "OLMo-2": lambda v: _dec(tf.Olmo2Config, v, num_key_value_heads=2),
    "StableLM": lambda v: _dec(tf.StableLmConfig, v, num_key_value_heads=2),
    "GPT-OSS": lambda v: _dec(tf.GptOssConfig, v, num_key_value_heads=2, head_dim=8, sliding_window=4,
                              num_local_experts=4, num_experts_per_tok=2),
    "GPT-Neo": lambda v: (tf.GPTNeoConfig(vocab_size=v, hidden_size=32, num_layers=2, num_heads=4,
                                          intermediate_size=64, max_position_embeddings=MAX_POS,
                                          attention_types=[[["global", "local"], 1]], window_size=4,
                                          bos_token_id=101, eos_token_id=102), CAUSAL),
    "Falcon": lambda v: (tf.FalconConfig(vocab_size=v, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                         new_decoder_architecture=False, multi_query=True, alibi=False,
                                         max_position_embeddings=MAX_POS, bos_token_id=101,
                                         eos_token_id=102), CAUSAL),
    "BLOOM": lambda v: (tf.BloomConfig(vocab_size=v, hidden_size=32, n_layer=2, n_head=4, bos_token_id=101,
                                       eos_token_id=102, pad_token_id=0), CAUSAL),
    # more decoders (cheap to add)
    "GPT-J": lambda v: (tf.GPTJConfig(vocab_size=v, n_embd=32, n_layer=2, n_head=4, rotary_dim=4,
                                      n_positions=MAX_POS, bos_token_id=101, eos_token_id=102), CAUSAL),
    "CodeGen": lambda v: (tf.CodeGenConfig(vocab_size=v, n_embd=32, n_layer=2, n_head=4, rotary_dim=4,
                                           n_positions=MAX_POS, n_ctx=MAX_POS, bos_token_id=101,
                                           eos_token_id=102), CAUSAL),
    "Mixtral": lambda v: _dec(tf.MixtralConfig, v, num_key_value_heads=2, num_local_experts=4,
                              num_experts_per_tok=2, sliding_window=4),
    "Starcoder2": lambda v: _dec(tf.Starcoder2Config, v, num_key_value_heads=2, sliding_window=4),
    "Cohere": lambda v: _dec(tf.CohereConfig, v, num_key_value_heads=2),
    "Granite": lambda v: _dec(tf.GraniteConfig, v, num_key_value_heads=2, attention_multiplier=0.5),
    "Qwen2-MoE": lambda v: _dec(tf.Qwen2MoeConfig, v, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
                                moe_intermediate_size=32, shared_expert_intermediate_size=32),
    "OLMo": lambda v: _dec(tf.OlmoConfig, v, num_key_value_heads=2),
    # encoder-decoders
    "BART": lambda v: (tf.BartConfig(vocab_size=v, d_model=32, encoder_layers=2, decoder_layers=2,
                                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                     decoder_ffn_dim=64, max_position_embeddings=MAX_POS, pad_token_id=0,
                                     bos_token_id=101, eos_token_id=102, decoder_start_token_id=101), SEQ2SEQ),
    "Marian": lambda v: (tf.MarianConfig(vocab_size=v, d_model=32, encoder_layers=2, decoder_layers=2,
                                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                         decoder_ffn_dim=64, max_position_embeddings=MAX_POS, pad_token_id=0,
                                         eos_token_id=102, decoder_start_token_id=0), SEQ2SEQ),
    "mBART": lambda v: (tf.MBartConfig(vocab_size=v, d_model=32, encoder_layers=2, decoder_layers=2,
                                       encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                       decoder_ffn_dim=64, max_position_embeddings=MAX_POS, pad_token_id=0,
                                       bos_token_id=101, eos_token_id=102, decoder_start_token_id=101), SEQ2SEQ),
    "Pegasus": lambda v: (tf.PegasusConfig(vocab_size=v, d_model=32, encoder_layers=2, decoder_layers=2,
                                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                           decoder_ffn_dim=64, max_position_embeddings=MAX_POS, pad_token_id=0,
                                           eos_token_id=102, decoder_start_token_id=0), SEQ2SEQ),
    "T5": lambda v: (tf.T5Config(vocab_size=v, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                                 num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=102,
                                 decoder_start_token_id=0), SEQ2SEQ),
}


def build_config(family: str, vocab_size: int):
    """(config, auto class name) for a family."""
    return FAMILIES[family](vocab_size)


WEIGHT_STD = 0.3


def build_model(family: str, vocab_size: int, seed: int = 0, attn_implementation: str = "eager"):
    """A random float32 model of the family in eval mode.

    Every matrix is redrawn from N(0, WEIGHT_STD^2) (0.3, against the families' usual 0.02): attention
    logits are then of order 1-10, so rows are peaked rather than near-uniform, softcaps and sinks
    change the weights visibly and masking a head moves the outputs: a bug cannot hide in tiny numbers."""
    cfg, auto = build_config(family, vocab_size)
    torch.manual_seed(seed)
    model = getattr(tf, auto).from_config(cfg, attn_implementation=attn_implementation)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * WEIGHT_STD)
    return model.eval()


def save_family(family: str, tokenizer, folder: Path, seed: int = 0) -> Path:
    """Save a random model of the family with `tokenizer` as an ordinary Hugging Face folder."""
    folder = Path(folder)
    build_model(family, len(tokenizer), seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
