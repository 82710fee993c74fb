"""gossip: a leaderless peer-to-peer agent for fault tolerance without a central server."""

__version__ = "0.1.0"
