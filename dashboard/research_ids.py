"""Component ids of the research cards (dashboard/research_panel.py, callbacks/research.py)."""

RESEARCH_CARD = "research-card"

# ---- held-out pruning study --------------------------------------------------------------------
STUDY = "research-study-store"              # StudyResult.to_dict() + {"model", "corpus"}
STATUS = "research-status"                  # dbc.Alert of the card (errors; never a stack trace)
METHODS = "research-methods"                # checklist of importance methods
SEEDS = "research-seeds"                    # random orders: number of seeds (>= 5)
ESTIMATE_SHARE = "research-estimate-share"  # share of the pairs that estimates importance (%)
CORPUS_NOTE = "research-corpus-note"        # which pairs, both split sizes
STUDY_BUTTON = "research-study-button"
STUDY_CANCEL = "research-study-cancel"
STUDY_PROGRESS = "research-study-progress"
STUDY_PROGRESS_TEXT = "research-study-progress-text"
STUDY_PROGRESS_WRAP = "research-study-progress-wrap"
STUDY_GRAPH = "research-study-graph"
STUDY_TABLE = "research-study-table"
STUDY_INFO = "research-study-info"
GREEDY_NOTE = "research-greedy-note"        # the greedy job's cost estimate
GREEDY_BUTTON = "research-greedy-button"
GREEDY_CANCEL = "research-greedy-cancel"
GREEDY_PROGRESS = "research-greedy-progress"
GREEDY_PROGRESS_TEXT = "research-greedy-progress-text"
GREEDY_PROGRESS_WRAP = "research-greedy-progress-wrap"
GREEDY_DONE = "research-greedy-done"        # {"model", "corpus", "k", "seconds"} once the greedy order exists

# ---- compare two runs ----------------------------------------------------------------------------
COMPARE_TEXT = "research-compare-text"      # text B (empty: the page's text)
COMPARE_MODEL = "research-compare-model"    # model B (registry names)
COMPARE_A = "research-compare-a"
COMPARE_B = "research-compare-b"
COMPARE_DIFF = "research-compare-diff"
COMPARE_NOTE = "research-compare-note"
COMPARE_MASK = "research-compare-mask"      # switch: B = the page's text under the pruning card's mask
COMPARE_HOVER = "research-compare-hover"    # the pointed cell in A, B and B − A (assets/compare.js)

# ---- model view ----------------------------------------------------------------------------------
MODEL_VIEW = "research-model-view"          # every layer x head as thumbnails (one heatmap)
MODEL_VIEW_NOTE = "research-model-view-note"
MODEL_VIEW_ON = "research-model-view-on"      # switch: draw the model view (it rebuilds every head of the run)

# ---- corpus head profile ------------------------------------------------------------------------
PROFILE = "research-profile-store"           # {"key", "model", "corpus", "n", "mean", "roles", ...}
PROFILE_CORPUS = "research-profile-corpus"   # None (bundled) | {"name", "texts"}
PROFILE_UPLOAD = "research-profile-upload"
PROFILE_CORPUS_INFO = "research-profile-corpus-info"
PROFILE_BUTTON = "research-profile-button"
PROFILE_CANCEL = "research-profile-cancel"
PROFILE_PROGRESS = "research-profile-progress"
PROFILE_PROGRESS_TEXT = "research-profile-progress-text"
PROFILE_PROGRESS_WRAP = "research-profile-progress-wrap"
PROFILE_INFO = "research-profile-info"
PROFILE_TEXTS = "research-profile-texts"     # the most extreme texts of the clicked head


def profile_grid(measure: str) -> dict:
    """The layers x heads grid of one profile measure (models.profile.MEASURES)."""
    return {"type": "research-profile-grid", "measure": measure}


def profile_text(index: int) -> dict:
    """A listed corpus text (index into the cached profile's texts); click opens it in the heatmap."""
    return {"type": "research-profile-text", "index": index}


def study_row(method: str) -> dict:
    """One row of the study table (a method name or "random")."""
    return {"type": "research-study-row", "method": method}
