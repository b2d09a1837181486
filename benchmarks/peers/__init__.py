"""What a user would pick instead of the engine: pass-through pipelines that score nothing.

Each reads ``<prefix>orders``, decodes each order and writes one
decision-shaped record (``decision_shaped``) to ``<prefix>decisions``, so the
collector counts them exactly as it counts the engine's decisions.
"""
