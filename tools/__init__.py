"""MLLM Safety Atlas tooling: CLI, catalog schema and I/O, site renderer, literature tracker."""
