"""The page's questions, answered from the engine: between models/ (runs, loading, jobs; no Dash)
and dashboard/ (layout and pure figure builders from plain data; imports neither models nor torch).

Each module here reads a run or calls the engine (models.service, models.loader, models.pruning
...) and hands plain values to dashboard's builders; callbacks/ only wire ids to these functions.

    views           blocks, selection clamping, one head's matrix / title / stats of a run
    panels          what each main-page callback returns (heatmap payload, grid, overview, inspector)
    textview        the running-text view of one query row
    pruning_card    the head-pruning card (masks against the run, comparison, importance/curves jobs)
    research_*      the research card (measures, compare, corpus profile, held-out study)
"""
