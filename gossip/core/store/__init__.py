"""The replicated store's pure parts: records, versions, placement, Merkle sync."""
