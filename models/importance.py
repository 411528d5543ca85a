"""Head importance, ablation and pruning curves: which attention heads a model's task needs.

The public API of the pruning engine, gathered from one module per concern (this module only
re-exports them; private helpers too, for models.pruning_science):

    models.pairs           the paraphrase pairs: bundled, uploaded, batches
    models.losses          the task loss with gated heads, sentence embeddings
    models.evaluation      the task metrics of a gated model on a set of pairs
    models.head_scores     importance, ablation and entropy scores per head
    models.curves          pruning orders, masks and the metric-vs-share-pruned curves
    models.analysis_cache  the same through the shared JSON cache

Pure engine code (no Dash). Everything works on a `LoadedModel` (or the LoadedModel-like
`pruning.PrunedModel`) and gates heads through `interventions.head_gates`, so the shared
loaded model is never changed.

    load_pairs(path=None) / parse_pairs(text)              -> [(a, b), ...] paraphrase pairs
    task_loss(loaded, batch, gates)                        -> (loss: scalar tensor, loss_name: str)
    pair_metrics(loaded, pairs, gates, reference=...)      -> {"retrieval_acc", "spearman", "loss", ...}
    head_importance(loaded, pairs_or_texts)                -> ImportanceResult (scores [L,H])
    ablation_scores(loaded, pairs, metric="loss")          -> float32 [L,H], drop in metric per head
    head_entropy(loaded, texts)                            -> float32 [L,H], mean attention entropy (bits)
    pruning_curve(loaded, pairs)                           -> CurveResult (metric vs share pruned)
    cached_importance / cached_ablation / cached_curve     -> the same, through models.cache JSON

The task loss (what "importance" is importance *for*) is described in models.losses.

Importance (Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?"): gates
ξ[L,H] = 1 with requires_grad multiply each head's output; one backward pass per batch gives
∂L/∂ξ for every head; I_h = Σ_batches |∂L_batch/∂ξ_h|, then each layer's row is divided by its
L2 norm.
"""
from __future__ import annotations

# ruff: noqa: F401 - re-exports
from models.analysis_cache import SCHEMA, _key, _store, cached_ablation, cached_curve, cached_importance
from models.curves import (DEFAULT_ORDERS, DEFAULT_SHARES, CurveResult, mask_from_order, prune_order, pruning_curve,
                           unique_evaluations)
from models.evaluation import (METRIC_SIGN, EvalSet, _is_unpruned, _pair_cosines, _pair_metrics, _spearman,
                               default_metric, metric_names, pair_metrics, prepare_eval)
from models.head_scores import (Cancelled, ImportanceResult, Progress, ShouldStop, _check, _goodness, _tick,
                                ablation_scores, gate_gradients, head_entropy, head_importance, normalise_per_layer)
from models.losses import (ENCODE_BATCH, MASK_RATE, MAX_TOKENS, SCALE, _encode_sorted, _Encoded, _forward_embed,
                           _gated, _infonce, _is_embedding, _lm_inputs, _lm_loss_sum, _mask_positions,
                           _pad, _pad_id, _param_dtype, _text_inputs, _tokenize, embed, loss_name, mean_pool,
                           task_loss)
from models.pairs import DATA_DIR, MAX_PAIRS, PAIRS_FILE, _batches, _examples, load_pairs, parse_pairs
