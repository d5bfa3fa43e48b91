"""Platform adapters (one module per platform) and what they share (base)."""

import warnings

# Authlib 1.9 warns on import that its httpx integration will move to the httpx2
# package. We use httpx (the stable, well-kept client) on purpose; the warning says
# nothing a school or an operator can act on, so it is not shown on every start.
warnings.filterwarnings(
    "ignore",
    message="The httpx module is deprecated",
    category=DeprecationWarning,
)
