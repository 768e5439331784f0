"""Settings for the shop backend: one file, read from the environment (django-environ).

Why one long module: every setting is assigned once, in its section (docs/adr/0001), so one
file is the whole configuration; a test holds it to that (common/tests/test_settings_discipline).

Every variable is listed in `.env.example` and the README. Integrations switch on when their
variable is present: `DATABASE_URL` (else an embedded PostgreSQL under `.data/`), `REDIS_URL`
(else a local-memory cache and eager Celery), `EMAIL_URL` (else the console), `SENTRY_DSN`.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import django_stubs_ext
from celery.schedules import crontab
from kombu import Exchange, Queue

from config.env import Env
from payments.crypto import (
    FIELD_ENCRYPTION_KEY_SALT,
    FINGERPRINT_KEY_SALT,
    derive_key,
    validate_payment_keys,
)

# Lets generic classes such as `admin.ModelAdmin[User]` be subscripted at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()  # an empty variable counts as unset (config/env.py)
# A `.env` beside manage.py fills in what the real environment does not set.
Env.read_env(BASE_DIR / ".env")

# =============================================================================
# Core
# =============================================================================
SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"
FRONTEND_URL = env.str("FRONTEND_URL", default="http://localhost:3000").rstrip("/")
# "View site" in the admin: the storefront when FRONTEND_URL is set, else the API docs.
ADMIN_SITE_URL = FRONTEND_URL if env.str("FRONTEND_URL", default="") else "/api/docs/"
STORE_CURRENCY = env.str("STORE_CURRENCY", default="USD")

INSTALLED_APPS = [
    # The stock admin with a guarded door (accounts/admin_site.py): login throttling and TOTP
    # two-factor sign-in; `admin.site` is that site, so every app's @admin.register lands on it.
    "accounts.admin_site.ShopAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    # third party
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "corsheaders",
    "django_prometheus",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # ours, bottom of the dependency graph first
    "common",
    "accounts",
    "inventory",
    "orders",
    "payments",
    "reports",
]

MIDDLEWARE = [
    # Request rate, status and latency per view (django-prometheus's series, three of them).
    "common.metrics.RequestMetricsMiddleware",
    "common.middleware.RequestIdMiddleware",
    "common.middleware.NoStoreForAuthenticatedMiddleware",
    "common.exceptions.DatabaseUnavailableMiddleware",
    # /healthz and /readyz answer before host validation and the HTTPS redirect, so a container
    # healthcheck on 127.0.0.1 works with ALLOWED_HOSTS set to the real domain.
    "common.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on the admin and the API docs (common/security.py).
    "common.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # Cached public catalog reads answered here, before sessions, CSRF, URL resolution and DRF
    # (inventory/api/cached_reads.py); CORS and the security headers above still apply.
    "inventory.api.cached_reads.CachedCatalogReadMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): signed in with a second factor (django-otp).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Request bodies: 2.5 MB at most (API.md, Conventions); larger → 413 `request_too_large`.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
            ],
        },
    },
]


# =============================================================================
# Database: DATABASE_URL, else an embedded PostgreSQL started on demand under .data/
# =============================================================================
# Web processes pool their connections (psycopg_pool, Django's "pool" option): gunicorn sets this
# to its threads per worker (config/gunicorn.conf.py), as each thread holds one connection per
# database for the length of its request. 0 (unset: Celery, manage.py, runserver, the tests):
# persistent connections instead, one per thread, kept for CONN_MAX_AGE seconds. A process
# environment variable, not for `.env`: Celery reads that too, and a pool is no use to a Celery
# worker, which closes it after every task (celery.fixups.django) and opens a new one.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)


def _database(config: dict[str, Any]) -> dict[str, Any]:
    """One DATABASES entry: pooled (web) or persistent connections, checked before use, quick to
    give up."""
    engine = config["ENGINE"]
    if engine == "django.db.backends.postgresql":
        # The same backend with a health check that needs no round trip (common/postgresql).
        engine = "common.postgresql"
    connect_timeout = 5
    pool = {
        # One connection kept while idle; up to one per thread under load. A thread never waits
        # for another's connection (max_size = threads), only for a new one being opened: as long
        # as connecting may take (connect_timeout), then 503 (common/exceptions.py).
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": connect_timeout,
        # psycopg_pool retries a failed connection with a doubling backoff until this many seconds;
        # at its default (5 minutes) a pool stayed unable to serve for 50 s after a 70-second outage
        # had ended. Giving up early lets the next request start a fresh attempt at once.
        "reconnect_timeout": connect_timeout,
    }
    return {
        **config,
        "ENGINE": engine,
        # A pool requires CONN_MAX_AGE = 0: Django hands the connection back at the end of each
        # request and takes one from the pool for the next.
        "CONN_MAX_AGE": 0 if DATABASE_POOL_MAX_SIZE else env.int("CONN_MAX_AGE", default=60),
        # Persistent or pooled, a connection is checked before a request uses it (for a pooled
        # one, by common/postgresql instead of psycopg_pool's check: no round trip, no backoff).
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            **config.get("OPTIONS", {}),
            "connect_timeout": connect_timeout,
            **({"pool": pool} if DATABASE_POOL_MAX_SIZE else {}),
        },
    }


_EMBEDDED_POSTGRES = {
    "ENGINE": "common.embedded_postgres",
    "NAME": "postgres",
    "USER": "postgres",
    "HOST": str(BASE_DIR / ".data" / "postgres"),
}
DATABASES = {
    "default": _database(
        env.db("DATABASE_URL") if env.str("DATABASE_URL", default="") else _EMBEDDED_POSTGRES
    ),
    # A read replica for the reports, and nothing else (reports/routers.py); unset: the primary.
    **(
        {"replica": _database(env.db("DATABASE_REPLICA_URL"))}
        if env.str("DATABASE_REPLICA_URL", default="")
        else {}
    ),
}
DATABASE_ROUTERS = ["reports.routers.ReportsRouter"]

# =============================================================================
# Redis: three roles, three databases (README, "Redis"). REDIS_URL names the server; each role
# may be pointed elsewhere with its own URL. Unset: local memory and eager Celery.
# =============================================================================
REDIS_URL = env.str("REDIS_URL", default="")


def _redis_db(url: str, offset: int) -> str:
    """`url` with its database number moved up by `offset` (redis://host:6379/0 → …/1)."""
    if not url:
        return ""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + offset}"))


