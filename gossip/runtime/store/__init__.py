"""The replicated store service plugin: settings, storage, coordinator, sync, routes."""
