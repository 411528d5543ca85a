"""The engine's names the static layout offers, as plain data (dashboard/ imports no engine)."""
from __future__ import annotations

from models import measures
from models import profile as prof


def page_vocabulary() -> dict:
    """{"measures": {measure name: label} (models.measures, in its order),
        "profile_measures": [corpus-profile measure names] (models.profile)}."""
    return {"measures": {m: measures.MEASURE_LABELS[m] for m in measures.MEASURES},
            "profile_measures": list(prof.MEASURES)}
