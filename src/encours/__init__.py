"""encours: customer credit-risk management and receivables collection."""

__version__ = "0.1.0"
