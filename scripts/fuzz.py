"""`make fuzz`: schemathesis against every dialect's OpenAPI document, over HTTP, on a real server.

For each dialect the document is read from ``GET /openapi/{dialect}.json``; every operation gets
``--examples`` generated requests in each generation mode (positive: what the document allows;
negative: what it forbids), each sent with an API key and judged by the checks below. Prints,
per dialect, the requests sent, the 5xx answers, the answers that break the document (schema,
status code, content type, headers) and the other findings (accepted invalid data, ignored
auth); exits 1 when any is non-zero. Without ``--url`` it starts its own API-only server
(``render_threads=0``: accepted tasks stay PENDING, so rendering does not dominate; no submit caps, so
accepted submits keep reaching the success path).

    python scripts/fuzz.py --examples 100           # the long run (make fuzz)
    python scripts/fuzz.py --url http://host:8000 --key sk-...
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData, Failure, FailureGroup, ServerError
from schemathesis.openapi.checks import IgnoredAuth
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

__all__ = ["DIALECTS", "DOCUMENTS", "Tally", "api_only_server", "fuzz_dialect", "main"]

DIALECTS = ("dashscope", "aggregator", "gateway", "openai")
# What is fuzzed: each dialect's document, and the whole app's (which adds /healthz and the signed /files).
DOCUMENTS = {**{d: f"/openapi/{d}.json" for d in DIALECTS}, "app": "/openapi.json"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance,
          response_headers_conformance, negative_data_rejection, ignored_auth]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
KEY = "sk-fuzz"


@dataclass
class Tally:
    """What one dialect's run found; ``failures`` keeps one example per distinct finding."""

    dialect: str
    requests: int = 0
    server_errors: int = 0
    schema_failures: int = 0
    other_failures: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.server_errors == self.schema_failures == self.other_failures == 0

    def record(self, label: str, failure: Failure, curl: str) -> None:
        if isinstance(failure, ServerError):
            self.server_errors += 1
        elif isinstance(failure, AcceptedNegativeData | IgnoredAuth):
            self.other_failures += 1
        else:
            self.schema_failures += 1
        key = f"{label}: {failure.title}"
        self.failures.setdefault(key, f"{failure.message[:600]}\n    reproduce: {curl[:600]}")

    def report(self) -> str:
        lines = [f"{self.dialect:<11} requests {self.requests:>5}  5xx {self.server_errors}  "
                 f"schema {self.schema_failures}  other {self.other_failures}  statuses "
                 f"{dict(sorted(self.statuses.items()))}"]
        lines += [f"  {k}\n    {v}" for k, v in self.failures.items()]
        return "\n".join(lines)


def fuzz_dialect(base_url: str, dialect: str, key: str, examples: int, *, seed: int | None = None) -> Tally:
    """Generate and send ``examples`` requests per operation and mode; judge every answer."""
    schema = schemathesis.openapi.from_url(base_url + DOCUMENTS[dialect])
    # Every request carries the real key (ignored_auth checks what happens without it): generated
    # Authorization values would only be overwritten, and would taint negative cases as "auth missing".
    schema.config.generation.update(with_security_parameters=False)
    tally = Tally(dialect)
    auth = {"Authorization": f"Bearer {key}"}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for example in _documented_examples(operation):
                _exchange(example, base_url, session, auth, tally, must_accept=True)
            for mode in MODES:
                try:
                    strategy = operation.as_strategy(generation_mode=mode)
                except Exception:  # nothing to negate (no parameters, no body): positive mode covers it
                    continue
                _run(strategy, examples, seed, lambda case: _exchange(case, base_url, session, auth, tally))
    return tally