# Broker: queued tasks must never be evicted (maxmemory-policy noeviction). Unset: eager Celery
# (CELERY_BROKER_URL, in the Celery section below).
_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Cache: disposable, may evict anything (allkeys-lru).
CACHE_URL = env.str("CACHE_URL", default=_redis_db(REDIS_URL, 1))
# Throttle counters: short-lived keys with a TTL (volatile-ttl or allkeys-lru).
THROTTLE_CACHE_URL = env.str("THROTTLE_CACHE_URL", default=_redis_db(REDIS_URL, 2))


def _redis_cache(url: str, *, fail_open: bool) -> dict[str, object]:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "shop",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            # The catalog cache fails open: with Redis down, reads come from the database.
            "IGNORE_EXCEPTIONS": fail_open,
        },
    }


CACHES: dict[str, dict[str, object]] = {
    "default": (
        _redis_cache(CACHE_URL, fail_open=True)
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    # Throttles see the error themselves and fail open (common/throttling.py).
    "throttles": (
        _redis_cache(THROTTLE_CACHE_URL, fail_open=False)
        if THROTTLE_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttles"}
    ),
}
# An ignored cache error is logged at most once a minute per process (common/apps.py).
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "shop.redis"


# =============================================================================
# Email: EMAIL_URL (smtp://, consolemail://, filemail:///path), else the console
# =============================================================================
def _email_config(url: str) -> dict[str, Any]:
    config: dict[str, Any] = env.email_url_config(url)
    if url.startswith("filemail://"):
        # The path as written: django-environ drops the leading "/" of filemail:///var/mail/shop.
        parts = urlsplit(url)
        return {**config, "EMAIL_FILE_PATH": parts.netloc + parts.path or None}
    return config


_email = _email_config(env.str("EMAIL_URL", default="consolemail://"))
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH") or str(BASE_DIR / ".data" / "emails")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Shop <no-reply@shop.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = 10

# =============================================================================
# Auth and passwords
# =============================================================================
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
EMAIL_VERIFICATION_MAX_AGE = timedelta(hours=24)
PASSWORD_RESET_TIMEOUT = 3600  # seconds; Django's reset tokens expire after an hour

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# =============================================================================
# REST framework, schema, errors
# =============================================================================
REST_FRAMEWORK = {
    # simplejwt's authentication plus a suspension check on the user row it already loads.
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_PARSER_CLASSES": ["common.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "common.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "common.throttling.AnonRateThrottle",
        "common.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="120/min"),
        "user": env.str("THROTTLE_USER", default="600/min"),
        "login": env.str("THROTTLE_LOGIN", default="10/min"),
        "register": env.str("THROTTLE_REGISTER", default="10/hour"),
        "password_reset": env.str("THROTTLE_PASSWORD_RESET", default="5/hour"),
        "verify_resend": env.str("THROTTLE_VERIFY_RESEND", default="5/hour"),
        # Failed sign-ins (API and admin alike, accounts.throttles.LoginFailureLimit) are counted
        # per client address (`login`) and per (address, account) (`login_account`).
        "login_account": env.str("THROTTLE_LOGIN_ACCOUNT", default="5/min"),
        # Card testing (payments/throttles.py): cards saved per user and per address, and pay
        # attempts per user and per address once the gateway has declined.
        "payment_method": env.str("THROTTLE_PAYMENT_METHOD", default="10/hour"),
        "payment_decline": env.str("THROTTLE_PAYMENT_DECLINE", default="5/hour"),
    },
    # How many proxies in front of the app append to X-Forwarded-For. 0 (direct): throttles key
    # on REMOTE_ADDR, so a forged X-Forwarded-For cannot buy fresh login or reset attempts.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "common.exceptions.ExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "common.exceptions.ExceptionFormatter",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    # Domain errors (402, 409, 422) are documented per endpoint with common.openapi.
    "ALLOWED_ERROR_STATUS_CODES": [
        *("400", "401", "403", "404", "405", "413", "415", "429", "500", "503"),
    ],
    "ERROR_SCHEMAS": {
        "413": "common.openapi.RequestTooLargeResponseSerializer",
        "503": "common.openapi.ServiceUnavailableResponseSerializer",
    },
}

