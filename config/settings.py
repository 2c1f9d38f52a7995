"""Shipwright settings: one module, driven by environment variables.

Defaults let `make run` work on a fresh machine (SQLite under var/, an embedded
Celery broker, console e-mail). Production (DJANGO_DEBUG off) refuses to start
without a secret key and allowed hosts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from csp import constants as csp_constants
from django.core.exceptions import ImproperlyConfigured

from config import logcontext

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHIPWRIGHT_VAR_DIR", BASE_DIR / "var"))


def _env_str(name: str, default: str | None = None) -> str | None:
    """A string setting; NAME_FILE (a path) wins over NAME, for secrets."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_path}: {exc}") from exc
    return os.environ.get(name, default)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def _env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = _env_bool("DJANGO_DEBUG", False)

SECRET_KEY = _env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) is required when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-DJANGO_DEBUG-on"

ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG is off")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# The public origin used in certificates, e-mails and the issuer's did:web.
SITE_URL = (_env_str("SHIPWRIGHT_SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")
# The site's name in every e-mail (subject, greeting, signature) and as its sender.
SITE_NAME = _env_str("SHIPWRIGHT_SITE_NAME", "Shipwright") or "Shipwright"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "accounts",
    "courses",
    "labs",
    "grading",
    "certificates",
    "lti",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
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

WSGI_APPLICATION = "config.wsgi.application"

if not _env_str("DATABASE_URL"):
    # The embedded default: SQLite under var/, which must exist before it opens.
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DATABASES = {
    "default": dj_database_url.parse(
        _env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'shipwright.sqlite3'}",
        conn_max_age=_env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# The password may come apart from the URL, from a secret file (DATABASE_PASSWORD_FILE).
_database_password = _env_str("DATABASE_PASSWORD")
if _database_password:
    DATABASES["default"]["PASSWORD"] = _database_password
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "courses:dashboard"
LOGOUT_REDIRECT_URL = "courses:catalog"

# django-allauth: e-mail as the login, confirmed before first login.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
# Adds the name printed on certificates to the sign-up form.
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupForm"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("SHIPWRIGHT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
# Confirming signs the learner in when the link is opened in the browser that signed
# up: allauth keeps the pending login in that session for ACCOUNT_LOGIN_TIMEOUT (15
# minutes by default, shorter than the time it takes some to read their mail). Opened
# elsewhere, the link confirms the address and the learner logs in (allauth's rule: a
# leaked link must never sign anyone in).
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_TIMEOUT = 24 * 3600
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
# allauth's e-mails with the site's name and an HTML alternative (accounts/mail.py).
ACCOUNT_ADAPTER = "accounts.mail.AccountAdapter"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# E-mail: the console in development, SMTP in production.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", f"{SITE_NAME} <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Django's mails to ADMINS (error reports) carry the site's name like the others.
EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
# Who is e-mailed when a submission ends in a platform error (besides staff users):
# DJANGO_ADMINS="ops@example.org,oncall@example.org".
ADMINS = [(email, email) for email in (a.strip() for a in os.environ.get("DJANGO_ADMINS", "").split(",")) if email]

# Security: strict in production; `check --deploy` is clean with DJANGO_DEBUG off.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy on every response (django-csp): the second wall behind the
# HTML sanitiser. Scripts only from our own static files: no inline <script>, no on*
# handlers, no javascript: URLs, no eval. Stylesheets only from our files too (htmx's
# injected indicator <style> is switched off in base.html), but style="" attributes are
# allowed: progress bars set their width that way, and a style attribute cannot run code.
# Images may come from https (lessons link pictures); forms post only to this site.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF],
        "style-src": [csp_constants.SELF],
        "style-src-attr": [csp_constants.UNSAFE_INLINE],
        "img-src": [csp_constants.SELF, "data:", "https:"],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.SELF],
        "form-action": [csp_constants.SELF],
        "frame-ancestors": [csp_constants.NONE],
    }
}
if not DEBUG:
    SECURE_SSL_REDIRECT = _env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Load balancers and container probes ask for /healthz over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]

