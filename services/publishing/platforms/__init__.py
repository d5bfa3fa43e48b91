"""Platform adapters (one module per platform) and what they share (base)."""

import warnings

from authlib.deprecate import AuthlibDeprecationWarning

# Authlib 1.9 warns on import that its httpx integration will move to the httpx2
# package (and installs an "always show" filter for its warnings when imported, so
# ours must come after it). We use httpx, the stable client, on purpose; the notice
# says nothing a school or an operator can act on, so it is not shown on every start.
warnings.filterwarnings(
    "ignore",
    message="The httpx module is deprecated",
    category=AuthlibDeprecationWarning,
)