_ERRORS = "drf_standardized_errors.openapi_serializers"
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop backend API",
    "DESCRIPTION": (
        "Catalog, stock, cart, orders and payments. Authenticate with "
        "`Authorization: Bearer <access JWT>` from `POST /api/v1/auth/token/`. Every error has "
        'the shape `{"type", "errors": [{"code", "detail", "attr"}]}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    # The shop's own icon at /favicon.ico (WHITENOISE_ROOT), the address browsers also ask for on
    # every other page (ReDoc, the admin, the JSON API): no 404 for it anywhere.
    "SWAGGER_UI_FAVICON_HREF": "/favicon.ico",
    # JavaScript (drf-spectacular passes a string through as is): drf-spectacular's default
    # (deep links), and each tag's operations in flow order, by the place the schema gives each
    # (`x-flow-order`, common/openapi_flow.py), not grouped by path as the schema lists them.
    "SWAGGER_UI_SETTINGS": """{
  "deepLinking": true,
  "operationsSorter": (a, b) =>
    a.getIn(["operation", "x-flow-order"]) - b.getIn(["operation", "x-flow-order"]),
}""",
    # Operations grouped in the order a client meets them: sign up, browse, buy, pay, report.
    "TAGS": [
        {
            "name": "auth",
            "description": "Register, verify the email, sign in (a JWT pair), refresh, sign out, "
            "change or reset the password.",
        },
        {"name": "users", "description": "Your profile (`/users/me/`); staff manage accounts."},
        {"name": "categories", "description": "The catalog's category tree; staff edit it."},
        {
            "name": "products",
            "description": "The catalog: search, filter, read; staff create products, adjust "
            "their stock and upload images.",
        },
        {"name": "inventory", "description": "Staff: products at or below their reorder level."},
        {"name": "stock-movements", "description": "Staff: the ledger of every stock change."},
        {"name": "cart", "description": "Your cart: add, change and remove items."},
        {
            "name": "orders",
            "description": "Check out the cart into an order, pay it, cancel it; staff ship, "
            "deliver and refund.",
        },
        {
            "name": "payment-methods",
            "description": "Saved cards (the test gateway's cards: README, Payments).",
        },
        {"name": "payments", "description": "Payment attempts, and the gateways' webhooks."},
        {"name": "reports", "description": "Staff analytics: sales, top products, inventory."},
    ],
    # ReDoc's bundle with its one outside request (the Redocly logo) removed, served at
    # /api/redoc/bundles/redoc.standalone.js (common/security.py): the docs load from this server.
    "REDOC_DIST": "/api/redoc",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ValidationErrorEnum": f"{_ERRORS}.ValidationErrorEnum.choices",
        "ClientErrorEnum": f"{_ERRORS}.ClientErrorEnum.choices",
        "ServerErrorEnum": f"{_ERRORS}.ServerErrorEnum.choices",
        "ErrorCode401Enum": f"{_ERRORS}.ErrorCode401Enum.choices",
        "ErrorCode403Enum": f"{_ERRORS}.ErrorCode403Enum.choices",
        "ErrorCode404Enum": f"{_ERRORS}.ErrorCode404Enum.choices",
        "ErrorCode405Enum": f"{_ERRORS}.ErrorCode405Enum.choices",
        "ErrorCode406Enum": f"{_ERRORS}.ErrorCode406Enum.choices",
        "ErrorCode415Enum": f"{_ERRORS}.ErrorCode415Enum.choices",
        "ErrorCode429Enum": f"{_ERRORS}.ErrorCode429Enum.choices",
        "ErrorCode500Enum": f"{_ERRORS}.ErrorCode500Enum.choices",
        # Order and event statuses share one enum.
        "OrderStatusEnum": "orders.models.OrderStatus.choices",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        # Each tag's operations in the order a client uses them (common/openapi_flow.py).
        "common.openapi_flow.order_operations_by_flow",
    ],
}

