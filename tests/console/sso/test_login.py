"""Single sign-on with Django's test client against the real provider
(tests/console/sso/conftest.py): roles mapped from the groups claim at each
login, the account tied to the provider's subject, state, nonce and PKCE,
no open redirect, the audit, and the password login beside it (LOCAL_LOGIN,
break-glass superusers, django-axes)."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client

from console.models import AuditEntry
from console.sso.models import SsoIdentity
from console.sso.roles import roles_held

from tests.conftest import ROOT

from .conftest import PROVIDER_NAME, provider_login, subject

pytestmark = pytest.mark.django_db

VIEWERS, OPERATORS, ADMINS = "console-viewers", "console-operators", "console-admins"


def signed_in_user(client: Client):
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id) if user_id else None


def test_roles_follow_the_provider_groups_at_each_login(sso):
    sub = subject("dana")
    sso.set_user(sub, email=f"{sub}@example.com", preferred_username=sub, given_name="Dana", groups=[VIEWERS])
    answer = provider_login(Client(), sub)
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    user = SsoIdentity.objects.get(subject=sub).user
    assert (user.username, user.email, user.first_name) == (sub, f"{sub}@example.com", "Dana")
    assert roles_held(user) == ["viewer"] and user.is_staff and not user.is_superuser
    assert not user.has_usable_password()  # signs in at the provider only
    assert user.has_perm("quarantine.view_quarantinerecord") and not user.has_perm("console.view_operations")

    # Moved to the operators at the provider: the next login follows.
    sso.set_user(sub, email=f"{sub}@example.com", preferred_username=sub, groups=[OPERATORS, "unrelated"])
    client = Client()
    provider_login(client, sub)
    user = get_user_model().objects.get(pk=user.pk)
    assert signed_in_user(client) == user
    assert client.session.get_expiry_age() == 8 * 3600  # OIDC_SESSION_HOURS: roles are read again by then
    assert roles_held(user) == ["operator"] and user.has_perm("console.view_operations")
    entry = AuditEntry.objects.filter(action="sso_login", actor=user).latest("pk")
    assert entry.outcome == "succeeded"
    assert entry.detail["added"] == ["operator"] and entry.detail["removed"] == ["viewer"]
    assert entry.detail["groups"] == [OPERATORS, "unrelated"]

    # An admin at the provider is a superuser here, and only while the group says so.
    sso.set_user(sub, email=f"{sub}@example.com", groups=[ADMINS])
    provider_login(Client(), sub)
    user.refresh_from_db()
    assert user.is_superuser and roles_held(user) == ["admin"]

    # Out of every mapped group: the roles go, and the login is refused and audited.
    sso.set_user(sub, email=f"{sub}@example.com", groups=["unrelated"])
    client = Client()
    answer = provider_login(client, sub)
    assert answer.status_code == 302 and answer["Location"] == "/admin/login/"
    assert signed_in_user(client) is None
    user.refresh_from_db()
    assert roles_held(user) == [] and not user.is_staff and not user.is_superuser
    refused = AuditEntry.objects.filter(action="sso_login", outcome="refused").latest("pk")
    assert refused.actor_name == f"sso:{sub}" and refused.reason == "no console role"
    assert refused.detail["removed"] == ["admin"]
    page = client.get("/admin/login/")
    assert "has no role in the console" in page.content.decode()


def test_a_provider_user_without_a_role_gets_no_account(sso):
    sub = subject("nobody")
    sso.set_user(sub, email=f"{sub}@example.com", groups=["sales"])
    client = Client()
    provider_login(client, sub)
    assert signed_in_user(client) is None
    assert not SsoIdentity.objects.filter(subject=sub).exists()
    assert not get_user_model().objects.filter(email=f"{sub}@example.com").exists()


def test_a_provider_user_never_takes_over_a_local_account_of_the_same_name(sso):
    local = get_user_model().objects.create_superuser("root-admin", "root@example.com", "break-glass-pass-1")
    sub = subject("impostor")
    sso.set_user(sub, preferred_username="root-admin", email="root@example.com", groups=[VIEWERS])
    client = Client()
    provider_login(client, sub)
    user = signed_in_user(client)
    assert user != local and user.username == "root-admin-2" and not user.is_superuser
    local.refresh_from_db()
    assert local.is_superuser and local.has_usable_password() and not hasattr(local, "sso_identity")


@pytest.mark.parametrize(("next_url", "lands_on"), [
    ("/admin/quarantine/", "/admin/quarantine/"),
    ("https://evil.example/phish", "/admin/"),
    ("//evil.example/phish", "/admin/"),
    ("/\\evil.example", "/admin/"),
    ("javascript:alert(1)", "/admin/"),
])
def test_after_login_the_browser_goes_only_to_a_page_of_the_console(sso, next_url, lands_on):
    sub = subject("nat")
    sso.set_user(sub, email=f"{sub}@example.com", groups=[VIEWERS])
    answer = provider_login(Client(), sub, next_url=next_url)
    assert answer.status_code == 302 and answer["Location"] == lands_on


def test_each_login_carries_a_state_a_nonce_and_a_pkce_challenge(sso):
    client = Client()
    first = parse_qs(urlsplit(client.get("/oidc/authenticate/")["Location"]).query)
    second = parse_qs(urlsplit(client.get("/oidc/authenticate/")["Location"]).query)
    for query in (first, second):
        assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
        assert query["redirect_uri"] == ["http://testserver/oidc/callback/"]
    assert first["state"] != second["state"] and first["nonce"] != second["nonce"]


def test_a_callback_with_a_state_this_session_did_not_send_is_refused(sso):
    sub = subject("eve")
    sso.set_user(sub, email=f"{sub}@example.com", groups=[OPERATORS])
    client = Client()
    start = client.get("/oidc/authenticate/")
    authorize = requests.post(start["Location"], data={"sub": sub}, allow_redirects=False, timeout=10)
    callback = urlsplit(authorize.headers["Location"])
    code = parse_qs(callback.query)["code"][0]

    # A forged state: refused before the code is used.
    assert client.get("/oidc/callback/", {"code": code, "state": "forged-state"}).status_code == 400
    assert signed_in_user(client) is None
    # The provider's genuine answer, opened in another browser (a stolen or planted
    # callback link): that session sent no state, so nobody is signed in there.
    other = Client()
    answer = other.get(f"{callback.path}?{callback.query}")
    assert answer.status_code == 302 and answer["Location"] == "/admin/login/"
    assert signed_in_user(other) is None
    # In its own session it works once; replayed, the state is spent.
    assert client.get(f"{callback.path}?{callback.query}")["Location"] == "/admin/"
    assert signed_in_user(client) is not None
    assert client.get(f"{callback.path}?{callback.query}").status_code == 400


def test_the_login_page_offers_the_provider_only_when_configured(client, settings, sso):
    page = client.get("/admin/login/?next=/admin/ops/").content.decode()
    assert f"Sign in with {PROVIDER_NAME}" in page
    assert 'href="/oidc/authenticate/?next=/admin/ops/"' in page or "next=%2Fadmin%2Fops%2F" in page
    assert 'id="login-form"' in page  # the password form is still there (LOCAL_LOGIN on)
    assert f"Sign in with {PROVIDER_NAME}" in client.get("/api/auth/login/").content.decode()

    settings.OIDC_ENABLED = False
    assert "Sign in with" not in client.get("/admin/login/").content.decode()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_without_local_login_only_superusers_use_a_password_and_are_audited(client, settings, sso):
    settings.LOCAL_LOGIN = False
    users = get_user_model().objects
    users.create_user("staff-local", password="staff-pass-123", is_staff=True)
    users.create_superuser("glass", "glass@example.com", "glass-pass-123")
    page = client.get("/admin/login/").content.decode()
    assert "Break-glass sign-in (superusers only)" in page
    refused = client.post("/admin/login/", {"username": "staff-local", "password": "staff-pass-123"})
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    ok = client.post("/admin/login/", {"username": "glass", "password": "glass-pass-123"})
    assert ok.status_code == 302 and client.session["_auth_user_id"]
    entry = AuditEntry.objects.get(action="break_glass_login")
    assert entry.actor_name == "glass" and entry.outcome == "succeeded"
    # A local session of someone who is not a superuser ends when local login is turned off.
    settings.LOCAL_LOGIN = True
    staff = Client()
    assert staff.post("/admin/login/", {"username": "staff-local", "password": "staff-pass-123"}).status_code == 302
    settings.LOCAL_LOGIN = False
    assert staff.get("/admin/")["Location"].startswith("/admin/login/")


def test_the_lockout_still_guards_the_break_glass_password(client, settings, sso):
    settings.LOCAL_LOGIN = False
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_superuser("glass2", "glass2@example.com", "glass-pass-456")
    for _ in range(2):
        assert client.post("/admin/login/", {"username": "glass2", "password": "wrong"}).status_code == 200
    assert client.post("/admin/login/", {"username": "glass2", "password": "wrong"}).status_code == 429
    assert client.post("/admin/login/", {"username": "glass2", "password": "glass-pass-456"}).status_code == 429
    assert "_auth_user_id" not in client.session


def test_refused_provider_logins_never_lock_an_address_out_of_single_sign_on(settings, sso):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(3):
        stranger = subject("stranger")
        sso.set_user(stranger, email=f"{stranger}@example.com", groups=["sales"])
        assert signed_in_user(_signed_in(stranger)) is None
    member = subject("member")
    sso.set_user(member, email=f"{member}@example.com", groups=[VIEWERS])
    assert signed_in_user(_signed_in(member)) is not None


def _signed_in(sub: str) -> Client:
    client = Client()
    provider_login(client, sub)
    return client


def test_an_id_token_from_another_issuer_is_refused(settings, sso):
    # Endpoints named one by one (a provider without discovery), and an issuer the tokens do not carry.
    discovery = requests.get(f"{sso.url}/.well-known/openid-configuration", timeout=10).json()
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = discovery["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = discovery["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = discovery["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = discovery["jwks_uri"]
    settings.OIDC_ISSUER = "https://sso.example.com/realms/acme"
    sub = subject("mallory")
    sso.set_user(sub, email=f"{sub}@example.com", groups=[ADMINS])
    client = Client()
    assert provider_login(client, sub).status_code == 400
    assert signed_in_user(client) is None and not SsoIdentity.objects.filter(subject=sub).exists()
    # The same endpoints with the right issuer: signed in.
    settings.OIDC_ISSUER = discovery["issuer"]
    assert provider_login(client, sub)["Location"] == "/admin/"


def test_the_role_map_reads_a_list_or_one_name_and_names_only_known_roles():
    from django.core.exceptions import ImproperlyConfigured

    from console.sso.roles import claim_groups, roles_from_groups

    role_map = {"ops": "operator", "readers": "viewer", "root": "admin"}
    assert claim_groups({"groups": ["readers", 7, "ops"]}, "groups") == ["readers", "ops"]
    assert claim_groups({"roles": "root"}, "roles") == ["root"]
    assert claim_groups({"groups": {"ops": True}}, "groups") == [] and claim_groups({}, "groups") == []
    assert roles_from_groups(["root", "ops", "readers", "other"], role_map) == ["viewer", "operator", "admin"]
    with pytest.raises(ImproperlyConfigured, match="unknown roles"):
        roles_from_groups(["ops"], {"ops": "superhero"})


def test_a_login_denied_at_the_provider_signs_nobody_in(sso):
    sub = subject("denied")
    sso.set_user(sub, email=f"{sub}@example.com", groups=[OPERATORS])
    client = Client()
    start = client.get("/oidc/authenticate/")
    deny = requests.post(start["Location"], data={"action": "deny"}, allow_redirects=False, timeout=10)
    callback = urlsplit(deny.headers["Location"])
    assert parse_qs(callback.query)["error"] == ["access_denied"]
    answer = client.get(f"{callback.path}?{callback.query}")
    assert answer.status_code == 302 and answer["Location"] == "/admin/login/"
    assert signed_in_user(client) is None
    assert "did not complete" in client.get("/admin/login/").content.decode()


def _settings_in_a_process(**env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"), "CONSOLE_ENV_FILE": os.devnull,
            "SECRET_KEY": "x" * 50, "DATABASE_URL": "postgres://u:p@127.0.0.1:9/db", "REDIS_URL": "redis://127.0.0.1:9",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "ALLOWED_HOSTS": "console.example.com"}
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.OIDC_ENABLED, s.LOCAL_LOGIN)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(("profile", "env", "printed"), [
    ("console.settings", {}, "False True"),
    ("console.settings.production", {}, "False True"),
    ("console.settings.production", {"OIDC_ISSUER": "https://sso.example.com/realms/acme", "OIDC_CLIENT_ID": "c",
                                     "OIDC_CLIENT_SECRET": "s"}, "True False"),
    ("console.settings.production", {"OIDC_ISSUER": "https://sso.example.com/realms/acme", "OIDC_CLIENT_ID": "c",
                                     "OIDC_CLIENT_SECRET": "s", "LOCAL_LOGIN": "true"}, "True True"),
    ("console.settings", {"OIDC_ISSUER": "https://sso.example.com/realms/acme", "OIDC_CLIENT_ID": "c",
                          "OIDC_CLIENT_SECRET": "s", "LOCAL_LOGIN": ""}, "True True"),
])
def test_single_sign_on_and_local_login_by_profile(profile, env, printed):
    result = _settings_in_a_process(DJANGO_SETTINGS_MODULE=profile, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == printed


def test_an_issuer_without_its_client_stops_the_start():
    result = _settings_in_a_process(DJANGO_SETTINGS_MODULE="console.settings",
                                    OIDC_ISSUER="https://sso.example.com/realms/acme", OIDC_CLIENT_ID="console")
    assert result.returncode != 0 and "OIDC_CLIENT_SECRET is not set" in result.stderr


def test_signing_in_again_in_a_session_updates_the_roles_and_is_audited(sso):
    sub = subject("again")
    sso.set_user(sub, email=f"{sub}@example.com", groups=[VIEWERS])
    client = Client()
    provider_login(client, sub)
    sso.set_user(sub, email=f"{sub}@example.com", groups=[VIEWERS, OPERATORS])
    assert provider_login(client, sub)["Location"] == "/admin/"  # the same browser, still signed in
    user = signed_in_user(client)
    assert roles_held(user) == ["viewer", "operator"]
    entries = AuditEntry.objects.filter(action="sso_login", actor=user).order_by("pk")
    assert [e.detail["added"] for e in entries] == [["viewer"], ["operator"]]
