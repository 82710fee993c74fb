"""Operator event handlers: scripts run for membership and user events (see spec.py, runner.py)."""
