"""Operations: Prometheus ``/metrics``, the ``/livez`` and ``/readyz`` probes, and their HTTP routes.

See docs/operations.md for every endpoint, setting and metric name.
"""

from .metrics import Metrics
from .probes import Readiness

__all__ = ["Metrics", "Readiness"]