# Celery. Without REDIS_URL, an embedded file-system broker under var/ lets a fresh
# machine run web + worker with no server; tests and production use Redis.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    from grading.budget import VISIBILITY_TIMEOUT_S

    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": VISIBILITY_TIMEOUT_S}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # kombu writes its exchange tables to ./control unless told otherwise.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    # Every process that may send a task (the site, a worker, manage.py grade) finds
    # the broker's folders; kombu does not create them and fails on the first send.
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
# The cache may live in a Redis database of its own: clearing a cache (the test suite
# does, per test) is FLUSHDB, which would also drop the broker's queued messages.
CACHE_URL = os.environ.get("SHIPWRIGHT_CACHE_URL", "") or REDIS_URL
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The worker logs through LOGGING (above) like the web: same format, and every line
# of a grading run names its submission.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Queue names: grading, and low priority for regrades. Configurable so that test
# runs sharing one Redis never consume each other's messages.
SHIPWRIGHT_GRADING_QUEUE = os.environ.get("SHIPWRIGHT_GRADING_QUEUE", "grading")
SHIPWRIGHT_LOW_QUEUE = os.environ.get("SHIPWRIGHT_LOW_QUEUE", "low")
# Intake (unpacking uploads, cloning git URLs) runs off the request, on its own queue,
# so a slow clone never holds a web worker and a grading backlog never delays intake.
SHIPWRIGHT_INTAKE_QUEUE = os.environ.get("SHIPWRIGHT_INTAKE_QUEUE", "intake")
# The reaper's own queue, consumed by a small dedicated worker: a grading backlog
# must not delay the task that rescues stuck and lost submissions.
SHIPWRIGHT_MAINTENANCE_QUEUE = os.environ.get("SHIPWRIGHT_MAINTENANCE_QUEUE", "maintenance")
SHIPWRIGHT_REAPER_INTERVAL_S = _env_float("SHIPWRIGHT_REAPER_INTERVAL_S", 60.0)
# Issuing and signing certificates, on a queue of its own consumed by the only
# processes that hold the signing key (the `signer` role): a sandbox escape on a
# grading host finds no key to hand out.
SHIPWRIGHT_CERTIFICATES_QUEUE = os.environ.get("SHIPWRIGHT_CERTIFICATES_QUEUE", "certificates")
CELERY_TASK_ROUTES = {
    "grading.grade_submission": {"queue": SHIPWRIGHT_GRADING_QUEUE},
    "grading.intake_submission": {"queue": SHIPWRIGHT_INTAKE_QUEUE},
    "grading.reap_stale_submissions": {"queue": SHIPWRIGHT_MAINTENANCE_QUEUE},
    "grading.regrade_lab": {"queue": SHIPWRIGHT_LOW_QUEUE},
    "grading.lab_similarity": {"queue": SHIPWRIGHT_LOW_QUEUE},
    # LMS calls are network work without Docker, like intake.
    "lti.grade_sync_send": {"queue": SHIPWRIGHT_INTAKE_QUEUE},
    "lti.roster_sync": {"queue": SHIPWRIGHT_INTAKE_QUEUE},
    "grading.prune_submissions": {"queue": SHIPWRIGHT_LOW_QUEUE},
    "certificates.issue_certificate": {"queue": SHIPWRIGHT_CERTIFICATES_QUEUE},
    "certificates.issue_pending": {"queue": SHIPWRIGHT_CERTIFICATES_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "reap-stale-submissions": {
        "task": "grading.reap_stale_submissions",
        "schedule": SHIPWRIGHT_REAPER_INTERVAL_S,
        # A tick nobody ran in time is dropped: the next one does the same work.
        "options": {"queue": SHIPWRIGHT_MAINTENANCE_QUEUE, "expires": SHIPWRIGHT_REAPER_INTERVAL_S},
    },
    # Retention (SHIPWRIGHT_RETENTION_DAYS); the task does nothing while it is 0.
    "prune-submissions": {
        "task": "grading.prune_submissions",
        "schedule": _env_float("SHIPWRIGHT_RETENTION_INTERVAL_S", 24 * 3600.0),
    },
}

# Grading.
SHIPWRIGHT_LAB_IMAGE = os.environ.get("SHIPWRIGHT_LAB_IMAGE", "shipwright-lab:py311")
# The engine's OCI runtime for every sandbox stage: runc (the engine's default), or
# runsc (gVisor: a user-space kernel between learner code and the host's, at a cost
# per stage measured by bench/sandbox_runtimes.py; `make engine` registers it). A lab
# can ask for runsc on its own (`runtime: runsc` in lab.yaml) whatever this says.
SHIPWRIGHT_SANDBOX_RUNTIME = _env_str("SHIPWRIGHT_SANDBOX_RUNTIME", "runc") or "runc"
if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", SHIPWRIGHT_SANDBOX_RUNTIME):
    raise ImproperlyConfigured(
        f"SHIPWRIGHT_SANDBOX_RUNTIME must name an engine runtime such as runc or runsc, got {SHIPWRIGHT_SANDBOX_RUNTIME!r}"
    )
SHIPWRIGHT_SNAPSHOT_DIR = Path(os.environ.get("SHIPWRIGHT_SNAPSHOT_DIR", VAR_DIR / "snapshots"))
SHIPWRIGHT_ASSET_CACHE_DIR = Path(os.environ.get("SHIPWRIGHT_ASSET_CACHE_DIR", VAR_DIR / "lab-assets"))
# Where uploads and snapshots are stored (grading/storage.py): empty for the local
# SHIPWRIGHT_SNAPSHOT_DIR, or s3://BUCKET[/PREFIX] for an S3-compatible store shared
# by every host (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY(_FILE), AWS_DEFAULT_REGION, read by boto3).
SHIPWRIGHT_STORAGE_URL = _env_str("SHIPWRIGHT_STORAGE_URL", "") or ""
if SHIPWRIGHT_STORAGE_URL and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,62}(/[^\s]*)?", SHIPWRIGHT_STORAGE_URL):
    raise ImproperlyConfigured(
        f"SHIPWRIGHT_STORAGE_URL must be empty or s3://BUCKET[/PREFIX], got {SHIPWRIGHT_STORAGE_URL!r}"
    )
