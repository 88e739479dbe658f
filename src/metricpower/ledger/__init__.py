"""The append-only record of every score change."""

from metricpower.ledger.ledger import Ledger

__all__ = ["Ledger"]
