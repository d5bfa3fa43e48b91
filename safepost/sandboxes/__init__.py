"""Local sandboxes of the social platforms (for make run and the tests)."""
