"""A small, polite client of the arXiv API (Atom feed, https://info.arxiv.org/help/api/user-manual.html).

* The base URL comes from ``$MLLM_SAFETY_ARXIV_API`` (default ``http://export.arxiv.org/api/query``), so tests
  point the client at a local server.
* Calls are spaced by ``delay_s`` seconds (``$MLLM_SAFETY_ARXIV_DELAY``, default 3, as arXiv asks).
* 408/429/500/502/503/504 and connection errors are retried by the shared helper ``baselines.http``: a
  ``Retry-After`` header (seconds or HTTP date) is honoured, otherwise the wait starts at
  ``max(delay_s, 1)`` seconds and doubles; every wait is at least ``delay_s`` and at most ``max_wait_s``
  (default 300 s), so one call waits at most ``max_retries * max_wait_s`` seconds in all.
* The feed is parsed with ``xml.etree`` (Python's expat does not expand external entities); titles, abstracts
  and names are cleaned of LaTeX markup and line breaks (``tools.catalog.latex``).
"""

from __future__ import annotations

import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests

from baselines import http
from tools.catalog.latex import clean_text

DEFAULT_API = "http://export.arxiv.org/api/query"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
USER_AGENT = "mllm-safety-atlas/0.1 (literature tracker; https://github.com/mllm-safety-atlas)"

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z\-]+(?:\.[A-Z]{2})?/\d{7}"
_ID_IN_TEXT = re.compile(rf"(?:arxiv\.org/(?:abs|pdf|html)/|arxiv:\s*|^)({_NEW_ID}|{_OLD_ID})(v\d+)?", re.I)
#: A whole reference: nothing before the id but an arxiv.org URL or ``arXiv:``, nothing after but ``.pdf``, a
#: slash, a query or a fragment (``2401.00001/../../x`` is not a reference to 2401.00001).
_ID_REF = re.compile(
    rf"(?:(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/|arxiv:\s*)?({_NEW_ID}|{_OLD_ID})"
    r"(v\d+)?(?:\.pdf)?/?(?:[?#][^\s/]*)?",
    re.I,
)


class ArxivError(Exception):
    """The arXiv API could not answer (after retries), answered garbage, or has no such paper."""


@dataclass
class ArxivEntry:
    """One paper as the arXiv API describes it (text already cleaned)."""

    arxiv_id: str  # without version, e.g. 2311.05608
    version: int | None
    title: str
    authors: list[str]
    published: str  # date of the first version, YYYY-MM-DD
    updated: str
    abstract: str
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    primary_category: str | None = None
    categories: list[str] = field(default_factory=list)

    @property
    def abs_url(self) -> str:
        """The abstract page, without version (always https)."""
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def withdrawn(self) -> bool:
        """Whether the authors withdrew the paper (arXiv says so in the comment or the abstract)."""
        text = f"{self.comment or ''} {self.abstract[:200]}".lower()
        return bool(re.search(r"\b(has been |was |paper )?withdrawn\b", text))


@dataclass
class Feed:
    """One page of results: the entries plus the OpenSearch counters."""

    total: int
    start: int
    per_page: int
    entries: list[ArxivEntry]


def parse_arxiv_id(text: str) -> str:
    """The bare arXiv id (no version) in an id, ``arXiv:`` reference or arxiv.org URL; ValueError if none."""
    text = text.strip()
    m = _ID_REF.fullmatch(text)
    if not m:
        raise ValueError(
            f"{text!r} is not an arXiv id or URL; write e.g. 2311.05608, arXiv:2311.05608v2 or "
            "https://arxiv.org/abs/2311.05608"
        )
    return m.group(1)


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return clean_text(el.text) or None


def _entry(el: ET.Element) -> ArxivEntry | None:
    """One ``<entry>``; None for arXiv's error entries (whose id points to /api/errors)."""
    raw_id = (el.findtext(f"{ATOM}id") or "").strip()
    if "/api/errors" in raw_id:
        raise ArxivError(f"arXiv API error: {_text(el.find(f'{ATOM}summary')) or raw_id}")
    m = re.search(rf"abs/({_NEW_ID}|{_OLD_ID})(?:v(\d+))?$", raw_id)
    if not m:
        return None
    published = (el.findtext(f"{ATOM}published") or "").strip()[:10]
    prim = el.find(f"{ARXIV}primary_category")
    return ArxivEntry(
        arxiv_id=m.group(1),
        version=int(m.group(2)) if m.group(2) else None,
        title=_text(el.find(f"{ATOM}title")) or "",
        authors=[n for a in el.findall(f"{ATOM}author") if (n := _text(a.find(f"{ATOM}name")))],
        published=published,
        updated=(el.findtext(f"{ATOM}updated") or "").strip()[:10],
        abstract=_text(el.find(f"{ATOM}summary")) or "",
        comment=_text(el.find(f"{ARXIV}comment")),
        journal_ref=_text(el.find(f"{ARXIV}journal_ref")),
        doi=_text(el.find(f"{ARXIV}doi")),
        primary_category=prim.get("term") if prim is not None else None,
        categories=[c.get("term", "") for c in el.findall(f"{ATOM}category") if c.get("term")],
    )


