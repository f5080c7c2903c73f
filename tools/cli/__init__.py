"""The ``mllm-safety`` command line: argparse commands only (parse, call, print); the work is done in
``baselines`` and the other ``tools`` packages.
"""
