"""The family x feature matrix: what the dashboard does with each model family, measured.

    python -m models.matrix            # prints the Markdown table the README shows
    python -m models.matrix --readme   # and writes it into README.md between the family-matrix markers
    check_family(family, tokenizer, folder) -> FamilyResult
    markdown(results) -> str

For each family in `models.families` (tiny random weights, saved with the embedded tokenizer as an
ordinary Hugging Face folder, then loaded through `loader.load_folder`, the path ATTN_MODELS uses):

* view: every captured block against an independently loaded copy of the model with
  attn_implementation="eager" and output_attentions=True (same inputs): max |difference| of any weight;
* mask: the head mask MASK (zeros and a 0.5) applied through `interventions.head_gates`, against the
  eager copy whose output projection has the matching input columns scaled by the same gates:
  max |difference| of the output logits, and how much the mask moved them (it must do something);
* prune: `pruning.physically_prune` with the same mask against the masked model: max |difference|
  of the logits, or the reason it is not supported.

Exact means <= 1e-3 (attention weights in [0, 1]; logits, which are of order 1-10 with these weights).
A mask "does something" when it moves some logit by more than 0.1.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers as tf

from models import families, interventions, loader, pruning, verify

TEXT = "the cat sat on the mat while the old dog slept by the door"
ATTN_TOL = 1e-3
LOGIT_TOL = 1e-3
MASK_EFFECT = 0.1


def mask_for(layers: int, heads: int, shared: bool = False) -> np.ndarray:
    """float32 [layers, heads]: layer 0 loses heads 0 and 1 (a whole key/value group when there are
    2 per group) and keeps head 2 at half weight; other layers lose head 1 only (unequal groups).
    With `shared` (one module serves every layer, ALBERT) every layer gets layer 0's row."""
    m = np.ones((layers, heads), np.float32)
    m[0, :2] = 0.0
    m[0, 2 % heads] = 0.5 if heads > 2 else m[0, 2 % heads]
    if not shared:
        m[1:, 1 % heads] = 0.0
    else:
        m[1:] = m[0]
    return m


@dataclass
class FamilyResult:
    family: str
    status: str  # "exact" | "fallback-exact" | "refused" | "wrong"
    path: str = ""  # loader.INTERFACE | loader.FALLBACK | ""
    architecture: str = ""
    reason: str = ""  # refusal reason
    view_diff: float | None = None  # max |ours - eager| over blocks, layers, heads
    blocks: tuple = ()
    mask_diff: float | None = None  # max |gated logits - scaled-projection logits|
    mask_effect: float | None = None  # max |gated logits - ungated logits|
    prune: str = ""  # "allclose" | "not supported: ..." | "differs"
    prune_diff: float | None = None
    params: tuple = ()  # (full, pruned) parameter counts when pruned
    notes: tuple = field(default_factory=tuple)

    @property
    def exact_view(self) -> bool:
        return self.view_diff is not None and self.view_diff <= ATTN_TOL

    @property
    def exact_mask(self) -> bool:
        return self.mask_diff is not None and self.mask_diff <= LOGIT_TOL and (self.mask_effect or 0) > MASK_EFFECT


def _eager_copy(family: str, folder: Path):
    _, auto = families.build_config(family, 8)
    model = getattr(tf, auto).from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