SHIPWRIGHT_STORE_CACHE_DIR = Path(os.environ.get("SHIPWRIGHT_STORE_CACHE_DIR", VAR_DIR / "store-cache"))
SHIPWRIGHT_UPLOAD_MAX_BYTES = _env_int("SHIPWRIGHT_UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
SHIPWRIGHT_UNPACKED_MAX_BYTES = _env_int("SHIPWRIGHT_UNPACKED_MAX_BYTES", 200 * 1024 * 1024)
SHIPWRIGHT_ARCHIVE_MAX_ENTRIES = _env_int("SHIPWRIGHT_ARCHIVE_MAX_ENTRIES", 10_000)
SHIPWRIGHT_GIT_TIMEOUT_S = _env_int("SHIPWRIGHT_GIT_TIMEOUT_S", 60)
SHIPWRIGHT_GIT_ALLOW_LOOPBACK = _env_bool("SHIPWRIGHT_GIT_ALLOW_LOOPBACK", False)
SHIPWRIGHT_RESUBMIT_COOLOFF_S = _env_int("SHIPWRIGHT_RESUBMIT_COOLOFF_S", 30)
# Submission throttles over a sliding window (0 turns one off): submissions per
# learner and per client address, and rejected intakes (refused sources) likewise.
SHIPWRIGHT_THROTTLE_WINDOW_S = _env_int("SHIPWRIGHT_THROTTLE_WINDOW_S", 3600)
SHIPWRIGHT_SUBMISSIONS_PER_LEARNER = _env_int("SHIPWRIGHT_SUBMISSIONS_PER_LEARNER", 30)
SHIPWRIGHT_SUBMISSIONS_PER_ADDRESS = _env_int("SHIPWRIGHT_SUBMISSIONS_PER_ADDRESS", 120)
SHIPWRIGHT_REJECTED_PER_LEARNER = _env_int("SHIPWRIGHT_REJECTED_PER_LEARNER", 10)
SHIPWRIGHT_REJECTED_PER_ADDRESS = _env_int("SHIPWRIGHT_REJECTED_PER_ADDRESS", 30)
# Runs of one submission that may die (worker killed) before it ends in `error`.
SHIPWRIGHT_MAX_ATTEMPTS = _env_int("SHIPWRIGHT_MAX_ATTEMPTS", 3)
# Platform failures (engine down, image missing) retried with backoff before giving
# up: 8 cover about 20 minutes (grading/budget.py), so an engine restart costs nothing.
SHIPWRIGHT_PLATFORM_RETRIES = _env_int("SHIPWRIGHT_PLATFORM_RETRIES", 8)
# The first of those backoff steps (doubling, capped at 300 s); a drill shortens it.
SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S = _env_float("SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S", 10.0)
if SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S <= 0:
    raise ImproperlyConfigured(
        f"SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S must be a positive number of seconds, got {SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S}"
    )
# Labels this deployment's sandboxes; empty: derived from the database's address.
SHIPWRIGHT_SANDBOX_INSTANCE = os.environ.get("SHIPWRIGHT_SANDBOX_INSTANCE", "")
# The seccomp allowlist the sandbox's profile is derived from (grading/sandbox.py).
SHIPWRIGHT_SECCOMP_BASE = os.environ.get("SHIPWRIGHT_SECCOMP_BASE", "/usr/share/containers/seccomp.json")
# `/metrics` (Prometheus format) answers only a scraper presenting this bearer token;
# unset, the endpoint does not exist (404).
SHIPWRIGHT_METRICS_TOKEN = _env_str("SHIPWRIGHT_METRICS_TOKEN", "") or ""


# Days after which a superseded attempt's snapshot and stage output are deleted
# (grading/retention.py); 0 keeps everything.
SHIPWRIGHT_RETENTION_DAYS = _env_int("SHIPWRIGHT_RETENTION_DAYS", 0)
if SHIPWRIGHT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured(
        f"SHIPWRIGHT_RETENTION_DAYS must be 0 (off) or a number of days, got {SHIPWRIGHT_RETENTION_DAYS}"
    )

# Certificates: the issuer's signing keys (a directory of PEM files, newest wins).
# Requests per window (seconds) per client on the public verify endpoints.
# Reverse proxies in front of the site that append to X-Forwarded-For (0: clients
# connect directly and REMOTE_ADDR is the client). With N, the client is the Nth
# address from the right of X-Forwarded-For + REMOTE_ADDR; entries further left were
# written by the client and are ignored (config/client.py).
SHIPWRIGHT_TRUSTED_PROXIES = _env_int("SHIPWRIGHT_TRUSTED_PROXIES", 0)
SHIPWRIGHT_VERIFY_RATE_LIMIT = (
    _env_int("SHIPWRIGHT_VERIFY_RATE_LIMIT", 120),
    _env_int("SHIPWRIGHT_VERIFY_RATE_WINDOW_S", 60),
)
# The LTI tool's RSA key (lti/keys.py), apart from the certificate key.
SHIPWRIGHT_LTI_KEY_DIR = Path(_env_str("SHIPWRIGHT_LTI_KEY_DIR") or str(VAR_DIR / "lti-keys"))
SHIPWRIGHT_SIGNING_KEY_DIR = Path(_env_str("SHIPWRIGHT_SIGNING_KEY_DIR") or str(VAR_DIR / "signing-keys"))
# Whether this process signs (web, the signer, `make run`, manage.py): the signing-key
# system check applies only where it does. The image's grading, intake, maintenance
# and beat roles turn it off (docker/app/entrypoint.sh): they never hold the key.
SHIPWRIGHT_SIGNS_CERTIFICATES = _env_bool("SHIPWRIGHT_SIGNS_CERTIFICATES", True)

# Every log record carries the submission it belongs to (config/logcontext.py);
# LOG_FORMAT=json writes one JSON object per line for a log pipeline.
logcontext.install()
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [submission %(submission_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(submission_id)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
        # Django's own error mails to ADMINS, with the site's name and an HTML alternative.
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "config.logs.SiteAdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
    },
}
