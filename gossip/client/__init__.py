"""Clients of a running agent: the control-API client, store HTTP helpers, local clusters."""
