"""A real local HTTP server for the tracker's tests: the arXiv API (Atom) and link-check endpoints.

Usage::

    with FakeArxivServer(entries) as srv:          # srv.api == "http://127.0.0.1:<port>/api/query"
        srv.push("503", retry_after="1")            # scripted faults, consumed one per API request:
        srv.push("malformed"); srv.push("empty")    #   503/429 with Retry-After, broken XML, an empty page
        ... run the client ...
        srv.requests                                # every API request: (params, time, answered_with)

``GET /api/query`` follows the arXiv API user manual: ``search_query`` (``ti:``/``abs:``/``all:`` terms and
quoted phrases joined by AND / OR / ANDNOT and parentheses, plus ``submittedDate:[YYYYMMDDHHMM TO ...]``),
``id_list``, ``start``, ``max_results``, ``sortBy=submittedDate``, ``sortOrder``. The answer is an Atom 1.0
feed with the OpenSearch counters (totalResults, startIndex, itemsPerPage) and arXiv's extension elements
(comment, journal_ref, doi, primary_category). A malformed id gets arXiv's error feed (HTTP 400).

Link endpoints under ``/links/``: ``ok`` 200, ``missing`` 404, ``gone`` 410, ``moved`` 301 -> ok,
``moved308`` 308 -> ok, ``temp`` 302 -> ok, ``nohead`` (HEAD 405, GET 200), ``forbidden-head`` (HEAD 403,
GET 200), ``slow`` (answers after ``slow_s`` seconds), ``flaky`` (503 with Retry-After: 0 the first time,
then 200), ``broken`` (always 500).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

ID_RX = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")


@dataclass
class ApiRequest:
    """One request to /api/query as the server saw it."""

    params: dict[str, str]
    time: float
    answered_with: str


def entry_xml(e: dict[str, Any]) -> str:
    """One ``<entry>`` in the arXiv API's format (text is escaped; LaTeX is kept as arXiv sends it)."""
    vid = f"{e['id']}v{e.get('version', 1)}"
    parts = [
        "  <entry>",
        f"    <id>http://arxiv.org/abs/{vid}</id>",
        f"    <updated>{e.get('updated', e['published'])}T12:00:00Z</updated>",
        f"    <published>{e['published']}T09:30:00Z</published>",
        f"    <title>{escape(e['title'])}</title>",
        f"    <summary>  {escape(e.get('summary', ''))}\n</summary>",
    ]
    for name in e.get("authors", []):
        parts.append(f"    <author>\n      <name>{escape(name)}</name>\n    </author>")
    if e.get("doi"):
        parts.append(
            f'    <arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">{escape(e["doi"])}</arxiv:doi>'
        )
    for key in ("comment", "journal_ref"):
        if e.get(key):
            parts.append(
                f'    <arxiv:{key} xmlns:arxiv="http://arxiv.org/schemas/atom">{escape(e[key])}</arxiv:{key}>'
            )
    parts.append(f'    <link href="http://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>')
    parts.append(
        f'    <link title="pdf" href="http://arxiv.org/pdf/{vid}" rel="related" type="application/pdf"/>'
    )
    cats = e.get("categories", ["cs.CV"])
    parts.append(
        f'    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term={quoteattr(cats[0])} '
        'scheme="http://arxiv.org/schemas/atom"/>'
    )
    for c in cats:
        parts.append(f'    <category term={quoteattr(c)} scheme="http://arxiv.org/schemas/atom"/>')
    parts.append("  </entry>")
    return "\n".join(parts)


def feed_xml(entries: list[dict[str, Any]], total: int, start: int, per_page: int, query: str = "") -> str:
    """A complete Atom feed with the OpenSearch counters."""
    os_ns = 'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"'
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f'  <link href={quoteattr("http://arxiv.org/api/query?" + query)} rel="self" type="application/atom+xml"/>',
        f'  <title type="html">ArXiv Query: {escape(query)}</title>',
        "  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>",
        "  <updated>2024-06-01T00:00:00-04:00</updated>",
        f"  <opensearch:totalResults {os_ns}>{total}</opensearch:totalResults>",
        f"  <opensearch:startIndex {os_ns}>{start}</opensearch:startIndex>",
        f"  <opensearch:itemsPerPage {os_ns}>{per_page}</opensearch:itemsPerPage>",
    ]
    return "\n".join(head + [entry_xml(e) for e in entries] + ["</feed>", ""])


def error_feed(message: str) -> str:
    """arXiv's error answer: a feed with one entry whose id points to /api/errors."""
    os_ns = 'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"  <opensearch:totalResults {os_ns}>1</opensearch:totalResults>\n"
        f"  <entry>\n    <id>http://arxiv.org/api/errors#{escape(message.replace(' ', '_'))}</id>\n"
        f"    <title>Error</title>\n    <summary>{escape(message)}</summary>\n  </entry>\n</feed>\n"
    )


def _tokens(query: str) -> list[str]:
    return re.findall(r'\(|\)|submittedDate:\[\d+ TO \d+\]|\w+:"[^"]*"|\w+:[^\s()]+|ANDNOT|AND|OR', query)


