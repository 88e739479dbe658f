"""What a run records: the append-only record of every score change (`Ledger`), and the
results schema declaring every table and column a run keeps (`schema`)."""

from metricpower.ledger.ledger import Ledger
from metricpower.ledger.schema import RESULTS, UndeclaredColumn

__all__ = ["RESULTS", "Ledger", "UndeclaredColumn"]
