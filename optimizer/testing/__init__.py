"""Test and benchmark helpers that users may reuse: a loopback OpenAI-compatible fake server."""

from promptopt.testing._fake_server import FakeOpenAIServer, keyword_answer

__all__ = ["FakeOpenAIServer", "keyword_answer"]
