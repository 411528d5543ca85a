"""Every component id of the page, in one place.

Plain ids are strings; repeated components use pattern-matching dict ids built by the small
functions at the bottom (`{"type": ..., ...}`), never ids glued together from strings.
The browser code reads them from assets/attn-ids.js, generated from this module
(`python -m dashboard.jsids` after a change; tests/unit/test_js_ids.py checks it is current).
"""

# ---- shared state (dcc.Store / dcc.Location / dcc.Download) ---------------------------------
URL = "url"                      # dcc.Location, refresh=False
RUN = "run-store"                # {"request": RunRequest.to_dict(), "summary": run.summary()}
HOVER = "hover-store"            # {layer, head, query, key, source}; browser-only (clientside)
QUERY = "query-store"            # selected query position (int) for the token inspector
URL_LOADED = "url-loaded-store"  # the view a URL asks for; written when a URL is opened, starts the run
URL_WRITTEN = "url-written-store"  # the last query string the page wrote itself (not a navigation)
DOWNLOAD_CSV = "download-csv"    # dcc.Download of the shown matrix
DOWNLOAD_GRID = "download-grid"  # dcc.Download of every per-head metric of the block (CSV)

# ---- controls ---------------------------------------------------------------------------------
MODEL = "model-dropdown"
TEXT = "text-input"
TEXT_PAIR = "text-pair-input"
RUN_BUTTON = "run-button"
LAYER = "layer-dropdown"
HEAD = "head-dropdown"
BLOCK = "block-dropdown"
COLOR_SCALE = "color-scale"
SHOW_VALUES = "show-values"
COLOR_STRETCH = "color-stretch"   # colours 0..this head's max instead of 0..1
TEMPERATURE = "temperature-slider"
TEMPERATURE_LABEL = "temperature-label"

# ---- status -----------------------------------------------------------------------------------
STATUS = "status-alert"          # errors (dbc.Alert); never a stack trace
TRUNCATION = "truncation-alert"  # "Text cut to 512 tokens at character ..."
RUN_LOADING = "run-loading"      # dcc.Loading around the run's outputs
RUN_INFO = "run-info"            # small line under the controls: model, architecture, tokens

# ---- stats row --------------------------------------------------------------------------------
STATS = "stats-row"

# ---- heatmap card ----------------------------------------------------------------------------
HEATMAP = "heatmap-graph"
HEATMAP_CONTAINER = "heatmap-container"   # focusable (tabIndex 0), arrow keys move the cell
HEATMAP_TITLE = "heatmap-title"           # server-written: "Layer 3 · head 1 · self"
HEATMAP_HOVER_TITLE = "heatmap-hover-title"  # clientside-written: "Hovering L2 H5 — ..."
HEATMAP_LIVE = "heatmap-live"             # aria-live="polite" region
HEATMAP_PAYLOAD = "heatmap-payload"       # server-written: figure without z + quantised bytes (assets/heatmap.js)
HEATMAP_WINDOW = "heatmap-window"         # clientside-written: box-zoom window of an overview {q0,q1,k0,k1}
GRID_PAYLOAD = "grid-payload"             # server-written: {"view", "figure"}; drawn if still current (consistency.js)
OVERVIEW_PAYLOAD = "overview-payload"     # {"view", "figure", "title"}
INSPECTOR_PAYLOAD = "inspector-payload"   # {"view", "figure", "table", "title"}
TEXT_VIEW_PAYLOAD = "text-view-payload"   # dashboard/textview.py: tokens + one query's weights
TEXT_VIEW_BOX = "text-view-box"           # drawn by assets/textview.js (no Dash children)
TEXT_VIEW_TITLE = "text-view-title"
TEXT_VIEW_NOTE = "text-view-note"
HEATMAP_FETCH = "heatmap-fetch"           # clientside-written: a head the payload lacks {head, n}
# the layer / head as the server-drawn cards below the fold (pruning comparison, research card)
# follow them: copied from the dropdowns while such a card is in view, else once one scrolls into
# view (assets/consistency.js follow), so a head switch at the top of the page asks nothing
FOLLOW_LAYER = "follow-layer-store"
FOLLOW_HEAD = "follow-head-store"
FOLLOWS_CLASS = "follows-selection"       # className of a card that reads FOLLOW_LAYER / FOLLOW_HEAD
POOL = "pool-choice"                      # overview of long texts: block "max" | "mean"
CSV_BUTTON = "csv-button"
GRID_CSV_BUTTON = "grid-csv-button"
TEMPERATURE_NOTE = "temperature-note"
MEASURE = "measure-choice"                # raw | rollout | value-norm | grad-attention (dashboard/measure_card.py)
MEASURE_STATUS = "measure-status"         # "Computing value-norm …" / the shown measure's formula (assets/measure.js)
MEASURE_EXPLAIN = "measure-explain"       # the explain panel's formula + caveat of the shown measure
JSON_BUTTON = "json-button"               # the shown matrix as JSON (values, labels, metadata)
DOWNLOAD_JSON = "download-json"

# ---- entropy / head grid card ------------------------------------------------------------------
GRID = "grid-graph"
GRID_METRIC = "grid-metric"

# ---- token inspector ----------------------------------------------------------------------------
INSPECTOR = "inspector-graph"
INSPECTOR_TABLE = "inspector-table"
INSPECTOR_TITLE = "inspector-title"

# ---- model overview (small multiples of one layer) ----------------------------------------------
OVERVIEW = "overview-graph"
OVERVIEW_TITLE = "overview-title"

# ---- explain panel ------------------------------------------------------------------------------
EXPLAIN_BUTTON = "explain-button"
EXPLAIN_COLLAPSE = "explain-collapse"

# ---- pruning (placeholder card; dashboard/pruning_panel.py) -------------------------------------
PRUNING_CARD = "pruning-card"

# class names the clientside code looks for
HEAD_GRID_CLASS = "head-grid"   # any dcc.Graph with this className gets the hovered-head outline
GRAPH_CLASS = "attn-graph"


def svg_button(graph_id: str) -> dict:
    """The "SVG" download button of one graph."""
    return {"type": "svg-button", "graph": graph_id}


def png_button(graph_id: str) -> dict:
    """The "PNG" download button of one graph."""
    return {"type": "png-button", "graph": graph_id}


def stat_value(name: str) -> dict:
    """One number of the stats row ("tokens", "entropy", "max_weight", "most_attended", "sink")."""
    return {"type": "stat-value", "name": name}



# ---- which run each panel shows ---------------------------------------------------------------------
STALE_PANELS = ("heatmap", "grid", "overview", "inspector")


def stale_badge(panel: str) -> str:
    """A card's note "showing the previous text … updating" while its answer for the new run is due."""
    return f"{panel}-stale-badge"
