"""Staff accounts and roles per school: the identity-provider stand-in (OIDC later)."""
