"""SWIM membership with Lifeguard: the node state machine, its parts and its wire."""