# =============================================================================
# CORS: only the listed origins, never a wildcard
# =============================================================================
# With DEBUG (`make dev`) and no list given, the usual local front-end dev servers (Next.js,
# Vite) may call the API; production names its origins exactly.
_LOCAL_FRONTEND_ORIGINS = [
    f"http://{host}:{port}" for host in ("localhost", "127.0.0.1") for port in (3000, 5173)
]
CORS_ALLOWED_ORIGINS = env.list(
    "CORS_ALLOWED_ORIGINS", default=_LOCAL_FRONTEND_ORIGINS if DEBUG else []
)
CORS_ALLOW_ALL_ORIGINS = False
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Idempotent-Replayed", "Retry-After"]

# =============================================================================
# Static files: served by the app itself (WhiteNoise), also with DEBUG=false
# =============================================================================
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Files served at the site root as they are (no collectstatic): /favicon.ico.
WHITENOISE_ROOT = BASE_DIR / "common" / "static" / "root"
# (STORAGES, for static files and uploads alike: under Media below.)

# =============================================================================
# Security: production switches come from the environment (see README, "Deploying")
# =============================================================================
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("USE_X_FORWARDED_PROTO", default=False)
    else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# =============================================================================
# Logging: JSON lines on stdout, each with the request id
# =============================================================================
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Our access log replaces django.request/django.server lines for ordinary 4xx.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
        "pgserver": {"level": "WARNING"},
        # The stripe package logs each API call at INFO (and request bodies at DEBUG).
        "stripe": {"level": "WARNING"},
    },
}

