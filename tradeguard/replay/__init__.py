"""``tradeguard replay``: what a policy would have done to recorded traffic.
"""
