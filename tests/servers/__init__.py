"""Local test servers (real HTTP on 127.0.0.1, port 0; no network), e.g. ``openai_server.FakeOpenAIServer``.

Import them in tests as ``from servers.openai_server import FakeOpenAIServer`` (pytest puts ``tests/`` on the path).
"""