def parse_feed(xml_text: str | bytes) -> Feed:
    """Parse an Atom feed of the arXiv API; ArxivError on malformed XML or an error entry."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise ArxivError(f"arXiv answered malformed XML ({e})") from None
    if root.tag != f"{ATOM}feed":
        raise ArxivError(f"arXiv answered XML that is not an Atom feed (root element {root.tag!r})")

    def number(name: str, default: int) -> int:
        value = root.findtext(f"{OPENSEARCH}{name}")
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    entries = [e for el in root.findall(f"{ATOM}entry") if (e := _entry(el)) is not None]
    return Feed(
        number("totalResults", len(entries)), number("startIndex", 0), number("itemsPerPage", 0), entries
    )


def _error_message(resp: requests.Response) -> str:
    """arXiv's own message from an error feed, else the HTTP status."""
    try:
        parse_feed(resp.content)
    except ArxivError as e:
        if str(e).startswith("arXiv API error"):
            return str(e)
    return f"arXiv API answered HTTP {resp.status_code} for {resp.url}"


class ArxivClient:
    """Queries the arXiv API politely; see the module docstring. ``sleep`` is injectable for tests."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        delay_s: float | None = None,
        max_retries: int = 4,
        timeout_s: float = 30.0,
        max_wait_s: float = 300.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock  # monotonic seconds; injectable so that tests of the spacing need no real time
        self.base_url = base_url or os.environ.get("MLLM_SAFETY_ARXIV_API") or DEFAULT_API
        env_delay = os.environ.get("MLLM_SAFETY_ARXIV_DELAY")
        self.delay_s = float(delay_s if delay_s is not None else env_delay if env_delay else 3.0)
        self.max_retries, self.timeout_s, self.max_wait_s = max_retries, timeout_s, max_wait_s
        self.session = session or http.new_session(USER_AGENT)
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.sleep = sleep
        self.calls = 0
        self._last_call: float | None = None

    def _pace(self) -> None:
        if self._last_call is not None and self.delay_s > 0:
            wait = self.delay_s - (self.clock() - self._last_call)
            if wait > 0:
                self.sleep(wait)
        self._last_call = self.clock()

    @property
    def retry_policy(self) -> http.RetryPolicy:
        """Waits between tries: Retry-After or a doubling backoff, never under ``delay_s`` nor over ``max_wait_s``."""
        return http.RetryPolicy(
            retries=self.max_retries,
            backoff_s=max(self.delay_s, 1.0),
            backoff_max_s=self.max_wait_s,
            retry_after_max_s=self.max_wait_s,
            min_wait_s=self.delay_s,
        )

    def _attempt(self, params: dict[str, str | int]) -> bytes:
        """One paced GET; the body of a good answer, http.Retryable for a transient failure."""
        self._pace()
        self.calls += 1
        try:
            resp = self.session.get(self.base_url, params=params, timeout=self.timeout_s)
        except requests.RequestException as e:
            raise http.Retryable(f"cannot reach {self.base_url} ({type(e).__name__})") from None
        if resp.status_code == 200:
            return resp.content
        if resp.status_code not in http.RETRY_STATUSES:
            raise ArxivError(_error_message(resp))
        after = http.parse_retry_after(resp.headers.get("Retry-After"))
        raise http.Retryable(f"arXiv API answered HTTP {resp.status_code}", after)

    def _get(self, params: dict[str, str | int]) -> bytes:
        """GET the API with retries; the body of the first good answer."""

        def spaced(_n: int, _failure: http.Retryable, _wait: float) -> None:
            self._last_call = None  # the retry wait (at least delay_s) already spaces the calls

        try:
            body, _ = http.call_with_retries(
                lambda: self._attempt(params), self.retry_policy, sleep=self.sleep, on_retry=spaced
            )
        except http.RetriesExhausted as e:
            raise ArxivError(f"{e.last}; gave up after {e.attempts} attempts (try again later)") from None
        return body

    def query(
        self,
        search_query: str | None = None,
        *,
        id_list: list[str] | None = None,
        start: int = 0,
        max_results: int = 10,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> Feed:
        """One page of the API (parameters as documented by arXiv)."""
        params: dict[str, str | int] = {"start": start, "max_results": max_results}
        if search_query:
            params["search_query"] = search_query
        if id_list:
            params["id_list"] = ",".join(id_list)
        if sort_by:
            params["sortBy"] = sort_by
        if sort_order:
            params["sortOrder"] = sort_order
        return parse_feed(self._get(params))

    def get(self, arxiv_id: str) -> ArxivEntry:
        """The paper with this id (any version); ArxivError when arXiv does not know it."""
        wanted = parse_arxiv_id(arxiv_id)
        feed = self.query(id_list=[wanted], max_results=1)
        for entry in feed.entries:
            if entry.arxiv_id == wanted:
                return entry
        raise ArxivError(
            f"arXiv has no paper with id {wanted} (check the id at https://arxiv.org/abs/{wanted})"
        )

    def search(
        self,
        search_query: str,
        *,
        since: str | None = None,
        page_size: int = 100,
        max_results: int = 1000,
        empty_page_retries: int = 2,
    ) -> Iterator[ArxivEntry]:
        """Entries matching ``search_query``, newest submission first, page by page.

        Stops after ``max_results`` entries, at the end of the results, or at the first entry first
        published before ``since`` (YYYY-MM-DD). An empty page before the announced end (a known arXiv
        hiccup) is asked again ``empty_page_retries`` times before giving up.
        """
        start, seen, empty = 0, 0, 0
        while seen < max_results:
            feed = self.query(
                search_query,
                start=start,
                max_results=min(page_size, max_results - seen),
                sort_by="submittedDate",
                sort_order="descending",
            )
            if not feed.entries:
                if start < feed.total and empty < empty_page_retries:
                    empty += 1
                    continue
                return
            empty = 0
            for entry in feed.entries:
                if since and entry.published and entry.published < since:
                    return
                yield entry
                seen += 1
                if seen >= max_results:
                    return
            start += len(feed.entries)
            if start >= feed.total:
                return
