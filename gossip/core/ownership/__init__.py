"""Work ownership: rendezvous partition tables and item acquisition."""
