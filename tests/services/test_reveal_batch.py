"""Reveals in batches (group commit), on real SQLite and PostgreSQL vaults.

Each reveal in a batch is still all or nothing with its audit record; the limits count the
reveals before it in the same batch; a refused job does not hold up the others; keys are
checked (and refusals audited) inside the batch's transaction; when the transaction fails, no
job gets a code. The queue answers only after the commit and runs whatever waits as one batch;
a server's workers reach one writer through pipes.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from oathdesk.errors import (
    NotFound,
    OathdeskError,
    PermissionDenied,
    PolicyRefused,
    RateLimited,
)
from oathdesk.seed import encode_base32
from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealJob,
    RevealOutcome,
    RevealRequest,
    VerificationMethod,
    reveal_batch,
)
from oathdesk.services.reveal_queue import (
    RemoteRevealQueue,
    RevealQueue,
    serve_workers,
    settle,
)
from oathdesk.services.reveal_throttle import KeyThrottle
from oathdesk.vault.api_keys import ApiKeyRefused, ApiKeyStore
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.db import StorageError
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.schema import audit_log
from oathdesk.vault.vault import Actor, Vault
from tests.vault.conftest import HELPDESK, programmable, secret_for
from tests.vault_fixtures import ADMIN, fail_audit_inserts

AT = 1_790_000_000.0  # 2026-09-21, a fixed moment: the expected codes are known
USERS = ("helga@contoso.com", "olaf@contoso.com", "ines@contoso.com")
SERIALS = {upn: f"8659612000{n}" for n, upn in enumerate(USERS, 1)}
PASSWORD = "a long passphrase, for tests"


@pytest.fixture
def helpdesk_vault(vault: Vault) -> Vault:
    """A token for each of ``USERS`` and generous limits (tests lower them as needed)."""
    vault.add_tokens(
        ADMIN,
        [programmable(SERIALS[upn], upn) for upn in USERS],
        create_missing_users=True,
    )
    for upn in USERS:  # a number on file: the jobs verify by calling back, which needs one
        vault.update_user(ADMIN, upn, phone="+41790000000")
    vault.update_settings(ADMIN, reveal_limit_per_user=100, reveal_limit_per_operator=1000)
    return vault


def job(upn: str = USERS[0], actor: Actor | None = HELPDESK, **fields: object) -> RevealJob:
    request = RevealRequest(upn, IdentityCheck(VerificationMethod.CALLBACK, "INC-1"), Channel.PHONE)
    return RevealJob(request, actor=actor, **fields)  # type: ignore[arg-type]


def expected_code(upn: str) -> str:
    return str(pyotp.TOTP(encode_base32(secret_for(SERIALS[upn]))).at(AT))


def audit_rows(vault: Vault, action: str) -> list[sa.Row[tuple[object, ...]]]:
    with vault.engine.connect() as conn:
        query = sa.select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq)
        return list(conn.execute(query))


def test_a_batch_is_one_transaction_with_one_record_per_reveal(helpdesk_vault: Vault) -> None:
    jobs = [job(upn) for upn in (*USERS, USERS[0])]
    outcomes = reveal_batch(helpdesk_vault, jobs, at=AT)
    assert [o.error for o in outcomes] == [None] * 4
    for each, outcome in zip(jobs, outcomes, strict=True):
        assert outcome.result is not None
        assert outcome.result.token.serial == SERIALS[each.request.upn]
        assert outcome.result.current.code == expected_code(each.request.upn)
    records = audit_rows(helpdesk_vault, "code.revealed")
    assert [r.upn for r in records] == [j.request.upn for j in jobs]
    assert len({r.at for r in records}) == 1  # one append, one commit
    assert all(r.actor == HELPDESK.name for r in records)
    assert helpdesk_vault.verify_audit() == []


def test_limits_count_the_reveals_before_in_the_same_batch(helpdesk_vault: Vault) -> None:
    helpdesk_vault.update_settings(ADMIN, reveal_limit_per_user=2, reveal_limit_per_operator=3)
    outcomes = reveal_batch(
        helpdesk_vault, [job(USERS[0]), job(USERS[0]), job(USERS[0]), job(USERS[1])], at=AT
    )
    assert [o.result is not None for o in outcomes] == [True, True, False, True]
    refused = outcomes[2]
    assert isinstance(refused.error, PolicyRefused)
    assert "2 codes in 24 hours" in refused.error.message
    assert refused.alert is not None
    assert refused.alert["upn"] == USERS[0]
    # The operator's limit (3) is reached by the three reveals of this batch that were given.
    (over,) = reveal_batch(helpdesk_vault, [job(USERS[2])], at=AT + 1)
    assert isinstance(over.error, PolicyRefused)
    assert "you have revealed 3 codes" in over.error.message
    assert len(audit_rows(helpdesk_vault, "code.revealed")) == 3
    assert len(audit_rows(helpdesk_vault, "reveal.limit_reached")) == 2


def test_the_alert_is_sent_when_the_refusal_is_raised(
    helpdesk_vault: Vault, tmp_path: Path
) -> None:
    helpdesk_vault.update_settings(ADMIN, reveal_limit_per_user=1)
    _, refused = reveal_batch(helpdesk_vault, [job(), job()], at=AT)
    alerts = tmp_path / "alerts.jsonl"
    with pytest.raises(PolicyRefused):
        refused.result_or_raise(AlertSink(AlertSettings(jsonl_path=str(alerts))))
    assert '"reveal.limit_reached"' in alerts.read_text()


def test_a_refused_job_does_not_hold_up_the_others(helpdesk_vault: Vault) -> None:
    outcomes = reveal_batch(
        helpdesk_vault,
        [
            job("nobody@contoso.com"),
            job(actor=Actor("ada", "auditor")),
            job(USERS[1]),
        ],
        at=AT,
    )
    assert isinstance(outcomes[0].error, NotFound)
    assert isinstance(outcomes[1].error, PermissionDenied)
    assert outcomes[2].result is not None
    assert outcomes[2].result.current.code == expected_code(USERS[1])
    assert [r.upn for r in audit_rows(helpdesk_vault, "code.revealed")] == [USERS[1]]


@pytest.fixture
def keys(helpdesk_vault: Vault) -> tuple[str, str]:
    """Two API keys of the helpdesk operator hugo: one to use, one revoked."""
    OperatorDirectory(helpdesk_vault).add(ADMIN, HELPDESK.name, "helpdesk", PASSWORD)
    store = ApiKeyStore(helpdesk_vault)
    good = store.create(ADMIN, HELPDESK.name, "ticketing").secret_text
    revoked = store.create(ADMIN, HELPDESK.name, "old")
    store.revoke(ADMIN, revoked.key.id)
    return good, revoked.secret_text


def test_keys_are_checked_and_refusals_audited_in_the_batch(
    helpdesk_vault: Vault, keys: tuple[str, str]
) -> None:
    good, revoked = keys
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    outcomes = reveal_batch(
        helpdesk_vault,
        [
            job(actor=None, api_key=good),
            job(actor=None, api_key=wrong),
            job(actor=None, api_key=revoked),
            job(actor=None, api_key="odk_not-a-key"),
        ],
        at=AT,
    )
    assert outcomes[0].result is not None
    assert outcomes[0].result.current.code == expected_code(USERS[0])
    assert all(isinstance(o.error, ApiKeyRefused) for o in outcomes[1:])
    reasons = [r.details for r in audit_rows(helpdesk_vault, "api_key.refused")]
    assert len(reasons) == 2
    assert '"wrong secret"' in reasons[0]
    assert '"revoked"' in reasons[1]
    (revealed,) = audit_rows(helpdesk_vault, "code.revealed")
    assert revealed.actor == HELPDESK.name
    key_id = good.split("_")[1]
    assert ApiKeyStore(helpdesk_vault).get(key_id).last_used_at is not None


def test_the_throttle_counts_per_key_across_the_batch(
    helpdesk_vault: Vault, keys: tuple[str, str]
) -> None:
    good, _ = keys
    outcomes = reveal_batch(
        helpdesk_vault,
        [job(actor=None, api_key=good) for _ in range(3)],
        at=AT,
        throttle=KeyThrottle(2),
    )
    assert [o.result is not None for o in outcomes] == [True, True, False]
    assert isinstance(outcomes[2].error, RateLimited)
    assert 1 <= outcomes[2].error.retry_after <= 60
    assert len(audit_rows(helpdesk_vault, "code.revealed")) == 2


def test_when_the_transaction_fails_no_job_gets_a_code(
    helpdesk_vault: Vault, location: VaultLocation
) -> None:
    with helpdesk_vault.transaction() as conn:
        fail_audit_inserts(conn)
    jobs = [job(upn) for upn in USERS]
    with pytest.raises(StorageError, match="audit store full"):
        reveal_batch(helpdesk_vault, jobs, at=AT)
    failures = settle(helpdesk_vault, jobs, None)
    assert len(failures) == 3
    assert all(isinstance(f, StorageError) for f in failures)
    assert len({id(f) for f in failures}) == 3  # each caller raises its own


def test_the_queue_answers_after_the_commit_and_batches_what_waits(
    helpdesk_vault: Vault,
) -> None:
    reveals = RevealQueue(helpdesk_vault)
    try:
        # Hold the chain's lock, as another server's transaction would: no batch can commit.
        with helpdesk_vault.transaction() as conn:
            helpdesk_vault.lock_audit(conn)
            futures = [reveals.submit(job(USERS[n % 3])) for n in range(10)]
            time.sleep(0.5)
            assert not any(f.done() for f in futures)
        outcomes = [f.result(timeout=30) for f in futures]
    finally:
        reveals.close()
    assert all(o.result is not None for o in outcomes)
    records = audit_rows(helpdesk_vault, "code.revealed")
    assert len(records) == 10
    # The first batch may have taken one job before the lock; the rest waited as one.
    assert len({r.at for r in records}) <= 2


def test_a_closed_queue_runs_what_it_holds_and_refuses_more(helpdesk_vault: Vault) -> None:
    reveals = RevealQueue(helpdesk_vault)
    futures = [reveals.submit(job(upn)) for upn in USERS]
    reveals.close()
    assert all(f.result(timeout=5).result is not None for f in futures)
    with pytest.raises(StorageError, match="stopping"):
        reveals.submit(job())


def test_outcomes_and_refusals_survive_the_pipe() -> None:
    for error in (
        RateLimited("slow down; try again in 5 s", 5),
        ApiKeyRefused("no"),
        PolicyRefused("limit"),
        StorageError("disk"),
    ):
        copy = _through_pipe(error)
        assert type(copy) is type(error)
        assert copy.message == error.message
    limited = _through_pipe(RateLimited("m", 7))
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 7


def _through_pipe(error: OathdeskError) -> OathdeskError:
    """What a multiprocessing pipe does to what the writer sends (bytes of our own making)."""
    copy: OathdeskError = pickle.loads(pickle.dumps(error))  # noqa: S301
    return copy


@pytest.fixture
def writer(helpdesk_vault: Vault) -> Iterator[tuple[RemoteRevealQueue, RemoteRevealQueue]]:
    """The vault writer of a two-worker server, in a thread here, with each worker's end."""
    pipes = [multiprocessing.Pipe(duplex=True) for _ in range(2)]
    thread = threading.Thread(
        target=serve_workers,
        args=(helpdesk_vault, [ours for ours, _ in pipes], KeyThrottle(100)),
        daemon=True,
    )
    thread.start()
    remotes = (RemoteRevealQueue(pipes[0][1]), RemoteRevealQueue(pipes[1][1]))
    yield remotes
    for remote in remotes:
        remote.close()
    thread.join(10)
    assert not thread.is_alive(), "the writer did not stop when both workers hung up"


def test_workers_reach_one_writer_through_pipes(
    writer: tuple[RemoteRevealQueue, RemoteRevealQueue], helpdesk_vault: Vault
) -> None:
    first, second = writer
    futures: list[tuple[str, Future[RevealOutcome]]] = []
    for n in range(12):
        upn = USERS[n % 3]
        futures.append((upn, (first, second)[n % 2].submit(job(upn))))
    for upn, future in futures:
        outcome = future.result(timeout=30)
        assert outcome.result is not None
        assert outcome.result.token.upn == upn
    with pytest.raises(NotFound):
        first.submit(job("nobody@contoso.com")).result(timeout=30).result_or_raise(
            AlertSink(AlertSettings())
        )
    assert len(audit_rows(helpdesk_vault, "code.revealed")) == 12


def test_a_worker_whose_writer_is_gone_answers_with_one_clear_error() -> None:
    ours, theirs = multiprocessing.Pipe(duplex=True)
    remote = RemoteRevealQueue(theirs)
    pending = remote.submit(job())
    ours.recv()  # the writer took the job, then went away without answering
    ours.close()
    with pytest.raises(StorageError, match="vault writer has stopped") as failed:
        pending.result(timeout=10)
    assert isinstance(failed.value, OathdeskError)
    with pytest.raises(StorageError, match="restart the server"):
        remote.submit(job())
