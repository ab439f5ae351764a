"""The embedding scorer on the real bundled WordLlama model, with the network cut off."""

import socket

import pytest

from promptopt.scorers._embedding import _TOKENIZER, default_cache_dir, load_model, similarity
from tests.scorers.helpers import row, score


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    # A cache folder no test has used: the model must load from the wheel alone.
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path))
    return tmp_path / "wordllama"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "wordllama"
    monkeypatch.delenv("PROMPTOPT_CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "promptopt", "wordllama")


def test_loads_offline_into_an_empty_cache(no_network, fresh_cache):
    model = load_model(fresh_cache)
    assert (fresh_cache / "tokenizers" / _TOKENIZER).is_file()
    assert load_model(fresh_cache) is model  # loaded once per process


def test_related_text_scores_above_unrelated_text(no_network, fresh_cache, build):
    scorer = build({"type": "embedding"})
    related, unrelated = score(
        scorer,
        row("a wonderful film", "the movie was great"),
        row("quarterly tax filing deadline", "the movie was great"),
    )
    assert related.value == pytest.approx(0.73, abs=0.1)
    assert unrelated.value < 0.3
    assert related.value > unrelated.value + 0.4


def test_similarity_edge_cases(no_network, fresh_cache):
    model = load_model(fresh_cache)
    assert similarity(model, "same words", " same words ") == 1.0
    assert similarity(model, "", "") == 1.0
    assert similarity(model, "", "something") == 0.0
    assert 0.0 <= similarity(model, "good", "not good at all") <= 1.0
