"""``tradeguard replay``: what a policy would have done to recorded traffic, and why it differs.

    window.py    the range (event time), lead-in and settle, from what people type
    recorded.py  the Kafka edge: recorded topics by time range, decoded, paused, stopped
    merge.py     many partitions' records into one event-time-ordered stream
    batches.py   that stream in large batches for the core, each with the profiles it needs
    run.py       the replay: stream -> decision core (InProcessEngine) -> comparison
    provenance.py  exact replay: every live step fed again from engine.steps, compared
    compare.py   published against replayed decisions and controls; each difference's cause
    shadow.py    ``--compare-shadow``: decisions against decisions.shadow
    report.py    report.json, report.md, differences.jsonl; plots.py: the PNGs
    progress.py  the progress bar on stderr

Data flows one way: Kafka -> recorded -> merge -> core -> compare -> report. Only
``recorded`` talks to Kafka; ``merge``, ``compare`` and ``window`` are pure. docs/replay.md
says what a replay can and cannot reproduce.
"""

__all__ = ["ReplayRequest", "ReplayWindow", "compare_shadow", "replay"]


def __getattr__(name: str):
    # Lazily: the CLI parses its options without loading Kafka, Numba or River.
    if name in ("ReplayRequest", "replay"):
        from tradeguard.replay import run

        return getattr(run, name)
    if name == "ReplayWindow":
        from tradeguard.replay.window import ReplayWindow

        return ReplayWindow
    if name == "compare_shadow":
        from tradeguard.replay.shadow import compare_shadow

        return compare_shadow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
