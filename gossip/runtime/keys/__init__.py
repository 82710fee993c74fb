"""The key-management service plugin."""
