"""The ownership service plugin: settings, service, item handlers."""
