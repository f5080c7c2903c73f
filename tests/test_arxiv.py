"""The arXiv client against a real local server: parsing, LaTeX/Unicode cleanup, paging, faults, politeness."""

from __future__ import annotations

import pytest
from servers.arxiv_entries import ENTRIES, LATEX_ID, WITHDRAWN_ID, paging_entries
from servers.arxiv_server import FakeArxivServer

from tools.catalog.latex import clean_text
from tools.track.arxiv import ArxivClient, ArxivError, parse_arxiv_id, parse_feed


@pytest.fixture()
def server():
    with FakeArxivServer(ENTRIES + paging_entries(10)) as srv:
        yield srv


def client_for(srv: FakeArxivServer, **kw) -> tuple[ArxivClient, list[float]]:
    sleeps: list[float] = []
    kw.setdefault("delay_s", 0)
    return ArxivClient(srv.api, sleep=sleeps.append, **kw), sleeps


@pytest.mark.parametrize(
    "ref",
    [
        "2405.01234",
        "2405.01234v3",
        "arXiv:2405.01234",
        "https://arxiv.org/abs/2405.01234v2",
        "http://arxiv.org/pdf/2405.01234",
    ],
)
def test_parse_arxiv_id_accepts_ids_and_urls(ref):
    assert parse_arxiv_id(ref) == "2405.01234"


def test_parse_arxiv_id_old_style_and_garbage():
    assert parse_arxiv_id("https://arxiv.org/abs/hep-th/9901001v1") == "hep-th/9901001"
    with pytest.raises(ValueError, match="not an arXiv id"):
        parse_arxiv_id("https://example.org/paper")


def test_get_cleans_latex_and_unicode_and_keeps_first_version_date(server):
    client, _ = client_for(server)
    e = client.get("2405.01234v1")
    assert e.arxiv_id == LATEX_ID and e.version == 3
    assert (
        e.title
        == "α-Jailbreak: Breaking the Safety of Vision-Language Models with Élégant Typographic Images"
    )
    assert e.authors == ["José García", "Zoë Müller", "Łukasz Nowak", "Søren Kierkegaard"]
    assert e.published == "2024-05-02" and e.updated == "2024-07-01"
    assert "\n" not in e.abstract and "40%" in e.abstract and e.abstract.startswith("Multimodal large")
    assert e.comment.startswith("Accepted to ECCV 2024")
    assert e.categories == ["cs.CV", "cs.CL"] and e.primary_category == "cs.CV"
    assert e.abs_url == "https://arxiv.org/abs/2405.01234"
    assert not e.withdrawn
    assert server.requests[0].params["id_list"] == "2405.01234"


def test_withdrawn_paper_is_recognised(server):
    client, _ = client_for(server)
    assert client.get(WITHDRAWN_ID).withdrawn


def test_unknown_and_malformed_ids(server):
    client, _ = client_for(server)
    with pytest.raises(ArxivError, match="no paper with id 2499.99999"):
        client.get("2499.99999")
    with pytest.raises(ArxivError, match="incorrect id format for 12.3"):
        client.query(id_list=["12.3"])


def test_retry_after_on_503_and_429_is_honoured(server):
    client, sleeps = client_for(server)
    server.push("503", retry_after="7")
    server.push("429", retry_after="2")
    assert client.get(LATEX_ID).arxiv_id == LATEX_ID
    assert [r.answered_with for r in server.requests] == ["503", "429", "ok"]
    assert sleeps == [7.0, 2.0]


def test_gives_up_after_the_retries(server):
    client, sleeps = client_for(server, max_retries=2)
    for _ in range(3):
        server.push("503", retry_after="1")
    with pytest.raises(ArxivError, match="HTTP 503; gave up after 3 attempts"):
        client.get(LATEX_ID)
    assert len(server.requests) == 3 and sleeps == [1.0, 1.0]