# =============================================================================
# Error reporting: Sentry only when SENTRY_DSN is set
# =============================================================================
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:  # pragma: no cover - needs a Sentry project
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        # Card fields are scrubbed from request bodies and stack-frame variables too.
        event_scrubber=EventScrubber(
            denylist=[*DEFAULT_DENYLIST, "number", "cvc", "card", "card_number"], recursive=True
        ),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
    )

# =============================================================================
# Domain settings
# =============================================================================
ORDER_PAYMENT_TIMEOUT_MINUTES = env.int("ORDER_PAYMENT_TIMEOUT_MINUTES", default=30)
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="test")

# =============================================================================
# Accounts: authentication that honours suspension at once; client IP for throttles
# =============================================================================
# (Suspension-aware JWT authentication and NUM_PROXIES: REST_FRAMEWORK above. Expired refresh
# tokens are flushed nightly: CELERY_BEAT_SCHEDULE below.)
# The admin door (accounts/admin_site.py): staff and admins may turn on TOTP two-factor sign-in
# in the admin (/admin/two-factor/); ADMIN_2FA_REQUIRED makes it mandatory for them (whoever has
# no device is sent there before any other admin page). `check --deploy` warns while it is off.
ADMIN_2FA_REQUIRED = env.bool("ADMIN_2FA_REQUIRED", default=False)
OTP_TOTP_ISSUER = "Shop admin"  # the account's name in the authenticator app
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # never show a device's key in the admin


# =============================================================================
# Payments: gateway, card fingerprints, encryption at rest, webhooks (README, "Payments")
# =============================================================================
# Keys derived from SECRET_KEY use their own salt, so no two uses share a key. Set them explicitly
# in production: rotating SECRET_KEY must not change fingerprints or lock out billing details
# (`check --deploy` fails while they are derived: payments.E003).
def _derived_key(salt: str) -> str:
    return derive_key(salt, SECRET_KEY)


# HMAC-SHA256 key of card fingerprints (duplicate detection without storing the number).
PAYMENT_FINGERPRINT_KEY = env.str(
    "PAYMENT_FINGERPRINT_KEY", default=_derived_key(FINGERPRINT_KEY_SALT)
)
# Fernet keys (urlsafe base64 of 32 bytes), newest first: the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEYS = [
    key.strip()
    for key in env.list("FIELD_ENCRYPTION_KEYS", default=[_derived_key(FIELD_ENCRYPTION_KEY_SALT)])
]
# A value that is set but holds no key (spaces, a lone comma, an empty item) or a malformed
# Fernet key stops start-up with ImproperlyConfigured, instead of an HMAC under an empty key or a
# 500 at the first card saved. (An empty variable is unset, as everywhere: the default applies.)
validate_payment_keys(PAYMENT_FINGERPRINT_KEY, FIELD_ENCRYPTION_KEYS)
PAYMENT_WEBHOOK_SECRET = env.str(
    "PAYMENT_WEBHOOK_SECRET", default=_derived_key("payments.test-gateway-webhook")
)
PAYMENT_GATEWAY_TIMEOUT_SECONDS = env.float("PAYMENT_GATEWAY_TIMEOUT_SECONDS", default=10.0)
# A payment still pending after this long is settled by asking the gateway again (a pay request
# waits at most PAYMENT_GATEWAY_TIMEOUT_SECONDS, so anything older was left by a crash or a
# timeout); reconciliation runs every PAYMENT_RECONCILE_INTERVAL_SECONDS. Together they bound how
# long a crashed payment stays unsettled (about the sum of the two).
PAYMENT_RECONCILE_AFTER_SECONDS = env.int("PAYMENT_RECONCILE_AFTER_SECONDS", default=60)
PAYMENT_RECONCILE_INTERVAL_SECONDS = env.int("PAYMENT_RECONCILE_INTERVAL_SECONDS", default=60)
# A charge the gateway has no record of (the create call never arrived) is failed
# (`not_created`) once it is this old; younger ones may not be searchable at the gateway yet.
PAYMENT_RECONCILE_NOT_FOUND_SECONDS = env.int("PAYMENT_RECONCILE_NOT_FOUND_SECONDS", default=600)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Up to 22 characters added to the shop's statement descriptor on the customer's card statement
# (Stripe's `statement_descriptor_suffix`); empty: not sent.
STRIPE_STATEMENT_DESCRIPTOR_SUFFIX = env.str("STRIPE_STATEMENT_DESCRIPTOR_SUFFIX", default="")
# Stripe emails its receipt to the customer's address for every charge.
STRIPE_RECEIPT_EMAILS = env.bool("STRIPE_RECEIPT_EMAILS", default=False)


