"""Datasets (auto-discovered: each public module registers one component)."""