def _scale_projection_inputs(projections_by_layer: list, gates: np.ndarray) -> None:
    """In place: multiply the input columns of each layer's output projection by its gates [L, H]
    (a projection shared by several layers is scaled once: their gate rows are equal)."""
    done = set()
    for layer, proj in enumerate(projections_by_layer):
        if id(proj) in done:
            continue
        done.add(id(proj))
        w = proj.weight.data  # Linear [out, in]; Conv1D [in, out]
        conv = type(proj).__name__ == "Conv1D"
        width = w.shape[0] if conv else w.shape[1]
        g = torch.from_numpy(gates[layer]).repeat_interleave(width // gates.shape[1]).to(w.dtype)
        w.mul_(g[:, None] if conv else g[None, :])


def _logits(model, inputs):
    with torch.inference_mode():
        return model(**inputs).logits.float()


def check_family(family: str, tokenizer, folder: Path) -> FamilyResult:
    """Build, save, load and measure one family (see the module docstring). Never raises for a
    refusal: a ModelLoadError becomes status "refused" with its reason."""
    from models import attention

    families.save_family(family, tokenizer, folder)
    try:
        loaded = loader.load_folder(f"matrix-{family}", folder)
    except loader.ModelLoadError as exc:
        return FamilyResult(family, "refused", reason=str(exc))
    res = FamilyResult(family, "", path=loaded.path, architecture=loaded.architecture, notes=loaded.notes,
                       blocks=tuple(loaded.blocks))
    inputs, *_ = attention.forward_inputs(loaded, TEXT, None, loaded.max_tokens)
    inputs.pop("labels", None)
    eager = _eager_copy(family, folder)
    with torch.inference_mode(), interventions.discover_projection_calls(
            interventions.output_projections(eager)) as eager_projections:
        ref = verify.block_attentions(eager(**inputs, output_attentions=True), loaded.architecture)
    run = attention.extract(loaded, TEXT)  # what the page gets (weights stored as float16)
    diffs16 = []
    for block in run.blocks:
        ours = block.weights.astype(np.float32)  # [L,H,Tq,Tk]
        theirs = torch.stack([w[0] for w in ref[block.name]]).float().numpy()
        diffs16.append(float(np.abs(ours - theirs).max()) if ours.shape == theirs.shape else float("inf"))
    # the exact figure: the float32 capture of the same forward that gives the unmasked logits
    fallback = loaded.path == loader.FALLBACK
    with torch.inference_mode(), interventions.capture(scores=False) as cap:
        out = loaded.model(**inputs, **({"output_attentions": True} if fallback else {}))
    base = out.logits.float()
    if fallback:
        interventions.record_attentions(cap, loaded.blocks, verify.block_attentions(out, loaded.architecture))
    ours32 = verify.stack_calls(cap.calls)
    diffs = [max(float((a - b[0:1].float()).abs().max()) if a.shape == b[0:1].shape else float("inf")
                 for a, b in zip(ours32[name], ref[name])) for name in loaded.blocks]
    res.view_diff = max(diffs) if diffs else None
    if max(diffs16, default=0.0) > 2e-3:  # float16 storage error is < 5e-4 on weights in [0, 1]
        res.view_diff = max(res.view_diff or 0.0, max(diffs16))
    # masking
    main = next(iter(loaded.blocks))
    L, H = loaded.shape(main)
    shared = len({id(m) for m in eager_projections[:L]}) < L
    mask = mask_for(L, H, shared)
    if loaded.can_gate:
        with interventions.head_gates({main: torch.from_numpy(mask)}):
            gated = _logits(loaded.model, inputs)
        _scale_projection_inputs(eager_projections[:L], mask)
        res.mask_diff = float((gated - _logits(eager, inputs)).abs().max())
        res.mask_effect = float((gated - base).abs().max())
        # physical pruning
        try:
            small = pruning.physically_prune(loaded, mask)
        except NotImplementedError as exc:
            res.prune = f"not supported: {exc}"
        else:
            res.prune_diff = float((_logits(small.model, inputs) - gated).abs().max())
            res.prune = "allclose" if res.prune_diff <= LOGIT_TOL else "differs"
            res.params = (pruning.param_count(loaded.model), pruning.param_count(small.model))
    else:
        res.prune = "not supported: no head masking for this model"
    if not res.exact_view:
        res.status = "wrong"
    else:
        res.status = "fallback-exact" if loaded.path == loader.FALLBACK else "exact"
    return res


def run_all(names=None, tokenizer=None) -> list[FamilyResult]:
    tokenizer = tokenizer or loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    out = []
    with tempfile.TemporaryDirectory(prefix="attn-matrix-") as tmp:
        for fam in names or families.FAMILIES:
            out.append(check_family(fam, tokenizer, Path(tmp) / fam))
    return out


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.1e}"


def markdown(results: list[FamilyResult]) -> str:
    """The README table: one row per family."""
    lines = ["| family | kind | attention path | view (max diff vs eager) | temperature, q·k | "
             "masking (max diff) | physical pruning |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        if r.status == "refused":
            lines.append(f"| {r.family} | – | refused: {r.reason} | – | – | – | – |")
            continue
        path = "attention function" if r.path == loader.INTERFACE else "fallback (eager output_attentions)"
        scores = "yes" if r.path == loader.INTERFACE else "off (no pre-softmax scores)"
        mask = f"exact ({_fmt(r.mask_diff)})" if r.exact_mask else (
            "off" if r.mask_diff is None else f"DIFFERS ({_fmt(r.mask_diff)})")
        if r.prune == "allclose":
            prune = f"yes ({_fmt(r.prune_diff)})"
        elif r.prune.startswith("not supported"):
            prune = "no"
        else:
            prune = f"DIFFERS ({_fmt(r.prune_diff)})"
        view = f"{'exact' if r.exact_view else 'WRONG'} ({_fmt(r.view_diff)})"
        lines.append(f"| {r.family} | {r.architecture} | {path} | {view} | {scores} | {mask} | {prune} |")
    n = len(results)
    exact = sum(r.status == "exact" for r in results)
    fb = sum(r.status == "fallback-exact" for r in results)
    refused = sum(r.status == "refused" for r in results)
    both = sum(r.exact_view and r.exact_mask for r in results)
    lines.append("")
    lines.append(f"{n} families: {exact} exact through the attention function, {fb} exact through the fallback, "
                 f"{refused} refused; {both} exact for viewing and masking; physical pruning allclose for "
                 f"{sum(r.prune == 'allclose' for r in results)}.")
    return "\n".join(lines)


START, END = "<!-- family-matrix:start (python -m models.matrix --readme) -->", "<!-- family-matrix:end -->"


def write_readme(table: str, path: Path = Path(__file__).resolve().parent.parent / "README.md") -> None:
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def readme_verdicts(text: str) -> dict[str, list[str]]:
    """{family: its row's cells with the figures in brackets removed} from the README table."""
    import re

    body = text.split(START, 1)[1].split(END, 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] not in ("family", "---"):
            rows[cells[0]] = [re.sub(r"\s*\([^)]*\d[^)]*\)", "", c) for c in cells[1:]]
    return rows


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny models: threads only add synchronisation
    args = [a for a in sys.argv[1:] if a != "--readme"]
    results = run_all(args or None)
    table = markdown(results)
    print(table)
    if "--readme" in sys.argv:
        write_readme(table)
