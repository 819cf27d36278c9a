"""A real OpenID provider for the single sign-on tests: oidc-provider-mock (PyPI), an
authlib/Flask server with its own login page, run as a subprocess on 127.0.0.1 with
a free port, requiring client registration and a nonce. Each test registers its
client (redirect URIs, secret) and sets the claims of its users at the provider
(`PUT /users/<sub>`), then signs in on the provider's page by typing the subject."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests

from console.sso.provider import discovery_forget
from tests.conftest import wait_until

PROVIDER_NAME = "Test IdP"


@dataclass
class Provider:
    url: str
    log_path: Path

    def register(self, *redirect_uris: str) -> tuple[str, str]:
        """A confidential client at the provider: (client id, secret)."""
        answer = requests.post(f"{self.url}/oauth2/clients", timeout=10, json={
            "redirect_uris": list(redirect_uris), "token_endpoint_auth_method": "client_secret_basic"})
        answer.raise_for_status()
        return answer.json()["client_id"], answer.json()["client_secret"]

    def set_user(self, sub: str, **claims: object) -> None:
        requests.put(f"{self.url}/users/{quote(sub, safe='')}", json=claims, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[Provider]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path_factory.mktemp("oidc") / "provider.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port),
         "--require-registration", "--require-nonce"],
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return requests.get(f"{url}/.well-known/openid-configuration", timeout=2).ok
        except requests.RequestException:
            return False

    wait_until(answers, timeout=30, message="the OpenID provider")
    yield Provider(url=url, log_path=log_path)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def sso(settings, provider) -> Iterator[Provider]:
    """Single sign-on on, against `provider`, for Django's test client (http://testserver)."""
    client_id, secret = provider.register("http://testserver/oidc/callback/")
    sso_configure(settings, provider, client_id, secret)
    yield provider
    discovery_forget()


def sso_configure(settings, provider: Provider, client_id: str, secret: str) -> None:
    discovery_forget()
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = provider.url
    settings.OIDC_RP_CLIENT_ID = client_id
    settings.OIDC_RP_CLIENT_SECRET = secret
    settings.OIDC_PROVIDER_NAME = PROVIDER_NAME
    settings.OIDC_RP_SCOPES = "openid email profile"


def subject(name: str) -> str:
    """A subject no other test (or earlier run against the same provider) used."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def provider_login(client, sub: str, *, next_url: str | None = None):
    """Sign in as `sub` through the provider with Django's test client: the console's
    redirect to the provider, the provider's login form (typing the subject, as a
    person would), and the provider's redirect back to the console's callback."""
    start = client.get("/oidc/authenticate/" + (f"?next={quote(next_url, safe='')}" if next_url else ""))
    assert start.status_code == 302, start
    authorize = requests.post(start["Location"], data={"sub": sub}, allow_redirects=False, timeout=10)
    assert authorize.status_code == 302, authorize.text
    callback = urlsplit(authorize.headers["Location"])
    assert callback.netloc == "testserver" and callback.path == "/oidc/callback/"
    return client.get(f"{callback.path}?{callback.query}")
