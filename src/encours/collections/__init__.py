"""Collections: dunning policies and runs, the outbox and its channels, the legal file."""
