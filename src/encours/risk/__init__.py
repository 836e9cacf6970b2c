"""Credit risk: financial statements and failure scores, payment behaviour scorecard,
risk classes, credit limits, the order credit check and expected credit loss."""
