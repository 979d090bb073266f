"""Every list endpoint pages with one model (cursor + limit + next cursor): nothing is
silently cut off (approvals used to stop at 500)."""

from __future__ import annotations

import pytest

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.errors import UsageError
from jupyter_mlplat.governance import claim_model, list_requests, request_approval
from jupyter_mlplat.settings import MlplatSettings
from jupyter_mlplat.store import Store
from tests.test_governance import ALICE, MALLORY, MODEL, REV1, info

COUNT = 520  # past the old silent cap of 500


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    path = tmp_path_factory.mktemp("paging") / "platform.db"
    store = Store(f"sqlite:///{path}")
    claim_model(store, ALICE, MODEL, "churn")
    claim_model(store, MALLORY, "fraud-model", "fraud")
    for version in range(1, COUNT + 1):
        request_approval(store, ALICE, MODEL, version, "production", "", info(f"r{version}"))
    request_approval(store, MALLORY, "fraud-model", 1, "production", "", info("f1"))
    yield store, f"sqlite:///{path}"
    store.dispose()


def test_domain_pages_cover_everything_once_in_order(many):
    store, _ = many
    seen, cursor, pages = [], 0, 0
    while True:
        page = list_requests(store, ALICE, after_id=cursor, limit=100)
        seen += [r.id for r in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = int(page.next_cursor)
    assert len(seen) == COUNT and seen == sorted(set(seen)) and pages == 6
    assert all(r.model == MODEL for r in list_requests(store, ALICE, limit=1000).items)
    everyone = list_requests(store, REV1, limit=1000)  # reviewers see every team
    assert len(everyone.items) == COUNT + 1 and everyone.next_cursor is None


def test_the_client_iterates_every_page(many, tmp_path):
    _, url = many
    settings = MlplatSettings(home=str(tmp_path), store_url=url, user="alice", teams=["churn"])
    client = PlatformClient(settings, transport="inprocess", identity=ALICE)
    first = client.list_approvals(limit=7)
    assert len(first.items) == 7 and first.next_cursor == str(first.items[-1].id)
    assert len(list(client.iterate("list_approvals", limit=250))) == COUNT
    with pytest.raises(UsageError, match="limit"):
        client.list_approvals(limit=5000)
    with pytest.raises(UsageError, match="cursor"):
        client.list_approvals(cursor="not-a-number")
