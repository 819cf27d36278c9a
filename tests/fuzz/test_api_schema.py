"""schemathesis against /api/schema/: every operation, authenticated, generated requests, zero 5xx.

The schema is read from the application itself (in process, WSGI), requests
carry a superuser's token so every operation is exercised past its
permission checks, and the only check is the one that matters here: the
server never answers 5xx. FUZZ_API_EXAMPLES requests per operation (10 in
`make test`, more in `make test-chaos`).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

EXAMPLES = int(os.environ.get("FUZZ_API_EXAMPLES", "10"))


@pytest.fixture
def api_schema(db, kafka, superuser_token):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from console.wsgi import application

    # As Django's test client does: a request must not close the test's own connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", application,
                                         headers={"Authorization": f"Token {superuser_token}"})
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def superuser_token(db) -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_superuser("fuzz-admin", "fuzz@example.com", "x" * 20)
    return Token.objects.create(user=user).key


def test_no_operation_answers_5xx(api_schema, superuser_token, settings):
    """Each operation in turn, through Hypothesis: every failure is collected, then reported together."""
    settings.ALLOWED_HOSTS = ["*"]
    headers = {"Authorization": f"Token {superuser_token}"}
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            exercise()
        except Exception as exc:  # collect, so one run reports every operation that fails
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    print(f"schemathesis: {operations} operations, {EXAMPLES} examples each, {len(failures)} with a 5xx")
    assert operations > 20
    assert not failures, "\n\n".join(failures)
