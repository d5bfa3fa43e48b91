"""Helpers and fakes shared by the test suites: ``wait_for`` and the bus fakes.

Service-specific fakes (a service's stores, its rig) stay beside that service's tests.
"""
