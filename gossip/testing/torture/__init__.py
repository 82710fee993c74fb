"""Whole-agent fault runs (`gossip torture`): real agents in virtual time under a
seeded fault schedule, with the clients' history checked afterwards."""
