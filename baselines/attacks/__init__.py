"""Attacks (auto-discovered: each public module registers one component)."""
