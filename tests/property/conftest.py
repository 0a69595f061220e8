"""Hypothesis profiles for the property suite; pick one with ``HYPOTHESIS_PROFILE`` (default ``dev``).

* ``dev``: the default, sized so ``tests/property`` runs in well under a minute on a shared 2-core box.
* ``ci``: same budget, derandomized and without the example database, so CI is reproducible.
* ``thorough``: ten times the examples, for a local soak after touching the stats core.

No deadline anywhere: a trio run per example on a loaded machine has noisy timings, and a flaky
deadline failure would teach nothing.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
