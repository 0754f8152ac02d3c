"""Data: raw files fetched and verified, prepared into analysis tables, or simulated."""
