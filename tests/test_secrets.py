"""Keys never reach a URL, a log event, an exception message, a repr or the database.

A canary key is driven through every client path (success, pending, 429, 5xx, dropped and
malformed answers, refused credentials, unknown operations) and through the whole tree; then
every captured log event, exception text, repr and the database files are searched for it.
"""

from __future__ import annotations

import glob
import io
import traceback

import structlog

import actors

from .conftest import TIME_SCALE, Recorder

CANARY = "CANARY-7f3a9c1e-do-not-log"


def _exception_texts(exc: BaseException) -> list[str]:
    texts = []
    while exc is not None:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        exc = exc.__cause__ or exc.__context__
    return texts


def test_a_canary_key_appears_in_no_log_exception_repr_url_or_database(tmp_path):
    seen: list[str] = []
    rendered = io.StringIO()
    with actors.VeoSimulator(time_scale=TIME_SCALE, api_key=CANARY, seed=3) as sim:
        client = actors.GeminiVeoClient(api_key=CANARY, base_url=sim.base_url)
        seen += [repr(client), str(client)]
        name = sim.create_operation(duration=1)
        faults = [
            lambda: sim.set_rate_limit(1, retry_after=1),
            lambda: sim.set_errors(1, status=503),
            lambda: sim.set_errors(1, status=400),
            lambda: sim.drop_next(1),
            lambda: sim.malformed_next(1),
        ]
        for arm in faults:
            arm()
            try:
                client.check(name)
            except actors.ApiError as exc:
                seen += _exception_texts(exc)
        for bad in (name.replace("operations/", "operations/missing"),):
            try:
                client.check(bad)
            except actors.ApiError as exc:
                seen += _exception_texts(exc)
        wrong = actors.GeminiVeoClient(api_key=CANARY + "-wrong", base_url=sim.base_url)
        try:
            wrong.check(name)
        except actors.AuthError as exc:
            seen += _exception_texts(exc)
        wrong.close()
        assert CANARY not in (sim.last_request_path or "")

        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(rendered),
        )
        try:
            with structlog.testing.capture_logs() as events:
                database = tmp_path / "canary.db"
                config = actors.PollingConfig(ask_timeout=10.0).scaled(TIME_SCALE)
                manager = actors.PollingManager(f"sqlite:///{database}", client, config)
                seen += [repr(manager.config), repr(manager.runtime)]
                manager.initialize()
                recorder = Recorder()
                manager.add_listener(recorder, alerts=True)
                sim.set_rate_limit(1, retry_after=0)
                sim.set_errors(1, status=500)
                for i in range(3):
                    manager.add_to_polling(f"j{i}", "p", "generation", "acct", sim.create_operation(duration=20))
                assert recorder.wait_for(lambda r: r.terminal_count() == 3)
                seen += [repr(u) for u in recorder.updates] + [repr(manager.stats())]
                manager.shutdown()
        finally:
            structlog.reset_defaults()
    seen += [repr(event) for event in events]
    seen.append(rendered.getvalue())
    for path in glob.glob(f"{tmp_path}/canary.db*"):
        with open(path, "rb") as handle:
            assert CANARY.encode() not in handle.read(), f"the key reached {path}"
    leaks = [text for text in seen if CANARY in text]
    assert not leaks, f"the key leaked: {leaks[0][:300]}"
    assert len(events) > 10, "the tree logged nothing: the search proves nothing"
