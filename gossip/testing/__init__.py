"""Fakes and harnesses for tests, like trio.testing: in-memory networks, HTTP replay."""
