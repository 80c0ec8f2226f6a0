"""The HTTP edge's settings fail closed: the client apps whose user tokens count (D8) and the trusted proxy hops
(G6)."""

from __future__ import annotations

import pytest

from shared.config import ConfigurationError, load_settings
from tests.unit.test_config import VALID

PAGES = VALID["SSPR_PAGES_CLIENT_ID"]
ADMIN_TOOL = "c0ffee00-5e1f-4ea5-b0a7-0000000000b7"


def test_D8_by_default_only_the_pages_app_may_bring_user_tokens() -> None:
    assert load_settings(VALID).allowed_client_app_ids == {PAGES}


def test_D8_the_allowed_client_apps_are_a_list_of_app_ids_compared_in_lower_case() -> None:
    settings = load_settings({**VALID, "SSPR_ALLOWED_CLIENT_APP_IDS": f" {PAGES.upper()} , {ADMIN_TOOL},"})
    assert settings.allowed_client_app_ids == {PAGES, ADMIN_TOOL}


@pytest.mark.parametrize(("value", "named"), [
    ("*", "not one"),
    (f"{PAGES}, pages", "not one"),
    ("04b07795-8ddb-461a-bbee-02f9e1bf7b46", "Azure CLI"),
    ("DE8BC8B5-D9F9-48B1-A8AD-B748DA725064", "Graph Explorer"),
    ("14d82eec-204b-4c2f-b7e8-296a70dab67e", "Graph PowerShell"),
], ids=["wildcard", "a-name", "azure-cli", "graph-explorer", "graph-powershell"])
def test_D8_anything_but_this_deployments_own_app_ids_is_refused_at_start(value: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**VALID, "SSPR_ALLOWED_CLIENT_APP_IDS": value})
    assert any("SSPR_ALLOWED_CLIENT_APP_IDS" in p and named in p for p in refused.value.problems), refused.value


def test_G6_no_proxy_is_trusted_by_default_and_the_count_is_bounded() -> None:
    assert load_settings(VALID).trusted_proxy_hops == 0
    assert load_settings({**VALID, "SSPR_TRUSTED_PROXY_HOPS": "1"}).trusted_proxy_hops == 1
    for bad in ("-1", "6", "one", "1.5"):
        with pytest.raises(ConfigurationError) as refused:
            load_settings({**VALID, "SSPR_TRUSTED_PROXY_HOPS": bad})
        assert any("SSPR_TRUSTED_PROXY_HOPS" in p for p in refused.value.problems)