def test_malformed_xml_is_a_clear_error(server):
    client, _ = client_for(server)
    server.push("malformed")
    with pytest.raises(ArxivError, match="malformed XML"):
        client.get(LATEX_ID)
    with pytest.raises(ArxivError, match="not an Atom feed"):
        parse_feed("<html><body>maintenance</body></html>")


def test_empty_result(server):
    client, _ = client_for(server)
    assert list(client.search("all:quantumchromodynamics")) == []
    feed = client.query("all:quantumchromodynamics")
    assert feed.total == 0 and feed.entries == []


def test_paging_walks_every_page_newest_first(server):
    client, _ = client_for(server)
    got = list(client.search('ti:"Jailbreak Study"', page_size=4))
    assert [e.published for e in got] == sorted((e.published for e in got), reverse=True)
    assert len(got) == len({e.arxiv_id for e in got}) == 10
    starts = [int(r.params["start"]) for r in server.requests]
    assert starts == [0, 4, 8]
    assert all(r.params["sortBy"] == "submittedDate" for r in server.requests)


def test_paging_stops_at_since_and_at_max_results(server):
    client, _ = client_for(server)
    got = list(client.search('ti:"Jailbreak Study"', page_size=4, since="2024-03-07"))
    assert [e.published for e in got] == ["2024-03-10", "2024-03-09", "2024-03-08", "2024-03-07"]
    assert len(server.requests) == 2  # the second page reached 2024-03-06 and stopped
    assert len(list(client.search('ti:"Jailbreak Study"', page_size=4, max_results=5))) == 5


def test_an_empty_page_before_the_end_is_asked_again(server):
    client, _ = client_for(server)
    server.push("ok")
    server.push("empty")
    got = list(client.search('ti:"Jailbreak Study"', page_size=4))
    assert len(got) == 10
    assert [int(r.params["start"]) for r in server.requests] == [0, 4, 4, 8]


class FakeClock:
    """A monotonic clock that moves only when told to (or when the client sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_calls_are_spaced_by_the_delay(server):
    clock = FakeClock()
    client = ArxivClient(server.api, delay_s=0.3, sleep=clock.sleep, clock=clock)
    client.get(LATEX_ID)
    assert clock.sleeps == []  # the first call does not wait
    clock.now += 0.1  # 0.1 s pass before the next call: it waits the other 0.2 s
    client.get(LATEX_ID)
    assert clock.sleeps == [pytest.approx(0.2)]
    clock.now += 5.0  # long after: no wait
    client.get(LATEX_ID)
    assert clock.sleeps == [pytest.approx(0.2)] and len(server.requests) == 3


def test_base_url_and_delay_from_the_environment(monkeypatch, server):
    monkeypatch.setenv("MLLM_SAFETY_ARXIV_API", server.api)
    monkeypatch.setenv("MLLM_SAFETY_ARXIV_DELAY", "0")
    client = ArxivClient()
    assert client.base_url == server.api and client.delay_s == 0
    assert client.get(LATEX_ID).arxiv_id == LATEX_ID


def test_retry_waits_are_capped_and_never_shorter_than_the_delay(server):
    client, sleeps = client_for(server, delay_s=0.5, max_wait_s=5.0)
    server.push("503", retry_after="86400")  # a server cannot park the tracker for a day
    server.push("429", retry_after="0")  # never closer than the polite delay
    server.push("503", retry_after="3")
    assert client.get(LATEX_ID).arxiv_id == LATEX_ID
    assert sleeps == [5.0, 0.5, 3.0]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Safety of\n  Vision-Language   Models", "Safety of Vision-Language Models"),
        ('J{\\"o}rg M\\"uller', "Jörg Müller"),
        ("Fran\\c{c}ois \\v{S}koda", "François Škoda"),
        ("Stra\\ss e and {\\O}ystein", "Straße and Øystein"),
        ("$\\alpha$-CROWN: \\textit{Robust} \\& Fast", "α-CROWN: Robust & Fast"),
        ("GPT-4V --- a \\emph{study} of $10^{-3}$", "GPT-4V — a study of 10⁻³"),
        ("50\\% of https://x.org/~u", "50% of https://x.org/~u"),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean
