"""The Graph credential is chosen by the settings alone; a Settings object without the secret its credential
needs (one load_settings would have refused) is a ConfigurationError naming the setting, not a failed sign-in."""

from __future__ import annotations

import pytest

from shared.adapters.credentials import LocalAuthorityCredential, graph_credential
from shared.config import ConfigurationError, load_settings
from tests.unit.test_config import VALID


def test_a_loopback_authority_gets_the_local_credential() -> None:
    assert isinstance(graph_credential(load_settings(VALID)), LocalAuthorityCredential)


@pytest.mark.parametrize("authority", ["http://127.0.0.1:7072", "https://login.microsoftonline.com"])
def test_a_client_secret_credential_without_its_secret_names_the_setting(authority: str) -> None:
    broken = load_settings(VALID).model_copy(update={"graph_client_secret": None, "authority_host": authority})
    with pytest.raises(ConfigurationError, match="SSPR_GRAPH_CLIENT_SECRET"):
        graph_credential(broken)
