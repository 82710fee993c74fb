"""Network emulation: scenario files, their plan, and players that carry the
plan out in network namespaces on this machine or in containers."""