# =============================================================================
# Inventory: catalog read cache
# =============================================================================
# Seconds a cached catalog response (anonymous and customer reads) is kept; any catalog write
# invalidates them all at once. 0 turns the cache off.
CATALOG_CACHE_SECONDS = env.int("CATALOG_CACHE_SECONDS", default=300)

# =============================================================================
# Reports: staff analytics (reports/), daily rollups, cache, and the /metrics door
# =============================================================================
# Seconds a report response is cached; a new succeeded payment invalidates it at once.
REPORTS_CACHE_SECONDS = env.int("REPORTS_CACHE_SECONDS", default=60)
# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>`; while it is unset, only to
# 127.0.0.1 and ::1 (API.md, "Outside /api/v1/").
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# =============================================================================
# Media: product images (inventory/images.py), on the local filesystem or an S3 bucket
# =============================================================================
# Local storage (the default, single host): files under MEDIA_ROOT, served by the app itself at
# MEDIA_URL with `Cache-Control: public, max-age=31536000, immutable` (config/urls.py): names are
# unique and never reused, so a URL's content never changes. MEDIA_URL may be absolute
# (https://shop.example/media/) for clients on another origin.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
# S3 (or any S3-compatible service: MinIO, R2, …) when AWS_STORAGE_BUCKET_NAME is set. Keys come
# from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (read by boto3, or an instance role); URLs are
# the bucket's (or AWS_S3_CUSTOM_DOMAIN's, a CDN), unsigned: the bucket must allow public reads
# of its objects.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
_S3_STORAGE = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {
        "bucket_name": AWS_STORAGE_BUCKET_NAME,
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
        "custom_domain": env.str("AWS_S3_CUSTOM_DOMAIN", default="") or None,
        # `path` for MinIO and most S3-compatible services (http://host:9000/bucket/key).
        "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
        "querystring_auth": env.bool("AWS_QUERYSTRING_AUTH", default=False),
        "file_overwrite": True,  # names are unique; a rendition rerun writes the same bytes
        "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
    },
}
STORAGES: dict[str, dict[str, Any]] = {
    "default": (
        _S3_STORAGE
        if AWS_STORAGE_BUCKET_NAME
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Uploads larger than this go to a temporary file, not memory (Django's default handlers). The
# 2.5 MB body limit (DATA_UPLOAD_MAX_MEMORY_SIZE) counts form fields, not files: images may be up
# to 10 MB (inventory.images.IMAGE_MAX_BYTES, checked from Content-Length before parsing).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# =============================================================================
# Catalog HTTP caching: public catalog reads are cacheable by browsers and CDNs (API.md)
# =============================================================================
# Anonymous and customer catalog reads carry an ETag (the catalog version, so any catalog write
# changes it) and `Cache-Control: public, max-age=CATALOG_HTTP_MAX_AGE`; an If-None-Match with the
# current ETag answers 304 without reading the database. Staff reads and every other
# authenticated response say `Cache-Control: no-store` (common.middleware).
CATALOG_HTTP_MAX_AGE = env.int("CATALOG_HTTP_MAX_AGE", default=60)

# =============================================================================
# Celery: broker on Redis, else tasks run eagerly in-process. Work queued after a commit goes
# through the outbox (common/outbox.py): a row in PostgreSQL, relayed to the broker. Last in the
# file: its routes and beat schedule name every app's tasks and intervals.
# =============================================================================
CELERY_TASK_ALWAYS_EAGER = not _BROKER_URL
CELERY_BROKER_URL = _BROKER_URL or "memory://"
# No result backend: nothing reads task results, and a result write is one more Redis failure.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Eager mode (no Redis) behaves like a worker: a failing task is retried and logged, it does not
# turn the request that queued it into a 500. Tests set this to True to see task bugs.
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing fails fast when the broker is down (one quick retry, not kombu's default of retrying
# for `broker_connection_timeout`): the message waits in the outbox and no request waits on Redis.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 5,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Queues by urgency: a flood of emails never delays expiry or payment outcomes.
# Each queue has its own exchange and routing key: a message reaches exactly its one queue.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("critical", "default", "bulk")
)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_DEFAULT_EXCHANGE = "default"
CELERY_TASK_DEFAULT_ROUTING_KEY = "default"
CELERY_TASK_ROUTES = {
    "common.outbox.relay_outbox": {"queue": "critical"},
    "payments.tasks.*": {"queue": "critical"},
    "orders.tasks.expire_unpaid_orders": {"queue": "critical"},
    "common.outbox.purge_done_outbox_messages": {"queue": "bulk"},
    "common.idempotency.purge_expired_idempotency_keys": {"queue": "bulk"},
    "accounts.tasks.flush_expired_tokens": {"queue": "bulk"},
    # A large catalog file imported from the console (inventory/bulk.py).
    "inventory.tasks.run_catalog_import_job": {"queue": "bulk"},
    "orders.tasks.reconcile_order_payments": {"queue": "critical"},
    "reports.tasks.*": {"queue": "bulk"},
    # Product image renditions and deletions (inventory/images.py).
    "inventory.tasks.make_image_renditions": {"queue": "bulk"},
    "inventory.tasks.delete_image_files": {"queue": "bulk"},
}
# Tasks outside a tasks.py (the idempotency purge, the outbox relay) that autodiscovery misses.
CELERY_IMPORTS = ("common.idempotency", "common.outbox")
# The outbox (common/outbox.py): how often beat relays what waits, when a message handed to the
# broker but not run is handed over again, the retry backoff, and how long done rows are kept.
OUTBOX_RELAY_INTERVAL_SECONDS = env.int("OUTBOX_RELAY_INTERVAL_SECONDS", default=10)
OUTBOX_REDELIVER_AFTER_SECONDS = env.int("OUTBOX_REDELIVER_AFTER_SECONDS", default=300)
OUTBOX_RETRY_BASE_SECONDS = 10
OUTBOX_RETRY_MAX_SECONDS = 600
OUTBOX_KEEP_DONE_DAYS = 7
# Beat's crontab entries are in the store's time zone (the nightly rollup runs after its midnight).
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "orders-expire-unpaid": {
        "task": "orders.tasks.expire_unpaid_orders",
        "schedule": crontab(minute="*"),
    },
    "outbox-relay": {
        "task": "common.outbox.relay_outbox",
        "schedule": timedelta(seconds=OUTBOX_RELAY_INTERVAL_SECONDS),
    },
    "outbox-purge-done": {
        "task": "common.outbox.purge_done_outbox_messages",
        "schedule": crontab(hour=3, minute=47),
    },
    # Expired refresh tokens (and their blacklist rows) are useless: forget them nightly.
    "accounts-flush-expired-tokens": {
        "task": "accounts.tasks.flush_expired_tokens",
        "schedule": crontab(hour=3, minute=17),
    },
    "payments-reconcile-pending": {
        "task": "payments.tasks.reconcile_pending_payments",
        "schedule": timedelta(seconds=PAYMENT_RECONCILE_INTERVAL_SECONDS),
    },
    "orders-reconcile-payments": {
        "task": "orders.tasks.reconcile_order_payments",
        "schedule": timedelta(seconds=PAYMENT_RECONCILE_INTERVAL_SECONDS),
    },
    "idempotency-purge-expired": {
        "task": "common.idempotency.purge_expired_idempotency_keys",
        "schedule": crontab(minute="17"),
    },
    "reports-rollup-recent-days": {
        "task": "reports.tasks.rollup_recent_days",
        "schedule": crontab(hour=0, minute=20),
    },
}