def _documented_examples(operation: object) -> list[schemathesis.Case]:
    """The request bodies the document gives as examples (the documents' own requests), as cases."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {})  # type: ignore[attr-defined]
    examples = content.get("application/json", {}).get("examples", {})
    # X-DashScope-Async: the DashScope submit requires it; the other dialects ignore it.
    return [operation.Case(body=e["value"], media_type="application/json",  # type: ignore[attr-defined]
                           headers={"X-DashScope-Async": "enable"}) for e in examples.values()]


def _run(strategy: object, examples: int, seed: int | None, test: object) -> None:
    # No shrinking and no example database: every finding is recorded, not raised, and runs are independent.
    settings = hypothesis.settings(max_examples=examples, deadline=None, database=None,
                                   phases=[hypothesis.Phase.generate],
                                   suppress_health_check=list(hypothesis.HealthCheck),
                                   verbosity=hypothesis.Verbosity.quiet)
    run = settings(hypothesis.given(strategy)(test))  # type: ignore[call-overload]
    if seed is not None:
        run = hypothesis.seed(seed)(run)
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # e.g. no negative case without a parameter
        run()


def _exchange(case: schemathesis.Case, base_url: str, session: requests.Session, auth: dict[str, str],
              tally: Tally, *, must_accept: bool = False) -> None:
    label = f"{case.operation.method.upper()} {case.operation.path} [{case.meta.generation.mode.value}]" \
        if case.meta else f"{case.operation.method.upper()} {case.operation.path} [example]"
    response = case.call(base_url=base_url, session=session, headers=auth, timeout=30)
    tally.requests += 1
    tally.by_operation[label] += 1
    tally.statuses[response.status_code] += 1
    if must_accept and not 200 <= response.status_code < 300:
        tally.other_failures += 1
        tally.failures.setdefault(f"{label}: documented example refused",
                                  f"{response.status_code} {response.text[:400]}\n    reproduce: "
                                  f"{case.as_curl_command(headers=auth)[:600]}")
    checks = CHECKS
    if case.meta and case.meta.generation.mode.is_negative and (case.media_type or "").startswith("multipart/"):
        # A form carries text only: an integer or a one-item array where the document says string arrives as
        # a valid string, which schemathesis cannot tell when it mutated several fields at once.
        checks = [c for c in CHECKS if c is not negative_data_rejection]
    try:
        case.validate_response(response, checks=checks, headers=auth)
    except FailureGroup as group:
        for failure in group.exceptions:
            tally.record(label, failure, case.as_curl_command(headers=auth))
    except Failure as failure:
        tally.record(label, failure, case.as_curl_command(headers=auth))


@contextlib.contextmanager
def api_only_server(data_dir: Path, key: str = KEY) -> Iterator[str]:
    """An openr2v app with no render workers and no submit caps under uvicorn; yields its base URL."""
    from openr2v.api.app import create_app
    from openr2v.config import Settings
    from openr2v.embedded import serve_in_thread

    settings = Settings(data_dir=data_dir, api_keys=f"{key}:intl", region="intl", render_threads=0,
                        submit_rate_per_second=0, max_concurrent_tasks=0)
    with serve_in_thread(create_app(settings), log_level="error", name="openr2v-fuzz") as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="generated requests per operation and mode")
    parser.add_argument("--dialect", action="append", choices=DOCUMENTS,
                        help="a dialect's document, or app (the whole app's); repeatable; default: all")
    parser.add_argument("--url", help="fuzz this server instead of starting one")
    parser.add_argument("--key", default=KEY, help="API key for --url")
    parser.add_argument("--seed", type=int, help="hypothesis seed, for a reproducible run")
    args = parser.parse_args(argv)
    tallies: list[Tally] = []
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="openr2v-fuzz-")))
            url = stack.enter_context(api_only_server(data_dir, args.key))
        for dialect in args.dialect or DOCUMENTS:
            tally = fuzz_dialect(url.rstrip("/"), dialect, args.key, args.examples, seed=args.seed)
            print(tally.report(), flush=True)
            tallies.append(tally)
    total = sum(t.requests for t in tallies)
    bad = sum(t.server_errors + t.schema_failures + t.other_failures for t in tallies)
    print(f"total: {total} requests, {bad} failures, {time.monotonic() - started:.0f} s")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
