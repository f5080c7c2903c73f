"""Local test servers (real HTTP, no network): ``openai_server.FakeOpenAIServer``."""
