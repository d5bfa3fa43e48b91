"""Platform adapters (one module per platform) and what they share (base)."""
