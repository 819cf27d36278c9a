"""Single sign-on in a real browser (Playwright driving Debian's Chromium, as the
other browser tests): the admin's login page offers the provider, the provider's
own login page takes the subject, and the console shows each role what it may
use: the operator the operations pages and the audit log, the viewer the
tables only (403 on the operations pages and the audit log)."""

from __future__ import annotations

import pytest

from tests.quarantine.test_browser import browser  # noqa: F401 (fixture)

from .conftest import PROVIDER_NAME, sso_configure, subject

pytestmark = pytest.mark.browser


@pytest.fixture
def live_sso(settings, provider, live_server):
    client_id, secret = provider.register(f"{live_server.url}/oidc/callback/")
    sso_configure(settings, provider, client_id, secret)
    return provider


def sign_in(browser, live_server, provider, sub: str):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/admin/")  # not signed in: the admin's login page
    page.click(f"text=Sign in with {PROVIDER_NAME}")
    page.wait_for_url(f"{provider.url}/oauth2/authorize*")  # the provider's own page
    page.fill("input[name=sub]", sub)
    page.click("button:text('Authorize')")
    page.wait_for_url(f"{live_server.url}/admin/")
    return context, page


def test_a_viewer_and_an_operator_sign_in_at_the_provider_and_get_their_roles(browser, live_server,  # noqa: F811
                                                                              live_sso):
    viewer, operator = subject("vera"), subject("otto")
    live_sso.set_user(viewer, email=f"{viewer}@example.com", preferred_username=viewer, groups=["console-viewers"])
    live_sso.set_user(operator, email=f"{operator}@example.com", preferred_username=operator,
                      groups=["console-operators"])

    context, page = sign_in(browser, live_server, live_sso, operator)
    assert operator in page.inner_text("#user-tools").lower()
    page.wait_for_selector("#ops-dashboard")  # the operations dashboard on the admin's index
    assert page.goto("/admin/ops/").status == 200
    assert page.goto("/admin/quarantine/quarantinerecord/").status == 200
    assert page.goto("/admin/console/auditentry/").status == 200  # the audit log: operators only
    assert "sso_login" in page.inner_text("#result_list")  # this very sign-in, audited
    context.close()

    context, page = sign_in(browser, live_server, live_sso, viewer)
    assert viewer in page.inner_text("#user-tools").lower()
    assert page.locator("#ops-dashboard").count() == 0
    assert page.goto("/admin/ops/").status == 403
    assert page.goto("/admin/quarantine/quarantinerecord/").status == 200
    assert page.goto("/admin/console/auditentry/").status == 403
    # The same session opens the browsable API: reads yes, the operators' pages no.
    assert page.goto("/api/quarantine/records/").status == 200
    context.close()
