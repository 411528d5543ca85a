"""Component ids of the head-pruning card (dashboard/pruning_panel.py, callbacks/pruning.py).

The card itself keeps the page's id `dashboard.ids.PRUNING_CARD`. assets/pruning.js reads these
ids from assets/attn-ids.js, generated from this module (`python -m dashboard.jsids`).
"""

# ---- state (dcc.Store, inside the card) --------------------------------------------------------
MASK = "pruning-mask-store"              # float [layers][heads] of 0/1 over the main block, or None
SHIFT = "pruning-shift-store"            # bool: Shift held at the last pointer press (assets/pruning.js)
ANCHOR = "pruning-anchor-store"          # {"layer", "head", "value"}: the last clicked head (shift-click range)
IMPORTANCE = "pruning-importance-store"  # {"model", "scores" [L][H], "loss_name", "n_examples", "corpus", ...}
CURVES = "pruning-curves-store"          # CurveResult.to_dict() + {"model", "corpus"}
CORPUS = "pruning-corpus-store"          # None (the bundled pairs) | {"name", "pairs": [[a, b], ...]}
HOVER_SINK = "pruning-hover-sink"        # dummy output of the clientside highlight of the two heatmaps

# ---- messages -----------------------------------------------------------------------------------
STATUS = "pruning-status"                # dbc.Alert of the card (errors; never a stack trace)

# ---- choose heads -------------------------------------------------------------------------------
SELECT_GRID = "pruning-select-grid"      # layers x heads, click toggles, x = pruned
SELECT_PAYLOAD = "pruning-select-payload"  # server-written {"view", "figure", "main_block"}; outline added in the browser
SELECT_GRID_BOX = "pruning-select-grid-box"  # focusable wrapper: arrow keys + Space/Enter (pruning.js)
SELECT_COLOR = "pruning-select-color"    # colour the grid by "importance" | "entropy"
SELECT_NOTE = "pruning-select-note"
COUNT = "pruning-count"                  # "18 of 72 heads pruned (25%)"
K_INPUT = "pruning-k-input"
K_BUTTON = "pruning-k-button"
ENTROPY_INPUT = "pruning-entropy-input"
ENTROPY_BUTTON = "pruning-entropy-button"
CLEAR_BUTTON = "pruning-clear-button"

# ---- baseline vs pruned -------------------------------------------------------------------------
COMPARE_TITLE = "pruning-compare-title"
BASE_HEATMAP = "pruning-base-heatmap"
PRUNED_HEATMAP = "pruning-pruned-heatmap"
PRUNED_TITLE = "pruning-pruned-title"
COMPARE_NOTE = "pruning-compare-note"
OUTPUT_CHANGE = "pruning-output-change"  # row of small stat cards
CHANGE_GRID = "pruning-change-grid"      # JS divergence of the remaining heads


def output_value(name: str) -> dict:
    """One number of the output-change row ("cosine", "loss", "js_mean", "js_max", "pruned")."""
    return {"type": "pruning-output-value", "name": name}


# ---- importance + curves ------------------------------------------------------------------------
UPLOAD = "pruning-upload"
CORPUS_INFO = "pruning-corpus-info"
CORPUS_RESET = "pruning-corpus-reset"
PAIRS_INPUT = "pruning-pairs-input"      # use the first N pairs (empty = all)
SEEDS_INPUT = "pruning-seeds-input"      # random orders: number of seeds
ORDERS = "pruning-orders"                # checklist of pruning orders for the curves
LOSS_NOTE = "pruning-loss-note"
IMPORTANCE_BUTTON = "pruning-importance-button"
IMPORTANCE_CANCEL = "pruning-importance-cancel"
IMPORTANCE_PROGRESS = "pruning-importance-progress"
IMPORTANCE_PROGRESS_TEXT = "pruning-importance-progress-text"
IMPORTANCE_PROGRESS_WRAP = "pruning-importance-progress-wrap"
IMPORTANCE_INFO = "pruning-importance-info"
CURVES_BUTTON = "pruning-curves-button"
CURVES_CANCEL = "pruning-curves-cancel"
CURVES_PROGRESS = "pruning-curves-progress"
CURVES_PROGRESS_TEXT = "pruning-curves-progress-text"
CURVES_PROGRESS_WRAP = "pruning-curves-progress-wrap"
CURVES_GRAPH = "pruning-curves-graph"
CURVE_METRIC = "pruning-curve-metric"
CURVE_METRIC_ROW = "pruning-curve-metric-row"       # hidden until there are curves
CURVES_INFO = "pruning-curves-info"
DOWNLOAD = "pruning-download"            # dcc.Download of the importance / curves exports


def export_button(what: str, fmt: str) -> dict:
    """Download button of an analysis: what "importance" | "curves", fmt "csv" | "json"."""
    return {"type": "pruning-export", "what": what, "format": fmt}


EXPORTS = [("importance", "csv"), ("importance", "json"), ("curves", "csv"), ("curves", "json")]

# ---- physical pruning ---------------------------------------------------------------------------
PHYSICAL_BUTTON = "pruning-physical-button"
PHYSICAL_RESULT = "pruning-physical-result"


def physical_row(name: str) -> dict:
    """One row of the physical-pruning table ("heads", "params", "latency", "fastest")."""
    return {"type": "pruning-physical-row", "name": name}


# class of the card's head grids: the page's hover code outlines the hovered head in any graph
# with dashboard.ids.HEAD_GRID_CLASS; this one marks grids whose clicks toggle heads
TOGGLE_GRID_CLASS = "pruning-toggle-grid"
