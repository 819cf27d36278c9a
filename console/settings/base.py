"""Settings shared by every profile of the pipeline operations console.

The profiles are modules of this package, chosen by DJANGO_SETTINGS_MODULE:
`console.settings` (development, the default of manage.py, Celery and the web
process), `console.settings.production` (what docker-compose.yml runs; passes
`manage.py check --deploy`) and `console.settings.test` (pytest).

Everything that differs between machines comes from the environment (or a
`.env` file at the repository root, which `make services` writes for the
private development services). Required variables fail fast with a message
naming what is missing; see `.env.example` for the full list.

Long: every setting of every app, each with the comment that explains it, in
one file an operator reads top to bottom.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from console import logs

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
_env_file = env.str("CONSOLE_ENV_FILE", default=str(BASE_DIR / ".env"))
if Path(_env_file).is_file():
    # Values already in the process environment win over the file.
    environ.Env.read_env(_env_file, overwrite=False)


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"The environment variable {name} is required but not set. "
            f"Run `make services` (which writes .env for the private development "
            f"services) or export {name}; .env.example lists every variable."
        )
    return value


SECRET_KEY = _required("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    # Before console: console/ops/admin.py replaces its TaskResult admin.
    "django_celery_results",
    "axes",
    "console",
    "console.sso",
    "streams",
    "quarantine",
    "ingest",
]

MIDDLEWARE = [
    # First, so it sees the final status of every request Django answers (console/ops/metrics.py).
    "console.ops.metrics.RequestMetricsMiddleware",
    # Each request's trace context, for what it publishes or queues (console/tracing.py).
    "console.tracing.TraceContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A body over INGEST_MAX_UPLOAD_BYTES: 413 before anything reads it (console/uploads.py).
    "console.uploads.UploadLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The login pages' "Sign in with <provider>" button (console/sso/context.py).
                "console.sso.context.sso",
            ],
        },
    },
]

DATABASES = {"default": env.db_url_config(_required("DATABASE_URL"))}
# Consumers, Celery workers and the WSGI server keep connections for a minute;
# the ASGI web process sets DB_CONN_MAX_AGE=0 before loading settings
# (console/asgi.py), as Django advises against persistent connections under ASGI.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
    "DB_CONNECT_TIMEOUT", default=5
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before any password is checked.
# Then the password (refused to all but superusers when LOCAL_LOGIN is off) and
# single sign-on, which answers only the provider's callback (console/sso/backends.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "console.sso.backends.LocalLoginBackend",
    "console.sso.backends.SsoBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".run" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/admin/login/"

# Throttle counters and other shared short-lived state live in Redis, so every
# web process sees the same counts (console/throttles.py fails open when Redis
# is away: a rate limit is not worth refusing the API over).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_URL", default="") or env.str("REDIS_URL", default=""),
        "KEY_PREFIX": "console-cache",
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
}

# ------------------------------------------------------------- Login lockout
# django-axes: after AXES_FAILURE_LIMIT failed logins for one username from one
# address (admin and /api/auth/login/ alike), that pair is refused with 429
# for AXES_COOLOFF_HOURS. `manage.py axes_reset_username NAME` lifts it early.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Passwords only: the single sign-on callback has none to guess (console/sso/backends.py).
AXES_WHITELIST_CALLABLE = "console.sso.backends.axes_ignores_sso_callback"
# Behind a reverse proxy, the number of proxies in front of the web process
# (0: the address is the peer's, X-Forwarded-For is ignored).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# ------------------------------------------------------------- Single sign-on
# OpenID Connect login for the admin and the browsable API (mozilla-django-oidc,
# console/sso/; README "Single sign-on", docs/SECURITY.md). Off until OIDC_ISSUER
# and the client are set. The endpoints and signing keys come from the issuer's
# discovery document (<issuer>/.well-known/openid-configuration), fetched when a
# login starts and kept OIDC_DISCOVERY_CACHE_SECONDS; OIDC_*_ENDPOINT override it
# for a provider without discovery. The provider redirects to <console>/oidc/callback/.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_ENABLED = bool(OIDC_ISSUER or env.str("OIDC_AUTHORIZATION_ENDPOINT", default=""))
if OIDC_ENABLED and not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
    raise ImproperlyConfigured("Single sign-on is configured (OIDC_ISSUER) but OIDC_CLIENT_ID or "
                               "OIDC_CLIENT_SECRET is not set; the provider's client page gives both.")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_USERINFO_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_JWKS_ENDPOINT", default="")
OIDC_DISCOVERY_CACHE_SECONDS = env.int("OIDC_DISCOVERY_CACHE_SECONDS", default=3600)
# The name on the login pages' button: "Sign in with <name>".
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="") or "single sign-on"
# Scopes asked for; add the one that releases the roles claim if the provider
# needs one (e.g. "groups" on some providers; Keycloak's mapper needs none).
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="") or "openid email profile"
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGO", default="RS256")
# The claim (in the ID token or from the userinfo endpoint) that lists the
# user's groups at the provider, and which of those groups give which console
# role: viewer (the `viewers` group), operator (`operators`), admin (superuser).
# Read at each login: roles are added and removed to match; a user with none
# of the mapped groups is refused. Format: provider-group=role,...
OIDC_ROLES_CLAIM = env.str("OIDC_ROLES_CLAIM", default="") or "groups"
# (An empty variable, as docker-compose.yml passes an unset one, means the default.)
OIDC_ROLE_MAP: dict[str, str] = env.dict("OIDC_ROLE_MAP", default={}) or {
    "console-viewers": "viewer", "console-operators": "operator", "console-admins": "admin"}
# The claim a new account's username is taken from (then email, then sub). An
# account is tied to the provider's (issuer, sub), never matched by name or email.
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
# A single sign-on session lasts at most this long, so roles are read again at least this often.
OIDC_SESSION_HOURS = env.float("OIDC_SESSION_HOURS", default=8.0)
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT_SECONDS", default=10.0)
# How the client authenticates at the token endpoint: HTTP Basic (client_secret_basic,
# OpenID Connect's default) or, with false, in the form body (client_secret_post).
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_BASIC_AUTH", default=True)
# State, nonce and PKCE (S256) on every login; only these hosts (and the
# console's own) may be the `next` page after login: no open redirect.
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_REDIRECT_ALLOWED_HOSTS: list[str] = []
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/"
# Local (password) login. Off: only superusers may sign in with a password,
# the break-glass path (`manage.py createsuperuser`), still behind the lockout
# below. The production profile turns it off when single sign-on is on.
LOCAL_LOGIN = env.bool("LOCAL_LOGIN") if env.str("LOCAL_LOGIN", default="") else True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # LOG_FORMAT=json: one JSON object per line, each event's fields as keys (console/logs.py).
    "formatters": logs.formatters(),
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": "json" if env.str("LOG_FORMAT", default="text") == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"arroyo": {"level": "WARNING"}, "django.db.backends": {"level": "WARNING"}},
}

# --------------------------------------------------------------------------- API
REST_FRAMEWORK = {
    # The token first: an anonymous caller gets 401 with WWW-Authenticate: Token.
    # Every API view shares the token cache, so a revoked token stops working
    # everywhere within API_TOKEN_CACHE_SECONDS (streams/api/auth.py).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.tokens.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view needs a specific Django permission, reads included (view_*):
    # console/permissions.py. Views add or replace it per action.
    "DEFAULT_PERMISSION_CLASSES": [
        "console.permissions.ModelPermissions",
    ],
    # Per-scope rates from API_THROTTLE_RATES (console/throttles.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "console.throttles.AnonThrottle",
        "console.throttles.UserThrottle",
    ],
    # Strict JSON everywhere (no NaN, NUL, huge numbers or deep nesting): console/parsers.py.
    "DEFAULT_PARSER_CLASSES": [
        "console.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # At most API_MAX_PAGE_SIZE rows a page; the large tables use cursor pages
    # instead, which never count the table (console/pagination.py).
    "DEFAULT_PAGINATION_CLASS": "console.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=500)
# Requests per period ("120/min", "5000/hour"; empty: no limit), by scope:
# anonymous callers (per address), authenticated users (per user), and the
# telemetry POSTs of service accounts, unlimited by default so machines are
# never slowed by a counter (with a rate set, the fast paths hand those POSTs
# to DRF, which counts them).
API_THROTTLE_RATES = {
    "anon": env.str("THROTTLE_ANON_RATE", default="120/min") or None,
    "user": env.str("THROTTLE_USER_RATE", default="3000/min") or None,
    "telemetry": env.str("THROTTLE_TELEMETRY_RATE", default="") or None,
}
# The schema and Swagger UI describe the API to anyone who may use it.
SPECTACULAR_SETTINGS = {
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "TITLE": "Pipeline operations console API",
    "DESCRIPTION": "Events, files, products, analytics and quarantine of the console.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Four models have a `status` with their own choices: one enum component each.
    "ENUM_NAME_OVERRIDES": {
        "IngestedFileStatusEnum": "ingest.models.IngestedFile.Status",
        "QuarantineStatusEnum": "quarantine.models.QuarantineRecord.Status",
        "ReportStatusEnum": "streams.report.models.CorrelationReport.Status",
        "SensorReadingStatusEnum": "streams.activity.models.SensorReading.Status",
    },
}

# ------------------------------------------------------------------------ Celery
REDIS_URL = _required("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL
# Task results live in PostgreSQL (django-celery-results), where the admin lists
# and filters them (console/ops/admin.py) and /metrics counts them. `extended`
# records the task's name, arguments and worker; `track_started` its start, for
# the runtime (one more write per task that keeps its result).
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
# Tasks with ignore_result (ingest's) still record their failures, so operators
# see every failed task, whatever the task says about its result.
CELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True
# Results older than this are deleted by the `celery.backend_cleanup` task,
# which beat schedules by itself (daily at 04:00) whenever result_expires is set.
CELERY_RESULT_RETENTION_DAYS = env.int("CELERY_RESULT_RETENTION_DAYS", default=14)
CELERY_RESULT_EXPIRES = CELERY_RESULT_RETENTION_DAYS * 86400
# A transient database error while storing a result is tried again (a new
# connection) rather than losing the result.
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 5
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # How often a worker sweeps for tasks of a dead worker whose visibility
    # timeout passed (kombu's defaults: every 10 s, scanning every 10th sweep).
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# The workers & queues page (/admin/ops/celery/) asks the workers with this
# timeout, so it answers quickly when none (or no broker) is there; it shows at
# most CELERY_QUEUE_PEEK queued messages per queue, with a Revoke button each.
CELERY_INSPECT_TIMEOUT_SECONDS = env.float("CELERY_INSPECT_TIMEOUT_SECONDS", default=1.0)
CELERY_QUEUE_PEEK = env.int("CELERY_QUEUE_PEEK", default=20)

# ------------------------------------------------------------------------- Kafka
KAFKA_BOOTSTRAP_SERVERS = _required("KAFKA_BOOTSTRAP_SERVERS")
# Extra librdkafka properties for every client (e.g. security.protocol).
KAFKA_CLIENT_CONFIG: dict[str, str] = env.dict("KAFKA_CLIENT_CONFIG", default={})
KAFKA_REPLICATION_FACTOR = env.int("KAFKA_REPLICATION_FACTOR", default=1)
KAFKA_DEFAULT_PARTITIONS = env.int("KAFKA_DEFAULT_PARTITIONS", default=3)
# How long a REST endpoint waits for the broker's acknowledgement before 503.
KAFKA_PRODUCE_TIMEOUT_SECONDS = env.float("KAFKA_PRODUCE_TIMEOUT_SECONDS", default=5.0)

# The topic registry: logical name -> Kafka topic name and partition count.
# Defaults are the names the original systems used, so their producers keep
# working; each can be renamed with KAFKA_TOPIC_<LOGICAL NAME IN CAPITALS>.
_TOPIC_DEFAULTS = {
    "metrics": "metrics",
    "workorders": "workorders",
    "file_events": "file_events",
    "orders": "orders",
    "processed_orders": "processed-orders",
    "product_metrics": "product-metrics",
    "orders_dlq": "orders-dlq",
    "sensor_data": "sensor_data",
    "user_activity": "user_activity",
    "processed_data": "processed_data",
    "product_registrations": "cadastro-produtos",
    "products_persisted": "produtos-persistidos",
    "dead_letters": "dead-letters",
}
KAFKA_TOPICS: dict[str, dict[str, int | str]] = {
    logical: {
        "name": env.str(f"KAFKA_TOPIC_{logical.upper()}", default=default),
        "partitions": env.int(
            f"KAFKA_PARTITIONS_{logical.upper()}", default=KAFKA_DEFAULT_PARTITIONS
        ),
    }
    for logical, default in _TOPIC_DEFAULTS.items()
}

# Consumer defaults; `run_consumer --batch-size/--batch-time` override them.
CONSUMER_BATCH_SIZE = env.int("CONSUMER_BATCH_SIZE", default=20000)
CONSUMER_BATCH_TIME_MS = env.int("CONSUMER_BATCH_TIME_MS", default=200)
# How often a consumer with a clock step (ConsumerSpec.tick: closing quiet windows) runs it.
CONSUMER_TICK_SECONDS = env.float("CONSUMER_TICK_SECONDS", default=1.0)
# A consumer's cyclic garbage collector runs once this many container objects
# have been allocated (net) since the last run, not Python's 700: a batch holds
# tens of thousands of live messages, and at 700 the collector traversed them
# over and over (a third of each consumer's CPU in bench-orders, docs/kafka.md).
# What start-up allocated is frozen out of it. 0 keeps Python's default.
CONSUMER_GC_THRESHOLD = env.int("CONSUMER_GC_THRESHOLD", default=500_000)
CONSUMER_GROUP_PREFIX = env.str("CONSUMER_GROUP_PREFIX", default="console")
# Group membership (docs/kafka.md, "Several members per group"): cooperative-sticky
# assignment, so a member joining or leaving never stops the others; static membership
# when a process has an instance id (`run_consumer --instance-id`, CONSUMER_INSTANCE_ID;
# `make run` and compose give each replica one), so a crashed process restarted with its
# id takes its partitions back at once. A member that dies and is not restarted keeps
# its partitions unread for the session timeout, then the others take them over.
CONSUMER_SESSION_TIMEOUT_MS = env.int("CONSUMER_SESSION_TIMEOUT_MS", default=10000)
CONSUMER_INSTANCE_ID = env.str("CONSUMER_INSTANCE_ID", default="")
# A batch that cannot be applied (PostgreSQL or Kafka away, a systemic failure)
# is held and tried again with exponential backoff up to this many seconds apart;
# the consumer never exits over it (streams/kafka/faults.py).
CONSUMER_BACKOFF_MAX_SECONDS = env.float("CONSUMER_BACKOFF_MAX_SECONDS", default=30.0)
# More messages than this refused by the database in a row is a systemic fault
# (code or schema), not bad data: the consumer pauses instead of dead-lettering.
CONSUMER_DLQ_MAX_CONSECUTIVE = env.int("CONSUMER_DLQ_MAX_CONSECUTIVE", default=50)
# Each consumer process writes a heartbeat row this often; a row older than the
# stale threshold means the process is gone (/healthz, operations dashboard).
CONSUMER_HEARTBEAT_SECONDS = env.float("CONSUMER_HEARTBEAT_SECONDS", default=5.0)
CONSUMER_HEARTBEAT_STALE_SECONDS = env.float("CONSUMER_HEARTBEAT_STALE_SECONDS", default=30.0)

# Health checks answer within this many seconds per dependency.
HEALTHCHECK_TIMEOUT_SECONDS = env.float("HEALTHCHECK_TIMEOUT_SECONDS", default=2.0)

# ------------------------------------------- Orders and sensor/activity streams
# Order analytics (seed 002): tumbling window length for `order_windows`.
ORDERS_WINDOW_SECONDS = env.int("ORDERS_WINDOW_SECONDS", default=60)
# Event time (docs/streams.md): a window is final once the watermark (the lowest
# of the active partitions' newest order time, minus this grace) passes its end;
# an order for a final window is stored and counted as late, not added.
ORDERS_WINDOW_GRACE_SECONDS = env.int("ORDERS_WINDOW_GRACE_SECONDS", default=10)
# A partition with no message for this long (wall clock) no longer holds the
# watermark back; once no partition is active, a window is final by wall clock
# when now >= its end + grace + this (so a quiet stream still closes its windows).
ORDERS_IDLE_CLOSE_SECONDS = env.int("ORDERS_IDLE_CLOSE_SECONDS", default=30)
# Sensor status thresholds (seed 003): above WARNING -> "Warning", below LOW -> "Low".
SENSOR_TEMP_WARNING_ABOVE = env.float("SENSOR_TEMP_WARNING_ABOVE", default=24.0)
SENSOR_TEMP_LOW_BELOW = env.float("SENSOR_TEMP_LOW_BELOW", default=19.0)

# ---------------------------------------------------------------- File ingestion
# Seed 001: CSV files land in the inbox, are announced on `file_events`, and a
# Celery task validates and loads them. Every path and limit is a setting.
INGEST_INBOX_DIR = Path(env.str("INGEST_INBOX_DIR", default=str(BASE_DIR / ".run" / "inbox")))
INGEST_QUARANTINE_DIR = Path(env.str("INGEST_QUARANTINE_DIR", default=str(BASE_DIR / ".run" / "quarantine")))
INGEST_FILE_SUFFIXES = env.list("INGEST_FILE_SUFFIXES", default=[".csv"])
INGEST_MAX_FILE_BYTES = env.int("INGEST_MAX_FILE_BYTES", default=1024**3)
# The largest request body (uploads included) the web process reads: past it
# the request is answered 413 while the body streams in (console/uploads.py).
INGEST_MAX_UPLOAD_BYTES = env.int("INGEST_MAX_UPLOAD_BYTES", default=INGEST_MAX_FILE_BYTES + 1024**2)
FILE_UPLOAD_HANDLERS = [
    "console.uploads.MaxSizeUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
INGEST_MAX_LINE_BYTES = env.int("INGEST_MAX_LINE_BYTES", default=64 * 1024)
# A file is complete once its size and mtime have not changed for this long.
INGEST_SETTLE_SECONDS = env.float("INGEST_SETTLE_SECONDS", default=2.0)
INGEST_SCAN_INTERVAL_SECONDS = env.int("INGEST_SCAN_INTERVAL_SECONDS", default=30)
# Policy: by default one invalid row quarantines the whole file. With partial
# acceptance the valid rows load when the rejected share is at most the threshold.
INGEST_PARTIAL_ACCEPTANCE = env.bool("INGEST_PARTIAL_ACCEPTANCE", default=False)
INGEST_MAX_REJECTED_SHARE = env.float("INGEST_MAX_REJECTED_SHARE", default=0.01)
INGEST_MAX_ERRORS_KEPT = env.int("INGEST_MAX_ERRORS_KEPT", default=1000)
# Newest-first pages of raw rows read id windows of this many ids (growing while short): ingest/selectors.py.
INGEST_READINGS_WINDOW = env.int("INGEST_READINGS_WINDOW", default=100_000)
INGEST_PROGRESS_EVERY_ROWS = env.int("INGEST_PROGRESS_EVERY_ROWS", default=100_000)
# Retries after transient errors (PostgreSQL or Redis away), 2 s .. 60 s apart.
INGEST_TASK_MAX_RETRIES = env.int("INGEST_TASK_MAX_RETRIES", default=10)
# A run longer than this is stopped and the file quarantined (Celery soft limit; hard limit +60 s).
INGEST_TASK_TIME_LIMIT_SECONDS = env.int("INGEST_TASK_TIME_LIMIT_SECONDS", default=1800)
# A file whose processing started this many times without finishing (the worker
# crashed or was killed on it) is quarantined instead of being tried again.
INGEST_MAX_ATTEMPTS = env.int("INGEST_MAX_ATTEMPTS", default=3)
# A file in progress with no progress for this long (its worker died, and the
# broker will not hand the task back before its visibility timeout) is queued
# again by the periodic scan; the task is idempotent, so this is always safe.
INGEST_STALE_SECONDS = env.int("INGEST_STALE_SECONDS", default=900)
# The sensor contract, declared once: column -> type and rules. Types: "epoch"
# (seconds, float or scientific notation), "number", "boolean", "text".
# `aggregate` marks the metrics that get per-device statistics.
INGEST_CONTRACT = {
    "columns": {
        "ts": {"type": "epoch", "min": 946684800, "max": 4102444800},  # 2000-01-01 .. 2100-01-01
        "device": {"type": "text", "required": True, "max_length": 64},
        "co": {"type": "number", "min": 0, "max": 1, "aggregate": True},
        "humidity": {"type": "number", "min": 0, "max": 100, "aggregate": True},
        "light": {"type": "boolean"},
        "lpg": {"type": "number", "min": 0, "max": 1, "aggregate": True},
        "motion": {"type": "boolean"},
        "smoke": {"type": "number", "min": 0, "max": 1, "aggregate": True},
        "temp": {"type": "number", "min": -50, "max": 50, "aggregate": True},
    },
    "true": ["True", "true", "TRUE", "1"],
    "false": ["False", "false", "FALSE", "0"],
}

# ------------------------------------------- Event API, products and the report
# (streams/api, streams/products.py, streams/report.py; see docs/api.md)
# Largest JSON array the telemetry batch endpoints accept in one request.
TELEMETRY_BATCH_MAX_EVENTS = env.int("TELEMETRY_BATCH_MAX_EVENTS", default=10000)
# Seconds a validated API token stays cached in each web process (0 disables);
# a deleted token stops working after at most this long.
API_TOKEN_CACHE_SECONDS = env.float("API_TOKEN_CACHE_SECONDS", default=60.0)
# linger.ms of the web processes' producer: a little longer than the default
# batches the acks of concurrent requests (less CPU per event, a few ms more latency).
API_KAFKA_LINGER_MS = env.int("API_KAFKA_LINGER_MS", default=5)
# The correlation report (method "asof-interval-pearson"):
# how far back (seconds) a parameter reading may lie from a work-order reading
# and still be joined to it; "backward" uses only readings at or before the
# work-order time, "nearest" the closest one on either side.
REPORT_ASOF_TOLERANCE_SECONDS = env.int("REPORT_ASOF_TOLERANCE_SECONDS", default=7200)
REPORT_ASOF_DIRECTION = env.str("REPORT_ASOF_DIRECTION", default="backward")
# Pairs below this count give no correlation (rank last, empty r and p).
REPORT_MIN_SAMPLES = env.int("REPORT_MIN_SAMPLES", default=10)
# "interval" ranks by r against output per hour between readings; "raw" by r
# against the cumulative production series.
REPORT_RANK_BY = env.str("REPORT_RANK_BY", default="interval")
# The django-celery-beat schedule of the report (crontab fields, UTC); "" = none.
REPORT_SCHEDULE_CRONTAB = env.str("REPORT_SCHEDULE_CRONTAB", default="0 * * * *")
# Where `manage.py load_factory_data` reads metrics.json and workorder.json.
# (`manage.py make_samples .run/samples` writes a set with a planted correlation there.)
FACTORY_DATA_DIR = env.str("FACTORY_DATA_DIR", default=str(BASE_DIR / ".run" / "samples" / "factory"))

# -------------------------------------------------------------------- Quarantine
# A message (or task) is re-driven at most this many times: a release is
# refused once its replay count reaches the limit, so nothing loops forever.
QUARANTINE_MAX_REPLAYS = env.int("QUARANTINE_MAX_REPLAYS", default=3)
# A discarded record's original payload/file is kept this long, then purged by
# the hourly `quarantine.purge_expired` beat task (or `manage.py quarantine purge`).
QUARANTINE_RETENTION_DAYS = env.int("QUARANTINE_RETENTION_DAYS", default=30)
# Failures of these Celery tasks are not quarantined (comma-separated names).
QUARANTINE_IGNORED_TASKS = env.list("QUARANTINE_IGNORED_TASKS", default=[])

# ----------------------------------------------------------------------- Metrics
# /metrics (Prometheus): with METRICS_TOKEN set, a scrape must send
# `Authorization: Bearer <token>`; without it, only these addresses may scrape.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", default=["127.0.0.1", "::1"])

# ------------------------------------------------ Dashboard, lag history, alerts
# (console/ops/dashboard.py, console/ops/lag_history.py, console/ops/alerts.py; docs/operations.md)
# The admin index polls its dashboard fragment this often (seconds).
CONSOLE_DASHBOARD_REFRESH_SECONDS = env.float("CONSOLE_DASHBOARD_REFRESH_SECONDS", default=5.0)
# The dashboard's one Kafka call (is the broker reachable?) gives up after this: the
# page still renders, saying Kafka is down, when it does not answer.
CONSOLE_DASHBOARD_KAFKA_TIMEOUT_SECONDS = env.float("CONSOLE_DASHBOARD_KAFKA_TIMEOUT_SECONDS", default=1.0)
# Minutes of lag history in each consumer's sparkline on the dashboard.
CONSOLE_SPARKLINE_MINUTES = env.int("CONSOLE_SPARKLINE_MINUTES", default=60)
# The `console.sample_lag` beat task samples every consumer's lag per partition this
# often (the beat entry follows this setting after each migrate) ...
CONSOLE_LAG_SAMPLE_SECONDS = env.int("CONSOLE_LAG_SAMPLE_SECONDS", default=30)
# ... and deletes the samples older than this (console.LagSample stays bounded).
CONSOLE_LAG_HISTORY_HOURS = env.float("CONSOLE_LAG_HISTORY_HOURS", default=24.0)
# Alert thresholds; 0 turns an alert off. A consumer's total lag above this:
CONSOLE_ALERT_LAG_MAX = env.int("CONSOLE_ALERT_LAG_MAX", default=10_000)
# A consumer's lag that has not fallen for this many minutes (and grew) of samples:
CONSOLE_ALERT_LAG_GROWING_MINUTES = env.float("CONSOLE_ALERT_LAG_GROWING_MINUTES", default=10.0)
# Dead letters (quarantined messages) of one consumer in the last minute above this:
CONSOLE_ALERT_DEAD_LETTERS_PER_MINUTE = env.int("CONSOLE_ALERT_DEAD_LETTERS_PER_MINUTE", default=100)
# A file queued, validating or loading without progress for this many minutes:
CONSOLE_ALERT_FILE_STUCK_MINUTES = env.float("CONSOLE_ALERT_FILE_STUCK_MINUTES", default=30.0)
# (No heartbeat for CONSUMER_HEARTBEAT_STALE_SECONDS is the heartbeat alert.)
# The message browser's "produce" refuses a value larger than this (the broker's own
# message.max.bytes still applies).
CONSOLE_PRODUCE_MAX_BYTES = env.int("CONSOLE_PRODUCE_MAX_BYTES", default=1_000_000)
# At most this many dead letters are re-driven from a dead-letter topic at once.
CONSOLE_DLQ_REDRIVE_MAX = env.int("CONSOLE_DLQ_REDRIVE_MAX", default=1000)
# The trace page (console/ops/trace.py) reads topics within bounds: at most this many
# messages per topic, this many seconds per search in all, and this far back when nothing
# stored gives the event's time.
CONSOLE_TRACE_SCAN_LIMIT = env.int("CONSOLE_TRACE_SCAN_LIMIT", default=20_000)
CONSOLE_TRACE_SECONDS = env.float("CONSOLE_TRACE_SECONDS", default=5.0)
CONSOLE_TRACE_LOOKBACK_MINUTES = env.float("CONSOLE_TRACE_LOOKBACK_MINUTES", default=60.0)