def matches(query: str, e: dict[str, Any]) -> bool:
    """Evaluate an arXiv search query against one entry (left to right; parentheses group)."""
    toks = _tokens(query)
    pos = 0

    def term(tok: str) -> bool:
        if tok.startswith("submittedDate:"):
            lo, hi = re.findall(r"\d+", tok)
            day = e["published"].replace("-", "")
            return lo[:8] <= day <= hi[:8]
        field, value = tok.split(":", 1)
        value = value.strip('"').lower()
        text = {"ti": e["title"], "abs": e.get("summary", "")}.get(
            field, f"{e['title']} {e.get('summary', '')}"
        )
        return value in text.lower()

    def expr() -> bool:
        nonlocal pos
        value = atom()
        while pos < len(toks) and toks[pos] in ("AND", "OR", "ANDNOT"):
            op = toks[pos]
            pos += 1
            rhs = atom()
            value = value and rhs if op == "AND" else value or rhs if op == "OR" else value and not rhs
        return value

    def atom() -> bool:
        nonlocal pos
        tok = toks[pos]
        pos += 1
        if tok == "(":
            value = expr()
            pos += 1  # ")"
            return value
        return term(tok)

    return expr() if toks else True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/atom+xml; charset=utf-8" if body else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server API
        self._links(head=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        url = urlsplit(self.path)
        if url.path == "/api/query":
            self._api({k: v[-1] for k, v in parse_qs(url.query).items()})
        else:
            self._links(head=False)

    def _api(self, params: dict[str, str]) -> None:
        srv = self.server.owner
        with srv.lock:
            fault = srv.faults.popleft() if srv.faults else ("ok", {})
            srv.requests.append(ApiRequest(params, time.monotonic(), fault[0]))
        kind, opts = fault
        if kind in ("503", "429"):
            return self._send(int(kind), "", {"Retry-After": opts.get("retry_after", "0")})
        if kind == "malformed":
            return self._send(
                200, '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry><title>cut'
            )
        start, size = int(params.get("start", 0)), int(params.get("max_results", 10))
        if params.get("id_list"):
            ids = params["id_list"].split(",")
            bad = [i for i in ids if not ID_RX.match(i)]
            if bad:
                return self._send(400, error_feed(f"incorrect id format for {bad[0]}"))
            found = [e for i in ids for e in srv.entries if e["id"] == re.sub(r"v\d+$", "", i)]
        else:
            found = [e for e in srv.entries if matches(params.get("search_query", ""), e)]
            found.sort(key=lambda e: e["published"], reverse=params.get("sortOrder") != "ascending")
        page = [] if kind == "empty" else found[start : start + size]
        self._send(200, feed_xml(page, len(found), start, size, params.get("search_query", "")))

    def _links(self, head: bool) -> None:
        srv = self.server.owner
        name = urlsplit(self.path).path.removeprefix("/links/")
        with srv.lock:
            srv.link_hits[name] = srv.link_hits.get(name, 0) + 1
            srv.link_methods.append((self.command, name))
            hits = srv.link_hits[name]
        if name == "ok":
            return self._send(200, "ok")
        if name in ("missing", "gone"):
            return self._send(404 if name == "missing" else 410, "not here")
        if name in ("moved", "moved308", "temp"):
            code = {"moved": 301, "moved308": 308, "temp": 302}[name]
            return self._send(code, "", {"Location": "/links/ok"})
        if name in ("nohead", "forbidden-head"):
            return self._send((405 if name == "nohead" else 403) if head else 200, "ok")
        if name == "slow":
            with srv.lock:
                srv.in_flight += 1
                srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
            time.sleep(srv.slow_s)
            with srv.lock:
                srv.in_flight -= 1
            return self._send(200, "late")
        if name == "flaky":
            return self._send(503, "", {"Retry-After": "0"}) if hits == 1 else self._send(200, "ok")
        if name == "broken":
            return self._send(500, "error")
        self._send(404, "unknown")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeArxivServer


class FakeArxivServer:
    """Context manager running the server on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, entries: list[dict[str, Any]] | None = None, *, slow_s: float = 2.0) -> None:
        self.entries = list(entries or [])
        self.slow_s = slow_s
        self.faults: deque[tuple[str, dict[str, str]]] = deque()
        self.requests: list[ApiRequest] = []
        self.link_hits: dict[str, int] = {}
        self.link_methods: list[tuple[str, str]] = []
        self.in_flight = self.max_in_flight = 0  # concurrent requests to /links/slow
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.api = f"{self.url}/api/query"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def push(self, kind: str, **opts: str) -> None:
        """Queue a fault for the next API request: 503, 429 (retry_after=...), malformed, empty."""
        self.faults.append((kind, opts))

    def link(self, name: str) -> str:
        """The URL of a link-check endpoint."""
        return f"{self.url}/links/{name}"

    def __enter__(self) -> FakeArxivServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
