"""The analyst console: watch the engine's decisions and controls, act on them, audited.

``tradeguard console`` serves it (:mod:`tradeguard.console.server`). The parts,
from the wire inwards:

- :mod:`~tradeguard.console.feed` reads the engine's topics on a background thread;
- :mod:`~tradeguard.console.view` folds them into bounded state the pages query;
- :mod:`~tradeguard.console.pages` renders pages and live fragments from it;
- :mod:`~tradeguard.console.access` says who may do what (roles, two-person rule);
- :mod:`~tradeguard.console.operations` plans an action, writes it and its audit record;
- :mod:`~tradeguard.console.users`, :mod:`~tradeguard.console.sessions` and
  :mod:`~tradeguard.console.oidc` log operators in;
- :mod:`~tradeguard.console.app` is the aiohttp application tying them together.
"""
