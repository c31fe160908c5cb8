#!/usr/bin/env python3
"""mmfake: a fake Mattermost server for mmigrate's integration tests and demo.

Python 3 standard library only.  It implements the subset of the Mattermost
REST API v4 that a migration needs (login, jobs, exports, resumable uploads,
imports, config, a few read endpoints for reconciliation), built to the
contract in docs/mattermost-api.md, plus runtime fault injection
through unauthenticated /__fake/* control endpoints.

Layout of this file (one module, top to bottom):
  constants and small helpers ...... ids, AppError, messages, JSON helpers
  Config ........................... the server config, masking, patching
  Workspace ........................ the in-memory data model and the seeds
  export_archive ................... builds a real bulk-export zip
  BulkImporter ..................... parses a bulk-import zip into a Workspace
  Faults ........................... runtime fault injection state
  RequestLog ....................... JSON-lines request log (no secrets)
  App .............................. sessions, jobs, uploads, all API handlers
  BodyReader / Handler ............. HTTP/1.1 transport (keep-alive, chunked,
                                     100-continue, Range, drops and cuts)
  main ............................. command line

Run `mmfake.py --help` and see README.md next to this file.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import copy
import datetime
import email.utils
import gzip
import hashlib
import hmac
import itertools
import http.server
import io
import json
import mimetypes
import os
import posixpath
import random
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import zipfile
import zlib

# ---------------------------------------------------------------------------
# Constants and small helpers
# ---------------------------------------------------------------------------

API_PREFIX = "/api/v4"
MIB = 1024 * 1024
MIN_FIRST_PART = 5 * MIB            # app/upload.go minFirstPartSize
MASK = "*" * 32                     # model.FakeSetting
INCOMPLETE_SUFFIX = ".tmp"          # app.IncompleteUploadSuffix
MAX_JSONL_LINE = 16 * MIB
MAX_POST_SIZE = 16383
DRAIN_LIMIT = 256 * 1024            # net/http maxPostHandlerReadBytes
PER_PAGE_DEFAULT = 60
PER_PAGE_MAX = 200

ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_B32_TO_MM = str.maketrans("abcdefghijklmnopqrstuvwxyz234567", ID_ALPHABET)
_SEED_EPOCH_MS = 1705312800000      # 2024-01-15T10:00:00Z, seeded timestamps start here


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(rng: random.Random | None = None) -> str:
    """A 26-char Mattermost id: base32 of 16 random bytes, custom alphabet."""
    raw = rng.getrandbits(128).to_bytes(16, "big") if rng else secrets.token_bytes(16)
    return base64.b32encode(raw).decode("ascii").lower().rstrip("=").translate(_B32_TO_MM)


def is_valid_id(value: str) -> bool:
    """model.IsValidId: exactly 26 letters or digits."""
    return len(value) == 26 and value.isalnum()


def parse_version(text: str) -> tuple:
    parts = []
    for piece in text.split(".")[:3]:
        m = re.match(r"\d+", piece)
        parts.append(int(m.group(0)) if m else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def go_int(text) -> int | None:
    """strconv.Atoi/ParseInt: optional sign, decimal digits, int64 range."""
    if not isinstance(text, str) or not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    if not -(1 << 63) <= value < (1 << 63):
        return None
    return value


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def field(obj: dict, name: str, default=None):
    """Go's encoding/json matches struct keys exactly first, then case-insensitively."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            return value
    return default


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def rfc3339_nano(ts: float | None = None) -> str:
    dt = datetime.datetime.fromtimestamp(ts if ts is not None else time.time(), datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def totp(secret_b32: str, at: float, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (SHA-1), as dgoogauth computes it."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at // step)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return f"{code:0{digits}d}"


# English texts for the error ids the fake produces.  Clients must branch on
# the id, never on these texts; they are here so bodies look like the real ones.
MESSAGES = {
    "api.context.session_expired.app_error": "Invalid or expired session, please login again.",
    "api.context.token_provided.app_error": "Session is not OAuth but token was provided in the query string.",
    "api.context.permissions.app_error": "You do not have the appropriate permissions.",
    "api.context.404.app_error": "Sorry, we could not find the page.",
    "api.context.invalid_body_param.app_error": "Invalid or missing {Name} in request body.",
    "api.context.invalid_url_param.app_error": "Invalid or missing {Name} parameter in request URL.",
    "api.context.invalid_param.app_error": "Invalid {Name} parameter.",
    "api.context.request_body_too_large.app_error": "Your request is too large to process.",
    "api.context.server_busy.app_error": "Server is busy, non-critical services are temporarily unavailable.",
    "api.user.login.invalid_credentials_email_username": "Enter a valid email or username and/or password.",
    "api.user.login.invalid_credentials_email": "Enter a valid email and/or password",
    "api.user.login.invalid_credentials_username": "Enter a valid username and/or password.",
    "api.user.login.invalid_credentials_sso": "Enter a valid email or username and/or password, or sign in using SSO.",
    "api.user.login.blank_pwd.app_error": "Password field must not be blank",
    "api.user.login.inactive.app_error": "Login failed because your account has been deactivated.  Please contact an administrator.",
    "api.user.login.bot_login_forbidden.app_error": "Bot login is forbidden.",
    "api.user.check_user_login_attempts.too_many.app_error": "Your account is locked because of too many failed password attempts. Please reset your password.",
    "mfa.validate_token.authenticate.app_error": "Invalid MFA token.",
    "api.user.check_user_mfa.bad_code.app_error": "Invalid MFA token.",
    "api.user.check_user_password.invalid.app_error": "Login failed because of invalid password",
    "app.user_access_token.disabled": "Personal access tokens are disabled on this server. Please contact your system administrator for details.",
    "api.job.unable_to_create_job.incorrect_job_type": "The job type of the job you are trying to create is invalid",
    "api.job.retrieve.nopermissions": "The job type of the job you are trying to retrieve is invalid",
    "model.job.is_valid.type.app_error": "Invalid job type.",
    "app.job.get.app_error": "Unable to get the job.",
    "jobs.request_cancellation.status.error": "Could not request cancellation for job that is not in a cancelable state.",
    "api.export.export_not_found.app_error": "Unable to find export file.",
    "app.eport.generate_presigned_url.featureflag.app_error": "This feature is restricted by a feature flag.",
    "app.eport.generate_presigned_url.config.app_error": "This feature requires ExportSettings.DedicatedExportStore to be enabled.",
    "app.eport.generate_presigned_url.notfound.app_error": "The export file was not found.",
    "api.file.cloud_upload.app_error": "Unable to upload file: Cloud file upload is not allowed.",
    "api.file.attachments.disabled.app_error": "File attachments have been disabled on this server.",
    "api.file.write_file.app_error": "Unable to write the file.",
    "api.upload.create.upload_too_large.app_error": "Unable to upload file. File is too large.",
    "app.upload.create.upload_too_large.app_error": "Unable to upload file. File is too large.",
    "api.upload.get_upload.forbidden.app_error": "Failed to get upload.",
    "app.upload.get.app_error": "Failed to get upload.",
    "api.upload.upload_data.invalid_content_length": "Invalid Content-Length.",
    "api.upload.upload_data.invalid_content_type": "Invalid Content-Type for multipart upload.",
    "api.upload.upload_data.multipart_error": "Failed to process multipart data.",
    "app.upload.upload_data.first_part_too_small.app_error": "Failed to upload data. First part must be at least {Size} Bytes.",
    "app.upload.upload_data.concurrent.app_error": "Unable to upload data from more than one request.",
    "api.user.get_uploads_for_user.forbidden.app_error": "Failed to get uploads.",
    "model.upload_session.is_valid.type.app_error": "Invalid value for Type.",
    "model.upload_session.is_valid.filename.app_error": "Invalid value for Filename.",
    "model.upload_session.is_valid.file_size.app_error": "Invalid value for FileSize.",
    "model.upload_session.is_valid.channel_id.app_error": "Invalid value for ChannelId.",
    "api.config.update_config.not_allowed_security.app_error": "Changing {Name} is not allowed for security reasons.",
    "api.config.update_config.clear_siteurl.app_error": "Site URL cannot be cleared.",
    "api.config.client.old_format.app_error": "New format for the client configuration is not supported yet. Please specify format=old in the query string.",
    "model.config.is_valid.max_file_size.app_error": "Invalid max file size for file settings. Must be a whole number greater than zero.",
    "model.config.is_valid.max_payload_size.app_error": "Invalid max payload size for service settings. Must be a whole number greater than zero.",
    "model.config.is_valid.webserver_security.app_error": "Invalid value for webserver mode.",
    "model.config.is_valid.rate_sec.app_error": "Invalid per sec for rate limit settings. Must be a positive number.",
    "model.config.is_valid.max_burst.app_error": "Maximum burst size must be greater than zero.",
    "app.team.get_by_name.missing.app_error": "Unable to find the existing team.",
    "app.team.get.find.app_error": "Unable to find the existing team.",
    "app.channel.get_by_name.missing.app_error": "Unable to find channel.",
    "app.channel.get.existing.app_error": "Unable to find the existing channel.",
    "app.user.get_by_username.app_error": "Unable to find an existing account matching your username for this team. This team may require an invite from the team owner to join.",
    "app.user.missing_account.const": "Unable to find the user.",
    "app.system.injected_fault.app_error": "Injected fault (mmfake).",
    # import worker
    "import_process.worker.do_job.missing_file": "Unable to process import: import_file parameter is missing.",
    "import_process.worker.do_job.file_exists": "Unable to process import: file does not exists.",
    "import_process.worker.do_job.open_file": "Unable to process import: failed to open file.",
    "import_process.worker.do_job.missing_jsonl": "Unable to process import: JSONL file is missing.",
    "extract_content.worker.do_job.invalid_input.from": "Invalid input: from.",
    "extract_content.worker.do_job.invalid_input.to": "Invalid input: to.",
}


def message_for(err_id: str, params: dict | None = None) -> str:
    text = MESSAGES.get(err_id)
    if text is None:
        # Bulk-import ids all read like "...import_post.user_not_found.error".
        words = err_id.replace("app.import.", "").replace(".error", "").replace(".app_error", "")
        text = "Import failed: " + words.replace("_", " ").replace(".", ": ")
    try:
        return text.format_map(params or {})
    except (KeyError, ValueError):
        return text


class ApiError(Exception):
    """A model.AppError on its way to the client."""

    def __init__(self, status: int, err_id: str, detail: str = "", params: dict | None = None):
        super().__init__(err_id)
        self.status = status
        self.id = err_id
        self.detail = detail
        self.message = message_for(err_id, params)

    def body(self, request_id: str, developer: bool, hardened: bool) -> bytes:
        if hardened and self.status >= 500:
            obj = {"id": "", "message": "Internal Server Error", "detailed_error": ""}
            if request_id:
                obj["request_id"] = request_id
            obj["status_code"] = 500
            return dumps(obj)
        obj = {"id": self.id, "message": self.message,
               "detailed_error": self.detail if developer else ""}
        if request_id:
            obj["request_id"] = request_id
        if self.status:
            obj["status_code"] = self.status
        return dumps(obj)


def invalid_body(name: str, detail: str = "") -> ApiError:
    return ApiError(400, "api.context.invalid_body_param.app_error", detail, {"Name": name})


def invalid_url(name: str) -> ApiError:
    return ApiError(400, "api.context.invalid_url_param.app_error", "", {"Name": name})


def forbidden(permission: str = "manage_system", user_id: str = "") -> ApiError:
    return ApiError(403, "api.context.permissions.app_error",
                    f"userId={user_id}, permission={permission}")


def decode_json_value(raw: bytes):
    """Like json.NewDecoder(r).Decode(&v): the first JSON value; trailing bytes ignored."""
    text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise ValueError("EOF")
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except RecursionError:
        raise ValueError("json: exceeded max depth") from None
    return value


def make_png(width: int, height: int, rng: random.Random) -> bytes:
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes(((x * 7 + rng.randrange(8)) & 255, (y * 5) & 255, ((x + y) * 3) & 255))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


MINI_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


# ---------------------------------------------------------------------------
# Config: the server configuration (GET /config, PUT /config/patch)
# ---------------------------------------------------------------------------

# Fields masked with 32 asterisks when read (model.Config.Sanitize).  The
# boolean says whether the field is masked even when empty.
SECRET_FIELDS = [
    (("LdapSettings", "BindPassword"), False),
    (("FileSettings", "PublicLinkSalt"), True),
    (("FileSettings", "AmazonS3SecretAccessKey"), False),
    (("EmailSettings", "SMTPPassword"), False),
    (("GitLabSettings", "Secret"), False),
    (("GoogleSettings", "Secret"), False),
    (("Office365Settings", "Secret"), False),
    (("OpenIdSettings", "Secret"), False),
    (("SqlSettings", "DataSource"), True),
    (("SqlSettings", "AtRestEncryptKey"), True),
    (("ElasticsearchSettings", "Password"), False),
    (("MessageExportSettings", "GlobalRelaySettings", "SMTPPassword"), False),
    (("ServiceSettings", "SplitKey"), False),
    (("CacheSettings", "RedisPassword"), False),
]

# Fields tagged cloud_restrictable: hidden from GET /config on Cloud, and
# silently left unchanged by patches on Cloud or with RestrictSystemAdmin.
RESTRICTED_FIELDS = [
    ("ServiceSettings", "ListenAddress"), ("ServiceSettings", "ReadTimeout"),
    ("ServiceSettings", "WriteTimeout"), ("ServiceSettings", "IdleTimeout"),
    ("ServiceSettings", "MaximumPayloadSizeBytes"), ("ServiceSettings", "WebserverMode"),
    ("ServiceSettings", "EnableLocalMode"), ("ServiceSettings", "LocalModeSocketLocation"),
    ("FileSettings", "DriverName"), ("FileSettings", "Directory"), ("FileSettings", "MaxFileSize"),
    ("FileSettings", "AmazonS3RequestTimeoutMilliseconds"), ("FileSettings", "AmazonS3SecretAccessKey"),
    ("FileSettings", "DedicatedExportStore"),
    ("JobSettings",), ("SqlSettings",), ("CacheSettings",),
    ("ImportSettings", "Directory"), ("ExportSettings", "Directory"), ("ComplianceSettings", "Directory"),
]


def default_config(max_file_size: int, local_socket: str | None, presign: bool) -> dict:
    oauth = {"Enable": False, "Secret": "", "Id": "", "Scope": "", "AuthEndpoint": "", "TokenEndpoint": "", "UserAPIEndpoint": ""}
    return {
        "ServiceSettings": {
            "SiteURL": "", "ListenAddress": ":8065", "ReadTimeout": 300, "WriteTimeout": 300,
            "IdleTimeout": 60, "MaximumLoginAttempts": 10, "EnableUserAccessTokens": True,
            "EnableMultifactorAuthentication": True, "EnforceMultifactorAuthentication": False,
            "SessionLengthWebInHours": 720, "WebserverMode": "gzip", "EnableDeveloper": False,
            "ExperimentalEnableHardenedMode": False, "MaximumPayloadSizeBytes": 300000,
            "MaximumURLLength": 2048, "EnableLocalMode": bool(local_socket),
            "LocalModeSocketLocation": local_socket or "/var/tmp/mattermost_local.socket",
            "SplitKey": "", "TrustedProxyIPHeader": [], "EnableAPIv3": False,
        },
        "TeamSettings": {"SiteName": "Mattermost", "MaxUsersPerTeam": 50, "EnableOpenServer": False,
                         "MaxChannelsPerTeam": 2000},
        "SqlSettings": {"DriverName": "postgres",
                        "DataSource": "postgres://mmuser:mostest@localhost/mattermost_test?sslmode=disable",
                        "DataSourceReplicas": [], "AtRestEncryptKey": "pqs3cqpzbbfjtqpo6akm8dwodtkk7mo4",
                        "MaxOpenConns": 300},
        "FileSettings": {"EnableFileAttachments": True, "MaxFileSize": max_file_size,
                         "DriverName": "local", "Directory": "./data/",
                         "PublicLinkSalt": "ey8u4f5rsmmtr5rr3r4qw9pyzb5ef8u4",
                         "AmazonS3AccessKeyId": "", "AmazonS3SecretAccessKey": "", "AmazonS3Bucket": "",
                         "AmazonS3RequestTimeoutMilliseconds": 30000, "ExtractContent": True,
                         "DedicatedExportStore": presign, "ExportAmazonS3PresignExpiresSeconds": 21600},
        "EmailSettings": {"EnableSignUpWithEmail": True, "EnableSignInWithEmail": True,
                          "EnableSignInWithUsername": True, "RequireEmailVerification": False,
                          "SMTPUsername": "", "SMTPPassword": "smtp-secret", "SMTPServer": "localhost"},
        "RateLimitSettings": {"Enable": False, "PerSec": 10, "MaxBurst": 100, "MemoryStoreSize": 10000,
                              "VaryByRemoteAddr": True, "VaryByUser": False, "VaryByHeader": ""},
        "PrivacySettings": {"ShowEmailAddress": True, "ShowFullName": True},
        "LdapSettings": {"Enable": False, "BindUsername": "", "BindPassword": "ldap-bind-secret"},
        "GitLabSettings": dict(oauth), "GoogleSettings": dict(oauth),
        "Office365Settings": dict(oauth), "OpenIdSettings": dict(oauth),
        "SamlSettings": {"Enable": False},
        "ElasticsearchSettings": {"EnableIndexing": False, "Username": "elastic", "Password": "changeme"},
        "MessageExportSettings": {"EnableExport": False, "GlobalRelaySettings": {"SMTPUsername": "", "SMTPPassword": ""}},
        "CacheSettings": {"CacheType": "lru", "RedisAddress": "", "RedisPassword": ""},
        "ImportSettings": {"Directory": "./import", "RetentionDays": 30},
        "ExportSettings": {"Directory": "./export", "RetentionDays": 30},
        "JobSettings": {"RunJobs": True, "RunScheduler": True, "CleanupJobsThresholdDays": -1},
        "ExperimentalSettings": {"RestrictSystemAdmin": False, "ClientSideCertEnable": False},
        "PluginSettings": {"Enable": True, "EnableUploads": False,
                           "MarketplaceURL": "https://api.integrations.mattermost.com"},
        "ComplianceSettings": {"Enable": False, "Directory": "./data/"},
        "FeatureFlags": {"EnableExportDirectDownload": presign},
    }


def _walk(obj: dict, path: tuple):
    for key in path[:-1]:
        obj = obj.get(key)
        if not isinstance(obj, dict):
            return None, None
    return obj, path[-1]


class Config:
    """The config object, guarded by a lock.  get() reads one value."""

    def __init__(self, data: dict, cloud: bool):
        self._data = data
        self._lock = threading.Lock()
        self.cloud = cloud

    def get(self, *path):
        with self._lock:
            obj = self._data
            for key in path:
                obj = obj[key]
            return copy.deepcopy(obj)

    def raw(self) -> dict:
        with self._lock:
            return copy.deepcopy(self._data)

    def sanitized(self) -> dict:
        data = self.raw()
        for path, always in SECRET_FIELDS:
            parent, key = _walk(data, path)
            if parent is None or key not in parent:
                continue
            if always or parent[key]:
                parent[key] = MASK
        reps = data.get("SqlSettings", {}).get("DataSourceReplicas")
        if isinstance(reps, list):
            data["SqlSettings"]["DataSourceReplicas"] = [MASK for _ in reps]
        if self.cloud:
            for path in RESTRICTED_FIELDS:
                parent, key = _walk(data, path) if len(path) > 1 else (data, path[0])
                if parent is not None:
                    parent.pop(key, None)
        return data

    def _restricted(self, path: tuple) -> bool:
        restrict = self.cloud or self._data["ExperimentalSettings"]["RestrictSystemAdmin"]
        return restrict and any(path[:len(r)] == r for r in RESTRICTED_FIELDS)

    @staticmethod
    def _find_key(obj: dict, key: str):
        if key in obj:
            return key
        folded = key.casefold()
        for existing in obj:
            if existing.casefold() == folded:
                return existing
        return None

    def _check_types(self, base: dict, patch, path=()):
        """Go decodes the body into model.Config: a type mismatch fails the decode."""
        if not isinstance(patch, dict):
            raise invalid_body("config", "json: cannot unmarshal into Go value of type model.Config")
        for key, value in patch.items():
            real = self._find_key(base, key)
            if real is None or value is None:
                continue
            current = base[real]
            where = ".".join(path + (real,))
            if isinstance(current, dict):
                self._check_types(current, value, path + (real,))
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise invalid_body("config", f"json: cannot unmarshal into field {where} of type bool")
            elif is_int(current):
                if not is_int(value):
                    raise invalid_body("config", f"json: cannot unmarshal into field {where} of type int64")
            elif isinstance(current, str):
                if not isinstance(value, str):
                    raise invalid_body("config", f"json: cannot unmarshal into field {where} of type string")
            elif isinstance(current, list):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise invalid_body("config", f"json: cannot unmarshal into field {where} of type []string")

    def _merge(self, base: dict, patch: dict, path=()):
        secret_paths = {p for p, _ in SECRET_FIELDS}
        for key, value in patch.items():
            real = self._find_key(base, key)
            if real is None or value is None:
                continue
            full = path + (real,)
            if isinstance(base[real], dict):
                self._merge(base[real], value, full)
                continue
            if self._restricted(full):
                continue
            if full in secret_paths and value == MASK:
                continue  # a masked value sent back keeps the stored secret
            if full == ("SqlSettings", "DataSourceReplicas") and isinstance(value, list):
                old = base[real]
                value = [old[i] if v == MASK and i < len(old) else v for i, v in enumerate(value)]
            base[real] = copy.deepcopy(value)

    @staticmethod
    def _validate(cfg: dict):
        fs, ss, rl = cfg["FileSettings"], cfg["ServiceSettings"], cfg["RateLimitSettings"]
        if fs["MaxFileSize"] <= 0:
            raise ApiError(400, "model.config.is_valid.max_file_size.app_error")
        if ss["MaximumPayloadSizeBytes"] <= 0:
            raise ApiError(400, "model.config.is_valid.max_payload_size.app_error")
        if ss["WebserverMode"] not in ("gzip", "uncompressed", "disabled"):
            raise ApiError(400, "model.config.is_valid.webserver_security.app_error")
        if rl["PerSec"] <= 0:
            raise ApiError(400, "model.config.is_valid.rate_sec.app_error")
        if rl["MaxBurst"] <= 0:
            raise ApiError(400, "model.config.is_valid.max_burst.app_error")

    def patch(self, patch, full_replace: bool = False, trusted: bool = False) -> None:
        """PUT /config/patch (or PUT /config when full_replace).  trusted skips the
        security and Cloud restrictions (used by /__fake/config)."""
        with self._lock:
            self._check_types(self._data, patch)
            if not trusted:
                self._check_security(patch, full_replace)
            new = copy.deepcopy(self._data)
            if trusted:
                saved_cloud, self.cloud = self.cloud, False
                saved_restrict = new["ExperimentalSettings"]["RestrictSystemAdmin"]
                self._data["ExperimentalSettings"]["RestrictSystemAdmin"] = False
                try:
                    self._merge(new, patch)
                finally:
                    self.cloud = saved_cloud
                    self._data["ExperimentalSettings"]["RestrictSystemAdmin"] = saved_restrict
            else:
                self._merge(new, patch)
            if full_replace and not trusted:
                # PUT /config always keeps these, whatever the body says.
                new["ImportSettings"]["Directory"] = self._data["ImportSettings"]["Directory"]
                new["PluginSettings"]["EnableUploads"] = self._data["PluginSettings"]["EnableUploads"]
            self._validate(new)
            self._data = new

    def _check_security(self, patch: dict, full_replace: bool):
        def sub(obj, *keys):
            for key in keys:
                if not isinstance(obj, dict):
                    return None
                real = self._find_key(obj, key)
                if real is None:
                    return None
                obj = obj[real]
            return obj

        site = sub(patch, "ServiceSettings", "SiteURL")
        if full_replace and site == "" and self._data["ServiceSettings"]["SiteURL"]:
            raise ApiError(400, "api.config.update_config.clear_siteurl.app_error")
        if full_replace:
            return
        checks = [(("ImportSettings", "Directory"), "ImportSettings.Directory"),
                  (("PluginSettings", "EnableUploads"), "PluginSettings.EnableUploads")]
        for path, name in checks:
            value = sub(patch, *path)
            current = self._data[path[0]][path[1]]
            if value is not None and value != current:
                raise ApiError(403, "api.config.update_config.not_allowed_security.app_error",
                               "", {"Name": name})
        market = sub(patch, "PluginSettings", "MarketplaceURL")
        if (market is not None and market != self._data["PluginSettings"]["MarketplaceURL"]
                and not self._data["PluginSettings"]["EnableUploads"]):
            raise ApiError(403, "api.config.update_config.not_allowed_security.app_error",
                           "", {"Name": "PluginSettings.MarketplaceURL"})
        if self.cloud and sub(patch, "ComplianceSettings", "Directory") is not None:
            raise ApiError(403, "api.config.update_config.not_allowed_security.app_error",
                           "", {"Name": "ComplianceSettings.Directory"})


# ---------------------------------------------------------------------------
# Workspace: the in-memory data model (teams, channels, users, posts, files)
# ---------------------------------------------------------------------------

DEFAULT_NOTIFY = {"channel": "true", "comments": "never", "desktop": "mention", "desktop_sound": "true",
                  "email": "true", "first_name": "false", "mention_keys": "", "push": "mention",
                  "push_status": "away"}


def dm_name(user_ids) -> str:
    ids = sorted(user_ids)
    if len(ids) == 1:
        ids = ids * 2
    return "__".join(ids)


def gm_name(user_ids) -> str:
    digest = hashlib.sha1()
    for uid in sorted(user_ids):
        digest.update(uid.encode())
    return digest.hexdigest()


class Workspace:
    """All workspace data of one fake server.  Callers hold App.lock."""

    def __init__(self, files_root: str):
        self.files_root = files_root
        self.users: dict[str, dict] = {}
        self.teams: dict[str, dict] = {}
        self.channels: dict[str, dict] = {}
        self.posts: dict[str, dict] = {}
        self.files: dict[str, dict] = {}
        self.roles: dict[str, dict] = {}
        self.schemes: dict[str, dict] = {}
        self.emojis: dict[str, dict] = {}
        self.post_index: dict[tuple, str] = {}   # (channel, root, create_at, message) -> post id

    # -- lookups --------------------------------------------------------
    def user_by_username(self, username: str):
        name = username.lower()
        return next((u for u in self.users.values() if u["username"] == name), None)

    def user_by_email(self, email: str):
        mail = email.lower()
        return next((u for u in self.users.values() if u["email"].lower() == mail), None)

    def team_by_name(self, name: str):
        return next((t for t in self.teams.values() if t["name"] == name), None)

    def channel_by_name(self, team_id: str, name: str):
        return next((c for c in self.channels.values()
                     if c["team_id"] == team_id and c["name"] == name and c["type"] in "OP"), None)

    def direct_channel(self, member_ids) -> dict | None:
        wanted = frozenset(member_ids)
        return next((c for c in self.channels.values()
                     if c["type"] in "DG" and frozenset(c["members"]) == wanted), None)

    def channel_posts(self, channel_id: str) -> list:
        return sorted((p for p in self.posts.values()
                       if p["channel_id"] == channel_id and not p["delete_at"]),
                      key=lambda p: (p["create_at"], p["id"]))

    # -- creation -------------------------------------------------------
    def add_user(self, username: str, email: str, roles: str = "system_user", rng=None, **extra) -> dict:
        ts = extra.pop("create_at", now_ms())
        user = {"id": new_id(rng), "username": username.lower(), "email": email, "roles": roles,
                "password": None, "first_name": "", "last_name": "", "nickname": "", "position": "",
                "locale": "en", "create_at": ts, "update_at": ts, "delete_at": 0,
                "auth_service": "", "auth_data": "", "mfa_active": False, "mfa_secret": "",
                "failed_attempts": 0, "is_bot": False, "bot_owner": "", "profile_image": None,
                "email_verified": True, "notify_props": dict(DEFAULT_NOTIFY)}
        user.update(extra)
        self.users[user["id"]] = user
        return user

    def add_team(self, name: str, display_name: str, team_type: str = "O", rng=None, **extra) -> dict:
        ts = extra.pop("create_at", now_ms())
        team = {"id": new_id(rng), "name": name, "display_name": display_name, "type": team_type,
                "description": "", "allow_open_invite": team_type == "O", "create_at": ts,
                "update_at": ts, "delete_at": 0, "invite_id": new_id(rng), "members": {},
                "scheme": None}
        team.update(extra)
        self.teams[team["id"]] = team
        return team

    def add_channel(self, team_id: str, name: str, display_name: str, ch_type: str = "O",
                    rng=None, **extra) -> dict:
        ts = extra.pop("create_at", now_ms())
        chan = {"id": new_id(rng), "team_id": team_id, "name": name, "display_name": display_name,
                "type": ch_type, "header": "", "purpose": "", "create_at": ts, "update_at": ts,
                "delete_at": 0, "creator_id": "", "members": {}, "scheme": None}
        chan.update(extra)
        self.channels[chan["id"]] = chan
        return chan

    def add_direct_channel(self, member_ids: list, rng=None, create_at=None) -> dict:
        members = sorted(set(member_ids))
        if len(members) <= 2:
            chan = self.add_channel("", dm_name(members), "", "D", rng, create_at=create_at or now_ms())
        else:
            names = sorted(self.users[u]["username"] for u in members)
            chan = self.add_channel("", gm_name(members), ", ".join(names), "G", rng,
                                    create_at=create_at or now_ms())
        for uid in members:
            chan["members"][uid] = "channel_user"
        return chan

    def add_post(self, channel_id: str, user_id: str, message: str, create_at: int,
                 root_id: str = "", rng=None, **extra) -> dict:
        post = {"id": new_id(rng), "channel_id": channel_id, "user_id": user_id, "root_id": root_id,
                "message": message, "type": "", "props": {}, "create_at": create_at,
                "update_at": create_at, "edit_at": 0, "delete_at": 0, "is_pinned": False,
                "reactions": [], "file_ids": [], "flagged_by": []}
        post.update(extra)
        self.posts[post["id"]] = post
        self.post_index[(channel_id, root_id, create_at, message)] = post["id"]
        return post

    def store_file(self, post: dict, name: str, data: bytes, rng=None, create_at=None) -> dict:
        chan = self.channels[post["channel_id"]]
        file_id = new_id(rng)
        ts = create_at or post["create_at"]
        day = time.strftime("%Y%m%d", time.gmtime(ts / 1000))
        team = chan["team_id"] or "noteam"
        rel = f"{day}/teams/{team}/channels/{chan['id']}/users/{post['user_id']}/{file_id}/{name}"
        full = os.path.join(self.files_root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(data)
        info = {"id": file_id, "post_id": post["id"], "channel_id": chan["id"],
                "user_id": post["user_id"], "name": name, "path": rel, "size": len(data),
                "mime_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                "create_at": ts, "sha256": hashlib.sha256(data).hexdigest()}
        self.files[file_id] = info
        post["file_ids"].append(file_id)
        return info

    def store_profile_image(self, user: dict, data: bytes) -> None:
        rel = f"users/{user['id']}/profile.png"
        full = os.path.join(self.files_root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(data)
        user["profile_image"] = rel

    # -- removal (for /__fake/model/*) -----------------------------------
    def remove_post(self, post_id: str) -> None:
        post = self.posts.pop(post_id, None)
        if not post:
            return
        self.post_index.pop((post["channel_id"], post["root_id"], post["create_at"], post["message"]), None)
        for fid in post["file_ids"]:
            self.files.pop(fid, None)
        for reply in [p for p in self.posts.values() if p["root_id"] == post_id]:
            self.remove_post(reply["id"])

    def remove_channel(self, channel_id: str) -> None:
        for post in [p for p in self.posts.values() if p["channel_id"] == channel_id]:
            self.remove_post(post["id"])
        self.channels.pop(channel_id, None)

    def remove_team(self, team_id: str) -> None:
        for chan in [c for c in self.channels.values() if c["team_id"] == team_id]:
            self.remove_channel(chan["id"])
        self.teams.pop(team_id, None)

    def remove_user(self, user_id: str) -> None:
        for post in [p for p in self.posts.values() if p["user_id"] == user_id]:
            self.remove_post(post["id"])
        for holder in list(self.teams.values()) + list(self.channels.values()):
            holder["members"].pop(user_id, None)
        self.users.pop(user_id, None)

    # -- summary for /__fake/model ----------------------------------------
    def channel_counts(self, channel_id: str) -> dict:
        posts = self.channel_posts(channel_id)
        roots = [p for p in posts if not p["root_id"]]
        return {"posts": len(posts), "root_posts": len(roots), "replies": len(posts) - len(roots),
                "attachments": sum(len(p["file_ids"]) for p in posts),
                "reactions": sum(len(p["reactions"]) for p in posts)}

    def summary(self) -> dict:
        teams = []
        for team in sorted(self.teams.values(), key=lambda t: t["name"]):
            chans = []
            for chan in sorted((c for c in self.channels.values() if c["team_id"] == team["id"]),
                               key=lambda c: c["name"]):
                item = {"name": chan["name"], "display_name": chan["display_name"], "type": chan["type"],
                        "archived": bool(chan["delete_at"]), "members": len(chan["members"])}
                item.update(self.channel_counts(chan["id"]))
                chans.append(item)
            teams.append({"name": team["name"], "display_name": team["display_name"], "type": team["type"],
                          "members": len(team["members"]), "channels": chans})
        users = [{"username": u["username"], "email": u["email"], "roles": u["roles"],
                  "deactivated": bool(u["delete_at"]), "is_bot": u["is_bot"],
                  "has_profile_image": bool(u["profile_image"])}
                 for u in sorted(self.users.values(), key=lambda u: u["username"])]
        directs = []
        for chan in self.channels.values():
            if chan["type"] not in "DG":
                continue
            names = sorted(self.users[u]["username"] for u in chan["members"] if u in self.users)
            item = {"type": chan["type"], "members": names}
            item.update(self.channel_counts(chan["id"]))
            directs.append(item)
        directs.sort(key=lambda d: d["members"])
        team_chans = [c for t in teams for c in t["channels"]]
        counts = {
            "teams": len(teams), "channels": len(team_chans),
            "archived_channels": sum(1 for c in team_chans if c["archived"]),
            "users": len(users), "posts": sum(c["posts"] for c in team_chans),
            "root_posts": sum(c["root_posts"] for c in team_chans),
            "replies": sum(c["replies"] for c in team_chans),
            "direct_channels": len(directs), "direct_posts": sum(d["posts"] for d in directs),
            "attachments": sum(c["attachments"] for c in team_chans) + sum(d["attachments"] for d in directs),
            "reactions": sum(c["reactions"] for c in team_chans) + sum(d["reactions"] for d in directs),
            "roles": len(self.roles), "schemes": len(self.schemes), "emojis": len(self.emojis),
        }
        return {"counts": counts, "teams": teams, "users": users, "direct_channels": directs,
                "roles": sorted(self.roles), "emojis": sorted(self.emojis)}


# -- seeds ----------------------------------------------------------------

_SEED_MESSAGES = [
    "Morning all, standup in five minutes.", "Has anyone looked at the flaky build?",
    "Pushed a fix for the login redirect.", "Reminder: retro is on Thursday.",
    "The staging database is back up.", "Can someone review my pull request?",
    "Lunch order is in the channel header.", "Deploy went out without issues.",
    "I'll be out tomorrow afternoon.", "We should document the release checklist.",
    "Incident closed, write-up to follow.", "Here are the numbers from last quarter.",
    "Please rotate the shared credentials by Friday.", "Welcome to the team!",
    "The new dashboard is live: check it out.", "Who owns the nightly export job?",
    "Unicode check: café, naïve, 日本語, emoji :tada:", "Backlog grooming notes attached.",
]
_SEED_REPLIES = ["Thanks!", "On it.", "Looks good to me.", "+1", "Can you share more details?",
                 "Done, please verify.", "I can take that one."]


def seed_workspace(ws: Workspace, seed: str, users: dict) -> None:
    """Fill a workspace.  users maps 'admin'/'alice'/'mfauser' to existing users."""
    if seed == "none":
        return
    rng = random.Random("mmfake-seed-" + seed)
    ts = _SEED_EPOCH_MS

    def mk_user(name, first, last, **extra):
        return ws.add_user(name, f"{name}@example.com", rng=rng, first_name=first, last_name=last,
                           create_at=ts, **extra)

    admin, alice = users["admin"], users["alice"]
    bob = mk_user("bob", "Bob", "Builder", position="Engineer")
    carol = mk_user("carol", "Carol", "Danvers", nickname="cdanvers")
    dave = mk_user("dave", "Dave", "Gone", delete_at=ts + 86400000)
    erin = mk_user("erin", "Erin", "Ops", roles="system_user")
    ws.store_profile_image(alice, make_png(16, 16, rng))
    ws.store_profile_image(bob, make_png(16, 16, rng))

    eng = ws.add_team("eng", "Engineering", "O", rng, description="Engineering team", create_at=ts)
    ops = ws.add_team("ops", "Operations", "I", rng, description="Ops (invite only)",
                      allow_open_invite=False, create_at=ts)
    for team, members in ((eng, [admin, alice, bob, carol, dave, erin]), (ops, [admin, alice, erin])):
        for user in members:
            team["members"][user["id"]] = "team_user team_admin" if user is admin else "team_user"

    def mk_chan(team, name, display, ctype, members, **extra):
        chan = ws.add_channel(team["id"], name, display, ctype, rng, create_at=ts,
                              creator_id=admin["id"], **extra)
        for user in members:
            chan["members"][user["id"]] = "channel_user"
        return chan

    eng_all = [admin, alice, bob, carol, dave, erin]
    ops_all = [admin, alice, erin]
    channels = [
        mk_chan(eng, "town-square", "Town Square", "O", eng_all),
        mk_chan(eng, "off-topic", "Off-Topic", "O", eng_all, purpose="Non-work banter"),
        mk_chan(eng, "backend", "Backend", "P", [admin, alice, bob], header="Private backend channel"),
        mk_chan(eng, "old-project", "Old Project", "O", [alice, carol], delete_at=ts + 3600000),
        mk_chan(ops, "town-square", "Town Square", "O", ops_all),
        mk_chan(ops, "off-topic", "Off-Topic", "O", ops_all),
        mk_chan(ops, "incidents", "Incidents", "O", [admin, alice, erin], purpose="Incident coordination"),
    ]

    n_posts = {"small": 44, "medium": 420, "large": 900}[seed]
    clock = [ts + 3600000]

    def tick():
        clock[0] += rng.randrange(30000, 600000)
        return clock[0]

    roots = []
    for i in range(n_posts):
        chan = channels[i % len(channels)]
        member_ids = [uid for uid in chan["members"] if uid != dave["id"] or i % 11 == 0]
        author = ws.users[rng.choice(sorted(member_ids))]
        post = ws.add_post(chan["id"], author["id"], _SEED_MESSAGES[i % len(_SEED_MESSAGES)] + f" (#{i})",
                           tick(), rng=rng, is_pinned=(i % 17 == 3))
        roots.append(post)
        if i % 5 == 1:
            reactor = ws.users[rng.choice(sorted(chan["members"]))]
            post["reactions"].append({"user_id": reactor["id"], "emoji_name": rng.choice(["+1", "tada", "eyes"]),
                                      "create_at": post["create_at"] + 1000})
        if i % 7 == 2:
            for j in range(1 + i % 3):
                replier = ws.users[rng.choice(sorted(chan["members"]))]
                ws.add_post(chan["id"], replier["id"], _SEED_REPLIES[(i + j) % len(_SEED_REPLIES)],
                            post["create_at"] + 60000 * (j + 1), root_id=post["id"], rng=rng)

    # Attachments with real bytes.
    ws.store_file(roots[0], "diagram.png", make_png(48, 32, rng), rng)
    ws.store_file(roots[3], "notes.txt", ("Meeting notes\n" + "- item\n" * 40).encode(), rng)
    ws.store_file(roots[9], "report.pdf", MINI_PDF, rng)
    if seed in ("medium", "large"):
        count, size = (8, 900 * 1024) if seed == "medium" else (40, MIB)
        for k in range(count):
            ws.store_file(roots[(k * 13 + 5) % len(roots)], f"capture-{k}.mp4", rng.randbytes(size), rng)

    # A DM and a group channel with direct posts (one reply, one attachment).
    dm = ws.add_direct_channel([alice["id"], bob["id"]], rng, create_at=ts)
    gm = ws.add_direct_channel([alice["id"], bob["id"], carol["id"]], rng, create_at=ts)
    for k, (chan, who) in enumerate([(dm, alice), (dm, bob), (dm, alice), (gm, carol), (gm, alice), (gm, bob)]):
        post = ws.add_post(chan["id"], who["id"], f"Direct message {k}: {_SEED_REPLIES[k % len(_SEED_REPLIES)]}",
                           tick(), rng=rng)
        if k == 0:
            ws.add_post(chan["id"], bob["id"], "Reply in a DM", post["create_at"] + 5000,
                        root_id=post["id"], rng=rng)
            ws.store_file(post, "dm-photo.png", make_png(20, 20, rng), rng)


# ---------------------------------------------------------------------------
# Export: builds a real bulk-export archive (section 8 of the API contract)
# ---------------------------------------------------------------------------

SEED_ROLES = {
    "system_admin": ["manage_system", "manage_jobs", "read_jobs", "create_user_access_token"],
    "system_user": ["create_team", "list_public_teams", "join_public_teams"],
    "team_admin": ["manage_team", "remove_user_from_team"],
    "team_user": ["list_team_channels", "join_public_channels", "read_public_channel"],
    "channel_admin": ["manage_channel_roles"],
    "channel_user": ["read_channel", "create_post", "upload_file"],
}


def _true(data: dict | None, key: str) -> bool:
    return bool(data) and data.get(key) == "true"


def _reactions(ws: Workspace, post: dict):
    return [{"user": ws.users[r["user_id"]]["username"], "emoji_name": r["emoji_name"],
             "create_at": r["create_at"]} for r in post["reactions"] if r["user_id"] in ws.users]


def export_snapshot(ws: Workspace, opts: dict | None, version: tuple) -> tuple:
    """Under App.lock: the JSONL lines, the files to add and the counters."""
    attachments = _true(opts, "include_attachments")
    archived = _true(opts, "include_archived_channels") and version >= (9, 1, 0)
    pictures = _true(opts, "include_profile_pictures") and version >= (9, 0, 0)
    roles = _true(opts, "include_roles_and_schemes") and version >= (9, 8, 0)
    lines, files = [], []
    counters = dict.fromkeys(["teams", "channels", "users", "bots", "posts", "emojis", "direct_channels",
                              "direct_posts", "attachments", "profile_pictures", "roles",
                              "team_schemes", "channel_schemes"], 0)

    lines.append({"type": "version", "version": 1,
                  "info": {"generator": "mattermost-server",
                           "version": "%d.%d.%d (abcdef, enterprise: true)" % version,
                           "created": rfc3339_nano()}})
    if roles:
        names = sorted(set(SEED_ROLES) | set(ws.roles))
        for name in names:
            perms = ws.roles.get(name, {}).get("permissions", SEED_ROLES.get(name, []))
            lines.append({"type": "role", "role": {"name": name, "display_name": name.replace("_", " ").title(),
                                                   "description": "", "permissions": perms,
                                                   "scheme_managed": name not in ("system_admin", "system_user")}})
            counters["roles"] += 1

    teams = sorted((t for t in ws.teams.values() if not t["delete_at"]), key=lambda t: t["name"])
    for team in teams:
        item = {"name": team["name"], "display_name": team["display_name"], "type": team["type"]}
        if team["description"]:
            item["description"] = team["description"]
        item["allow_open_invite"] = team["allow_open_invite"]
        lines.append({"type": "team", "team": item})
        counters["teams"] += 1

    exported = {}
    for team in teams:
        for chan in sorted((c for c in ws.channels.values() if c["team_id"] == team["id"] and c["type"] in "OP"),
                           key=lambda c: c["name"]):
            if chan["delete_at"] and not archived:
                continue
            exported[chan["id"]] = (team, chan)
            lines.append({"type": "channel", "channel": {
                "team": team["name"], "name": chan["name"], "display_name": chan["display_name"],
                "type": chan["type"], "header": chan["header"], "purpose": chan["purpose"],
                "deleted_at": chan["delete_at"]}})
            counters["channels"] += 1

    for user in sorted(ws.users.values(), key=lambda u: u["username"]):
        if user["is_bot"]:
            if version >= (10, 3, 0):
                owner = ws.users.get(user["bot_owner"])
                lines.append({"type": "bot", "bot": {"username": user["username"],
                                                     "owner": owner["username"] if owner else "",
                                                     "display_name": user["first_name"],
                                                     "delete_at": user["delete_at"]}})
                counters["bots"] += 1
            continue
        item = {"username": user["username"], "email": user["email"]}
        if user["auth_service"]:
            item["auth_service"] = user["auth_service"]
            item["auth_data"] = user["auth_data"]
        for key in ("nickname", "first_name", "last_name", "position"):
            item[key] = user[key]
        item["roles"] = user["roles"]
        item["locale"] = user["locale"]
        if user["delete_at"]:
            item["delete_at"] = user["delete_at"]
        if pictures and user["profile_image"]:
            item["profile_image"] = user["profile_image"]
            files.append(("data/" + user["profile_image"], user["profile_image"]))
            counters["profile_pictures"] += 1
        memberships = []
        for team in teams:
            if user["id"] not in team["members"]:
                continue
            chans = [{"name": c["name"], "roles": c["members"][user["id"]],
                      "notify_props": {"desktop": "default", "mobile": "default", "mark_unread": "all"},
                      "favorite": False}
                     for (t, c) in exported.values() if t is team and user["id"] in c["members"]]
            memberships.append({"name": team["name"], "roles": team["members"][user["id"]], "channels": chans})
        item["teams"] = memberships
        item["notify_props"] = {"desktop": "mention", "desktop_sound": "true", "email": "true",
                                "mobile": "mention", "mobile_push_status": "away", "channel": "true",
                                "comments": "never", "mention_keys": ""}
        lines.append({"type": "user", "user": item})
        counters["users"] += 1

    def post_body(post: dict) -> dict:
        body = {"user": ws.users[post["user_id"]]["username"], "message": post["message"],
                "create_at": post["create_at"]}
        if post["type"]:
            body["type"] = post["type"]
        if post["props"]:
            body["props"] = post["props"]
        if post["edit_at"]:
            body["edit_at"] = post["edit_at"]
        body["is_pinned"] = post["is_pinned"]
        reactions = _reactions(ws, post)
        if reactions:
            body["reactions"] = reactions
        if attachments and post["file_ids"]:
            body["attachments"] = []
            for fid in post["file_ids"]:
                info = ws.files.get(fid)
                if info:
                    body["attachments"].append({"path": info["path"]})
                    files.append(("data/" + info["path"], info["path"]))
                    counters["attachments"] += 1
        return body

    def with_replies(post: dict) -> dict:
        body = post_body(post)
        replies = [post_body(r) for r in ws.channel_posts(post["channel_id"]) if r["root_id"] == post["id"]]
        if replies:
            body["replies"] = replies
        return body

    for chan_id, (team, chan) in exported.items():
        for post in ws.channel_posts(chan_id):
            if post["root_id"] or post["user_id"] not in ws.users:
                continue
            body = {"team": team["name"], "channel": chan["name"]}
            body.update(with_replies(post))
            lines.append({"type": "post", "post": body})
            counters["posts"] += 1

    directs = [c for c in ws.channels.values() if c["type"] in "DG"]
    directs.sort(key=lambda c: (c["create_at"], c["id"]))
    for chan in directs:
        names = sorted(ws.users[u]["username"] for u in chan["members"] if u in ws.users)
        if chan["type"] == "D" and len(names) == 1:
            names = names * 2   # a self-DM lists the user twice
        item = {"members": names}
        if version >= (9, 5, 0):
            item["participants"] = [{"username": n} for n in names]
        item["header"] = chan["header"]
        lines.append({"type": "direct_channel", "direct_channel": item})
        counters["direct_channels"] += 1
    for chan in directs:
        names = sorted(ws.users[u]["username"] for u in chan["members"] if u in ws.users)
        if chan["type"] == "D" and len(names) == 1:
            names = names * 2
        for post in ws.channel_posts(chan["id"]):
            if post["root_id"] or post["user_id"] not in ws.users:
                continue
            body = {"channel_members": names}
            body.update(with_replies(post))
            lines.append({"type": "direct_post", "direct_post": body})
            counters["direct_posts"] += 1

    jsonl = b"".join(dumps(line) + b"\n" for line in lines)
    return jsonl, files, counters


def write_export_zip(out, jsonl: bytes, files: list, files_root: str, pause=None) -> int:
    """import.jsonl first and deflated; data/... entries stored.  pause() is called
    between the two halves so an in-progress export is visibly incomplete."""
    zf = zipfile.ZipFile(out, "w", allowZip64=True)
    try:
        info = zipfile.ZipInfo("import.jsonl", time.gmtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, jsonl)
        out.flush()
        if pause:
            pause()
        seen, warnings = set(), []
        for arcname, rel in files:
            if arcname in seen:
                continue
            seen.add(arcname)
            src = os.path.join(files_root, rel)
            if os.path.exists(src):
                zf.write(src, arcname, compress_type=zipfile.ZIP_STORED)
            else:
                warnings.append(f"Unable to read file {rel}: file does not exist")
        if warnings:
            zf.writestr("warnings.txt", "\n".join(warnings) + "\n")
    except BaseException:
        zf._didModify = False   # a failed export leaves a truncated file: no central directory
        raise
    finally:
        zf.close()
    out.flush()
    return len(warnings)


# ---------------------------------------------------------------------------
# Import: parses a bulk-import archive and applies it to a Workspace
# ---------------------------------------------------------------------------

TEAM_NAME_RE = re.compile(r"^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$")
RESERVED_TEAM_PREFIXES = ("admin", "api", "channel", "claim", "error", "files", "help", "landing", "login",
                          "mfa", "oauth", "plug", "plugins", "post", "signup", "boards", "playbooks")
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
USERNAME_RE = re.compile(r"^[a-z0-9.\-_]+$")
RESTRICTED_USERNAMES = {"all", "channel", "matterbot", "system"}
AUTH_SERVICES = {"", "email", "gitlab", "saml", "ldap", "google", "office365", "openid"}
BUILTIN_ROLES = {"system_user", "system_admin", "system_guest", "system_user_manager", "system_manager",
                 "system_read_only_admin", "system_custom_group_admin", "team_user", "team_admin",
                 "team_guest", "channel_user", "channel_admin", "channel_guest"}
EMOJI_NAME_RE = re.compile(r"^[a-zA-Z0-9\-+_]+$")


class ImportFailed(Exception):
    """The first failing line of a bulk import: data.error and data.line_number."""

    def __init__(self, err_id: str, detail: str = ""):
        super().__init__(err_id)
        self.id = err_id
        self.detail = detail

    def text(self) -> str:
        msg = message_for(self.id)
        return f"{msg} — {self.detail}" if self.detail else msg


def version_allows(line_type: str, version: tuple) -> bool:
    if line_type == "role":
        return version >= (9, 8, 0)
    if line_type == "bot":
        return version >= (10, 3, 0)
    return True


class BulkImporter:
    """Processes the JSONL of an import archive line by line, stopping at the
    first failing line; lines before it stay applied (as on the real server)."""

    LINE_TYPES = ("role", "scheme", "team", "channel", "user", "bot", "post",
                  "direct_channel", "direct_post", "emoji")

    def __init__(self, ws: Workspace, zf: zipfile.ZipFile | None, version: tuple, lock):
        self.ws = ws
        self.zf = zf
        self.names = set(zf.namelist()) if zf else set()
        self.version = version
        self.lock = lock
        self.warnings: list[str] = []

    def run(self, stream) -> tuple:
        """Returns (ImportFailed or None, line number)."""
        line_no = 0
        while True:
            raw = stream.readline(MAX_JSONL_LINE + 1)
            if not raw:
                return None, line_no
            line_no += 1
            if len(raw) > MAX_JSONL_LINE and not raw.endswith(b"\n"):
                return ImportFailed("app.import.bulk_import.file_scan.error", "bufio.Scanner: token too long"), line_no
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            try:
                with self.lock:
                    self.import_line(line_no, line)
            except ImportFailed as err:
                return err, line_no

    # -- line dispatch --------------------------------------------------
    def import_line(self, line_no: int, line: bytes) -> None:
        try:
            obj = json.loads(line.decode("utf-8"))
        except RecursionError:
            raise ImportFailed("app.import.bulk_import.json_decode.error", "exceeded max depth") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ImportFailed("app.import.bulk_import.json_decode.error", str(exc) or "unexpected end of JSON input")
        if not isinstance(obj, dict):
            raise ImportFailed("app.import.bulk_import.json_decode.error",
                               "json: cannot unmarshal into Go value of type imports.LineImportData")
        line_type = field(obj, "type", "")
        if not isinstance(line_type, str):
            raise ImportFailed("app.import.bulk_import.json_decode.error", "type must be a string")
        if line_no == 1:
            if line_type != "version":
                raise ImportFailed("app.import.process_import_data_file_version_line.invalid_version.error")
            ver = field(obj, "version")
            if ver is not None and not is_int(ver):
                raise ImportFailed("app.import.bulk_import.json_decode.error", "version must be a number")
            if ver != 1:
                raise ImportFailed("app.import.bulk_import.unsupported_version.error")
            return
        if line_type not in self.LINE_TYPES or not version_allows(line_type, self.version):
            raise ImportFailed("app.import.import_line.unknown_line_type.error", f"line_type={line_type}")
        data = field(obj, line_type)
        if data is None:
            raise ImportFailed(f"app.import.import_line.null_{line_type}.error")
        if not isinstance(data, dict):
            raise ImportFailed("app.import.bulk_import.json_decode.error", f"{line_type} must be an object")
        getattr(self, "_line_" + line_type)(data)

    # -- typed field access ---------------------------------------------
    _KINDS = {str: "string", int: "int64", bool: "bool", list: "array", dict: "object"}

    def _get(self, data: dict, key: str, kind, default=None):
        value = field(data, key)
        if value is None:
            return default
        ok = is_int(value) if kind is int else isinstance(value, kind)
        if not ok:
            raise ImportFailed("app.import.bulk_import.json_decode.error",
                               f"json: cannot unmarshal {type(value).__name__} into field {key} of type {self._KINDS[kind]}")
        return value

    def _strings(self, data: dict, key: str) -> list:
        values = self._get(data, key, list, [])
        if not all(isinstance(v, str) for v in values):
            raise ImportFailed("app.import.bulk_import.json_decode.error", f"{key} must be an array of strings")
        return values

    # -- line types -----------------------------------------------------
    def _line_role(self, data: dict) -> None:
        name = self._get(data, "name", str)
        if not name:
            raise ImportFailed("app.import.validate_role_import_data.name_invalid.error")
        self.ws.roles[name] = {"name": name, "display_name": self._get(data, "display_name", str, ""),
                               "permissions": self._strings(data, "permissions")}

    def _line_scheme(self, data: dict) -> None:
        name = self._get(data, "name", str)
        if not name:
            raise ImportFailed("app.import.validate_scheme_import_data.name_invalid.error")
        scope = self._get(data, "scope", str)
        if scope not in ("team", "channel"):
            raise ImportFailed("app.import.validate_scheme_import_data.wrong_roles_for_scope.error")
        if not self._get(data, "display_name", str):
            raise ImportFailed("app.import.validate_scheme_import_data.display_name_invalid.error")
        self.ws.schemes[name] = {"name": name, "scope": scope}

    def _line_team(self, data: dict) -> None:
        pre = "app.import.validate_team_import_data."
        name = self._get(data, "name", str)
        if not name:
            raise ImportFailed(pre + "name_missing.error")
        if not 2 <= len(name) <= 64:
            raise ImportFailed(pre + "name_length.error")
        if name.startswith(RESERVED_TEAM_PREFIXES):
            raise ImportFailed(pre + "name_reserved.error")
        if not TEAM_NAME_RE.match(name):
            raise ImportFailed(pre + "name_characters.error")
        display = self._get(data, "display_name", str)
        if not display:
            raise ImportFailed(pre + "display_name_missing.error")
        if len(display) > 64:
            raise ImportFailed(pre + "display_name_length.error")
        team_type = self._get(data, "type", str)
        if not team_type:
            raise ImportFailed(pre + "type_missing.error")
        if team_type not in ("O", "I"):
            raise ImportFailed(pre + "type_invalid.error")
        description = self._get(data, "description", str, "")
        if len(description) > 255:
            raise ImportFailed(pre + "description_length.error")
        open_invite = self._get(data, "allow_open_invite", bool, False)
        scheme = self._get(data, "scheme", str)
        if scheme and scheme not in self.ws.schemes:
            raise ImportFailed("app.import.import_team.scheme_not_found.error", f"scheme={scheme}")
        team = self.ws.team_by_name(name) or self.ws.add_team(name, display, team_type)
        team.update(display_name=display, type=team_type, description=description,
                    allow_open_invite=open_invite, scheme=scheme, update_at=now_ms())

    def _line_channel(self, data: dict) -> None:
        pre = "app.import.validate_channel_import_data."
        team_name = self._get(data, "team", str)
        if not team_name:
            raise ImportFailed(pre + "team_missing.error")
        name = self._get(data, "name", str)
        if not name:
            raise ImportFailed(pre + "name_missing.error")
        if len(name) > 64:
            raise ImportFailed(pre + "name_length.error")
        if not CHANNEL_NAME_RE.match(name):
            raise ImportFailed(pre + "name_characters.error")
        display = self._get(data, "display_name", str, "") or name
        if len(display) > 64:
            raise ImportFailed(pre + "display_name_length.error")
        ch_type = self._get(data, "type", str)
        if not ch_type:
            raise ImportFailed(pre + "type_missing.error")
        if ch_type not in ("O", "P"):
            raise ImportFailed(pre + "type_invalid.error")
        header = self._get(data, "header", str, "")
        if len(header) > 1024:
            raise ImportFailed(pre + "header_length.error")
        purpose = self._get(data, "purpose", str, "")
        if len(purpose) > 250:
            raise ImportFailed(pre + "purpose_length.error")
        deleted_at = self._get(data, "deleted_at", int, 0)
        scheme = self._get(data, "scheme", str)
        if scheme and scheme not in self.ws.schemes:
            raise ImportFailed("app.import.import_channel.scheme_not_found.error", f"scheme={scheme}")
        team = self.ws.team_by_name(team_name)
        if not team:
            raise ImportFailed("app.import.import_channel.team_not_found.error", f"team={team_name}")
        chan = self.ws.channel_by_name(team["id"], name) or self.ws.add_channel(team["id"], name, display, ch_type)
        chan.update(display_name=display, type=ch_type, header=header, purpose=purpose, scheme=scheme,
                    update_at=now_ms())
        if deleted_at > 0:
            chan["delete_at"] = deleted_at

    def _valid_roles(self, roles: str) -> bool:
        known = BUILTIN_ROLES | set(self.ws.roles)
        return all(r in known for r in roles.split())

    def _find_user(self, username: str, err_id: str) -> dict:
        user = self.ws.user_by_username(username or "")
        if not user:
            raise ImportFailed(err_id, f"username={username}")
        return user

    def _line_user(self, data: dict) -> None:
        pre = "app.import.validate_user_import_data."
        username = self._get(data, "username", str)
        if not username:
            raise ImportFailed(pre + "username_missing.error")
        username = username.lower()
        if (not 1 <= len(username) <= 64 or not USERNAME_RE.match(username)
                or username in RESTRICTED_USERNAMES):
            raise ImportFailed(pre + "username_invalid.error", f"username={username}")
        email = self._get(data, "email", str)
        if not email:
            raise ImportFailed(pre + "email_missing.error")
        if len(email) > 128:
            raise ImportFailed(pre + "email_length.error")
        auth_service = self._get(data, "auth_service", str, "")
        auth_data = self._get(data, "auth_data", str, "")
        if auth_service not in AUTH_SERVICES:
            raise ImportFailed(pre + "auth_service_invalid.error")
        if bool(auth_service) != bool(auth_data) and auth_service not in ("", "email"):
            raise ImportFailed(pre + "auth_data_and_service_dependency.error")
        password = self._get(data, "password", str)
        if password is not None and len(password) > 72:
            raise ImportFailed(pre + "password_length.error")
        if password and auth_data:
            raise ImportFailed(pre + "auth_data_and_password.error")
        roles = self._get(data, "roles", str)
        if roles is not None and not self._valid_roles(roles):
            raise ImportFailed(pre + "roles_invalid.error", f"roles={roles}")
        names = {k: self._get(data, k, str) for k in ("nickname", "first_name", "last_name", "position", "locale")}
        for key, limit in (("nickname", 64), ("first_name", 64), ("last_name", 64), ("position", 128)):
            if names[key] is not None and len(names[key]) > limit:
                raise ImportFailed(pre + f"{key}_length.error")
        delete_at = self._get(data, "delete_at", int)
        profile_image = self._get(data, "profile_image", str)
        # The server stats the extracted file before importing the user
        # (imports/import_validators.go: ValidateUserImportData): missing stops the import.
        if profile_image and self._zip_name(profile_image) not in self.names:
            raise ImportFailed(pre + "profile_image.error", f"profile_image={profile_image}")
        self._get(data, "notify_props", dict)
        memberships = self._user_teams(data)

        other = self.ws.user_by_email(email)
        if other and other["username"] != username:
            raise ImportFailed("app.import.import_user.save_user.error", "store.sql_user.save.email_exists.app_error")
        user = self.ws.user_by_username(username) or self.ws.add_user(username, email)
        user.update(email=email, auth_service=auth_service, auth_data=auth_data, update_at=now_ms())
        if roles is not None:
            user["roles"] = roles
        for key, value in names.items():
            if value is not None:
                user[key] = value
        if delete_at is not None:
            user["delete_at"] = delete_at
        if password:
            user["password"] = password
        if profile_image:
            self._profile_image(user, profile_image)
        for team, team_roles, channels in memberships:
            team["members"][user["id"]] = team_roles or team["members"].get(user["id"], "team_user")
            for chan, chan_roles in channels:
                chan["members"][user["id"]] = chan_roles or chan["members"].get(user["id"], "channel_user")

    def _user_teams(self, data: dict) -> list:
        result = []
        for item in self._get(data, "teams", list, []):
            if not isinstance(item, dict):
                raise ImportFailed("app.import.bulk_import.json_decode.error", "teams[] must be objects")
            tname = self._get(item, "name", str)
            if not tname:
                raise ImportFailed("app.import.validate_user_teams_import_data.team_name_missing.error")
            team = self.ws.team_by_name(tname)
            if not team:
                raise ImportFailed("app.team.get_by_name.missing.app_error", f"team={tname}")
            channels = []
            for citem in self._get(item, "channels", list, []):
                if not isinstance(citem, dict):
                    raise ImportFailed("app.import.bulk_import.json_decode.error", "channels[] must be objects")
                cname = self._get(citem, "name", str)
                if not cname:
                    raise ImportFailed("app.import.validate_user_channels_import_data.channel_name_missing.error")
                chan = self.ws.channel_by_name(team["id"], cname)
                if not chan:
                    raise ImportFailed("app.channel.get_by_name.missing.app_error", f"channel={tname}/{cname}")
                channels.append((chan, self._get(citem, "roles", str)))
            result.append((team, self._get(item, "roles", str), channels))
        return result

    def _line_bot(self, data: dict) -> None:
        pre = "app.import.validate_bot_import_data."
        username = (self._get(data, "username", str) or "").lower()
        if not username:
            raise ImportFailed(pre + "username_missing.error")
        if not USERNAME_RE.match(username) or len(username) > 64 or username in RESTRICTED_USERNAMES:
            raise ImportFailed(pre + "username_invalid.error")
        owner_name = self._get(data, "owner", str)
        if not owner_name:
            raise ImportFailed(pre + "owner_missing.error")
        owner = self._find_user(owner_name, "app.import.import_bot.owner_not_found.error")
        display = self._get(data, "display_name", str, "")
        if len(display) > 64:
            raise ImportFailed(pre + "display_name_length.error")
        bot = self.ws.user_by_username(username) or self.ws.add_user(username, f"{username}@localhost")
        bot.update(is_bot=True, bot_owner=owner["id"], first_name=display,
                   delete_at=self._get(data, "delete_at", int, 0))

    def _line_emoji(self, data: dict) -> None:
        pre = "app.import.validate_emoji_import_data."
        name = self._get(data, "name", str)
        if not name:
            raise ImportFailed(pre + "name_missing.error")
        if len(name) > 64 or not EMOJI_NAME_RE.match(name):
            raise ImportFailed(pre + "name_invalid.error")
        image = self._get(data, "image", str)
        if not image:
            raise ImportFailed(pre + "image_missing.error")
        if self._zip_name(image) not in self.names:
            raise ImportFailed("app.import.emoji.bad_file.error", f"image={image}")
        self.ws.emojis[name] = {"name": name, "image": image}

    # -- posts ----------------------------------------------------------
    def _zip_name(self, path: str) -> str:
        if ".." in path.split("/"):
            raise ImportFailed("app.import.attachment.bad_file.error", f"path={path}: path traversal")
        return "data/" + path

    def _check_post_fields(self, data: dict, pre: str) -> dict:
        message = self._get(data, "message", str)
        if message is None:
            raise ImportFailed(pre + "message_missing.error")
        if len(message) > MAX_POST_SIZE:
            raise ImportFailed(pre + "message_length.error")
        create_at = self._get(data, "create_at", int)
        if create_at is None:
            raise ImportFailed(pre + "create_at_missing.error")
        if create_at == 0:
            raise ImportFailed(pre + "create_at_zero.error")
        props = self._get(data, "props", dict, {})
        if len(dumps(props)) > 800000:
            raise ImportFailed(pre + "props_too_large.error")
        reactions = []
        for item in self._get(data, "reactions", list, []):
            if not isinstance(item, dict):
                raise ImportFailed("app.import.bulk_import.json_decode.error", "reactions[] must be objects")
            rpre = "app.import.validate_reaction_import_data."
            ruser = self._get(item, "user", str)
            if not ruser:
                raise ImportFailed(rpre + "user_missing.error")
            emoji = self._get(item, "emoji_name", str)
            if not emoji:
                raise ImportFailed(rpre + "emoji_name_missing.error")
            if len(emoji) > 64:
                raise ImportFailed(rpre + "emoji_name_length.error")
            rcreate = self._get(item, "create_at", int)
            if rcreate is None:
                raise ImportFailed(rpre + "create_at_missing.error")
            if rcreate == 0:
                raise ImportFailed(rpre + "create_at_zero.error")
            if rcreate < create_at:
                raise ImportFailed(rpre + "create_at_before_parent.error")
            reactions.append((ruser, emoji, rcreate))
        paths = []
        for item in self._get(data, "attachments", list, []):
            if not isinstance(item, dict):
                raise ImportFailed("app.import.bulk_import.json_decode.error", "attachments[] must be objects")
            path = self._get(item, "path", str)
            if not path:
                raise ImportFailed("app.import.validate_attachment_import_data.path_missing.error")
            self._zip_name(path)
            paths.append(path)
        return {"message": message, "create_at": create_at, "props": props, "reactions": reactions,
                "attachments": paths, "type": self._get(data, "type", str, ""),
                "edit_at": self._get(data, "edit_at", int, 0), "is_pinned": self._get(data, "is_pinned", bool, False),
                "flagged_by": self._strings(data, "flagged_by"), "user": self._get(data, "user", str)}

    def _check_replies(self, data: dict, parent_create_at: int) -> list:
        replies = []
        for item in self._get(data, "replies", list, []):
            if not isinstance(item, dict):
                raise ImportFailed("app.import.bulk_import.json_decode.error", "replies[] must be objects")
            if not self._get(item, "user", str):
                raise ImportFailed("app.import.validate_reply_import_data.user_missing.error")
            replies.append(self._check_post_fields(item, "app.import.validate_reply_import_data."))
        return replies

    def _resolve_users(self, fields: dict) -> None:
        fields["user_obj"] = self._find_user(fields["user"], "app.import.import_post.user_not_found.error")
        fields["reaction_objs"] = [(self._find_user(u, "app.import.import_post.user_not_found.error"), e, c)
                                   for u, e, c in fields["reactions"]]
        for name in fields["flagged_by"]:
            self._find_user(name, "app.import.import_post.user_not_found.error")

    def _save_post(self, chan: dict, root_id: str, f: dict) -> dict:
        key = (chan["id"], root_id, f["create_at"], f["message"])
        post = self.ws.posts.get(self.ws.post_index.get(key, ""))
        if post is None:
            post = self.ws.add_post(chan["id"], f["user_obj"]["id"], f["message"], f["create_at"], root_id=root_id)
        post.update(user_id=f["user_obj"]["id"], type=f["type"], props=f["props"], edit_at=f["edit_at"],
                    is_pinned=f["is_pinned"], update_at=max(f["create_at"], f["edit_at"]))
        existing = {(r["user_id"], r["emoji_name"]) for r in post["reactions"]}
        for user, emoji, created in f["reaction_objs"]:
            if (user["id"], emoji) not in existing:
                post["reactions"].append({"user_id": user["id"], "emoji_name": emoji, "create_at": created})
        for path in f["attachments"]:
            self._attach(post, path)
        return post

    def _attach(self, post: dict, path: str) -> None:
        name = self._zip_name(path)
        if name not in self.names:
            self.warnings.append(f"attachment {path} not found in the archive; post imported without it")
            return
        data = self.zf.read(name)
        base = posixpath.basename(path)
        for fid in post["file_ids"]:
            info = self.ws.files.get(fid)
            if info and info["name"] == base and info["size"] == len(data):
                return  # already imported (re-import is idempotent)
        self.ws.store_file(post, base, data)

    def _profile_image(self, user: dict, path: str) -> None:
        name = self._zip_name(path)
        self.ws.store_profile_image(user, self.zf.read(name))

    def _line_post(self, data: dict) -> None:
        pre = "app.import.validate_post_import_data."
        team_name = self._get(data, "team", str)
        if not team_name:
            raise ImportFailed(pre + "team_missing.error")
        chan_name = self._get(data, "channel", str)
        if not chan_name:
            raise ImportFailed(pre + "channel_missing.error")
        if not self._get(data, "user", str):
            raise ImportFailed(pre + "user_missing.error")
        fields = self._check_post_fields(data, pre)
        replies = self._check_replies(data, fields["create_at"])
        team = self.ws.team_by_name(team_name)
        if not team:
            raise ImportFailed("app.import.import_post.team_not_found.error", f"team={team_name}")
        chan = self.ws.channel_by_name(team["id"], chan_name)
        if not chan:
            raise ImportFailed("app.import.import_post.channel_not_found.error", f"channel={chan_name}")
        self._resolve_users(fields)
        for reply in replies:
            self._resolve_users(reply)
        root = self._save_post(chan, "", fields)
        for reply in replies:
            self._save_post(chan, root["id"], reply)

    def _members(self, names: list, err_id: str) -> list:
        return [self._find_user(n, err_id)["id"] for n in names]

    def _line_direct_channel(self, data: dict) -> None:
        pre = "app.import.validate_direct_channel_import_data."
        participants = self._get(data, "participants", list)
        if participants:
            names = []
            for item in participants:
                uname = self._get(item, "username", str) if isinstance(item, dict) else None
                if not uname:
                    raise ImportFailed(pre + "members_required.error")
                names.append(uname)
        else:
            names = self._strings(data, "members")
        if not names:
            raise ImportFailed(pre + "members_required.error")
        if len(names) != 2 and not 3 <= len(names) <= 8:
            self.warnings.append(f"direct channel with {len(names)} members skipped")
            return
        header = self._get(data, "header", str, "")
        if len(header) > 1024:
            raise ImportFailed(pre + "header_length.error")
        for fav in self._strings(data, "favorited_by"):
            if fav not in names:
                raise ImportFailed(pre + "unknown_favoriter.error", f"user={fav}")
        ids = self._members(names, "app.import.import_direct_channel.member_not_found.error")
        chan = self.ws.direct_channel(ids) or self.ws.add_direct_channel(ids)
        chan["header"] = header

    def _line_direct_post(self, data: dict) -> None:
        pre = "app.import.validate_direct_post_import_data."
        members = self._strings(data, "channel_members")
        if not members:
            raise ImportFailed(pre + "channel_members_required.error")
        if len(members) < 2:
            raise ImportFailed(pre + "channel_members_too_few.error")
        if len(members) > 8:
            raise ImportFailed(pre + "channel_members_too_many.error")
        if not self._get(data, "user", str):
            raise ImportFailed(pre + "user_missing.error")
        fields = self._check_post_fields(data, pre)
        for name in fields["flagged_by"]:
            if name not in members:
                raise ImportFailed(pre + "unknown_flagger.error", f"user={name}")
        replies = self._check_replies(data, fields["create_at"])
        ids = self._members(members, "app.import.import_direct_post.channel_member_not_found.error")
        self._resolve_users(fields)
        for reply in replies:
            self._resolve_users(reply)
        chan = self.ws.direct_channel(ids) or self.ws.add_direct_channel(ids)
        root = self._save_post(chan, "", fields)
        for reply in replies:
            self._save_post(chan, root["id"], reply)


# ---------------------------------------------------------------------------
# Faults: runtime fault injection (POST /__fake/faults, --fault)
# ---------------------------------------------------------------------------

class Faults:
    """Fault state.  Every fault with a "count" fires that many times; -1 = always.

    List faults ("errors", "lose_response", "delay", "job_fail", "job_stall")
    append to their list; single faults ("download_drop", "upload_cut",
    "ignore_range") and values ("download_bps", "upload_bps",
    "jobs_stay_pending") replace the previous setting; null clears one.
    """

    LIST_KEYS = ("errors", "lose_response", "delay", "job_fail", "job_stall")
    ONE_KEYS = ("download_drop", "upload_cut", "ignore_range", "login_echo", "download_corrupt", "oversize",
                "slow_ranges", "upload_stuck")
    VALUE_KEYS = ("download_bps", "upload_bps", "jobs_stay_pending")
    ACTION_KEYS = ("clear", "expire_sessions", "change_export")

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.lists = {key: [] for key in self.LIST_KEYS}
        self.ones = dict.fromkeys(self.ONE_KEYS)
        self.download_bps = 0
        self.upload_bps = 0
        self.jobs_stay_pending = False

    # -- update ---------------------------------------------------------
    @staticmethod
    def _count(spec: dict) -> int:
        count = spec.get("count", 1)
        if not is_int(count) or count == 0 or count < -1:
            raise ValueError("count must be a positive integer or -1 (always)")
        return count

    def _entry(self, key: str, spec) -> dict:
        if not isinstance(spec, dict):
            raise ValueError(f"{key}: expected an object")
        entry = dict(spec)
        entry["count"] = self._count(spec)
        if key in ("errors", "lose_response", "delay"):
            entry["path"] = spec.get("path", "")
            try:
                entry["_re"] = re.compile(entry["path"])
            except (re.error, TypeError) as exc:
                raise ValueError(f"{key}: bad path pattern: {exc}") from None
            if "method" in spec and not isinstance(spec["method"], str):
                raise ValueError(f"{key}: method must be a string")
        if key == "errors":
            status = spec.get("status")
            if not is_int(status) or not 400 <= status <= 599:
                raise ValueError("errors: status must be 400..599")
            if spec.get("phase", "before") not in ("before", "after"):
                raise ValueError("errors: phase must be 'before' or 'after'")
            if spec.get("body", "auto") not in ("auto", "json", "html", "text", "empty"):
                raise ValueError("errors: body must be auto|json|html|text|empty")
        if key == "delay" and not isinstance(spec.get("seconds"), (int, float)):
            raise ValueError("delay: seconds is required")
        if key == "delay" and spec.get("phase", "before") not in ("before", "after"):
            raise ValueError("delay: phase must be 'before' or 'after'")
        if key in ("job_fail", "job_stall") and not isinstance(spec.get("type"), str):
            raise ValueError(f"{key}: type (the job type) is required")
        if key in ("download_drop", "upload_cut"):
            after = spec.get("after_bytes")
            if not is_int(after) or after < 0:
                raise ValueError(f"{key}: after_bytes must be an integer >= 0")
        if key == "download_corrupt" and not (is_int(spec.get("offset")) and spec["offset"] >= 0):
            raise ValueError("download_corrupt: offset (a byte of the file) must be an integer >= 0")
        if key == "oversize" and not (is_int(spec.get("bytes")) and spec["bytes"] > 0):
            raise ValueError("oversize: bytes must be an integer > 0")
        if key == "slow_ranges" and not (is_int(spec.get("bps")) and spec["bps"] > 0):
            raise ValueError("slow_ranges: bps must be an integer > 0")
        return entry

    def take_one_if(self, key: str, pred):
        """Like take_one, but only when pred(entry) holds: a fault for one byte range."""
        with self.lock:
            entry = self.ones[key]
            if not entry or not pred(entry):
                return None
            if entry["count"] > 0:
                entry["count"] -= 1
                if entry["count"] == 0:
                    self.ones[key] = None
            return dict(entry)

    def update(self, spec: dict) -> None:
        if not isinstance(spec, dict):
            raise ValueError("expected a JSON object")
        unknown = set(spec) - set(self.LIST_KEYS + self.ONE_KEYS + self.VALUE_KEYS + self.ACTION_KEYS)
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        with self.lock:
            if spec.get("clear"):
                self.reset()
            for key in self.LIST_KEYS:
                if key in spec:
                    value = spec[key]
                    if value is None:
                        self.lists[key] = []
                        continue
                    items = value if isinstance(value, list) else [value]
                    self.lists[key].extend(self._entry(key, item) for item in items)
            for key in self.ONE_KEYS:
                if key in spec:
                    self.ones[key] = None if spec[key] is None else self._entry(key, spec[key])
            for key in ("download_bps", "upload_bps"):
                if key in spec:
                    value = spec[key] or 0
                    if not is_int(value) or value < 0:
                        raise ValueError(f"{key} must be an integer >= 0")
                    setattr(self, key, value)
            if "jobs_stay_pending" in spec:
                self.jobs_stay_pending = bool(spec["jobs_stay_pending"])

    def state(self) -> dict:
        def clean(entry):
            return {k: v for k, v in entry.items() if not k.startswith("_")} if entry else None
        with self.lock:
            out = {key: [clean(e) for e in self.lists[key]] for key in self.LIST_KEYS}
            out.update({key: clean(self.ones[key]) for key in self.ONE_KEYS})
            out.update(download_bps=self.download_bps, upload_bps=self.upload_bps,
                       jobs_stay_pending=self.jobs_stay_pending)
            return out

    # -- consumption ----------------------------------------------------
    @staticmethod
    def _use(entries: list, entry: dict) -> dict:
        if entry["count"] > 0:
            entry["count"] -= 1
            if entry["count"] == 0:
                entries.remove(entry)
        return entry

    def _take_matching(self, key: str, method: str, path: str, pred=None):
        with self.lock:
            entries = self.lists[key]
            for entry in entries:
                if entry.get("method") and entry["method"].upper() != method:
                    continue
                if not entry["_re"].search(path):
                    continue
                if pred and not pred(entry):
                    continue
                return dict(self._use(entries, entry))
        return None

    def take_error(self, method: str, path: str, phase: str):
        return self._take_matching("errors", method, path, lambda e: e.get("phase", "before") == phase)

    def take_lose_response(self, method: str, path: str) -> bool:
        return self._take_matching("lose_response", method, path) is not None

    def take_delay(self, method: str, path: str, phase: str = "before") -> float:
        entry = self._take_matching("delay", method, path, lambda e: e.get("phase", "before") == phase)
        return float(entry["seconds"]) if entry else 0.0

    def take_one(self, key: str):
        with self.lock:
            entry = self.ones[key]
            if not entry:
                return None
            if entry["count"] > 0:
                entry["count"] -= 1
                if entry["count"] == 0:
                    self.ones[key] = None
            return dict(entry)

    def take_job_fault(self, job_type: str):
        with self.lock:
            for key in ("job_stall", "job_fail"):
                entries = self.lists[key]
                for entry in entries:
                    if entry["type"] == job_type:
                        return key, dict(self._use(entries, entry))
        return None, None


# ---------------------------------------------------------------------------
# RequestLog: what clients sent (never token values or passwords)
# ---------------------------------------------------------------------------

class RequestLog:
    KEEP = 100000

    def __init__(self, path: str | None):
        self.lock = threading.Lock()
        self.entries: list[dict] = []
        self.seq = 0
        self.fh = open(path, "a", encoding="utf-8") if path else None

    def add(self, entry: dict) -> None:
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.entries.append(entry)
            if len(self.entries) > self.KEEP:
                del self.entries[: len(self.entries) - self.KEEP]
            if self.fh:
                self.fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.fh.flush()

    def list(self, since: int = 0) -> list:
        with self.lock:
            return [dict(e) for e in self.entries if e["seq"] > since]

    def reset(self) -> None:
        with self.lock:
            self.entries.clear()


class RateLimiter:
    """A token bucket per key, like the throttled limiter the server uses."""

    def __init__(self):
        self.lock = threading.Lock()
        self.buckets: dict[str, list] = {}

    def check(self, key: str, per_sec: float, burst: int) -> tuple:
        now = time.monotonic()
        capacity = burst + 1
        with self.lock:
            tokens, last = self.buckets.get(key, [capacity, now])
            tokens = min(capacity, tokens + (now - last) * per_sec)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self.buckets[key] = [tokens, now]
        reset = int((capacity - tokens) / per_sec + 0.999)
        retry = 0 if allowed else max(1, int((1 - tokens) / per_sec + 0.999))
        headers = [("X-Ratelimit-Limit", str(capacity)), ("X-Ratelimit-Remaining", str(int(tokens))),
                   ("X-Ratelimit-Reset", str(reset))]
        return allowed, headers, retry


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

class Route:
    __slots__ = ("method", "regex", "handler", "auth", "local", "min_version", "upload")

    def __init__(self, method, pattern, handler, auth="session", local=True, min_version=(0, 0, 0),
                 upload=False):
        self.method = method
        self.regex = re.compile(pattern)
        self.handler = handler
        self.auth = auth              # "none" | "optional" | "session"
        self.local = local            # also served on the local-mode unix socket
        self.min_version = min_version
        self.upload = upload          # body limit MaxFileSize+512 instead of MaximumPayloadSizeBytes


ID = r"[A-Za-z0-9]+"
ROUTES = [
    Route("POST", r"/users/login", "h_login", auth="none", local=False),
    Route("POST", r"/users/logout", "h_logout", auth="optional", local=False),
    Route("GET", r"/users", "h_get_users"),
    Route("GET", r"/users/username/(?P<username>[A-Za-z0-9_\-.]+)", "h_get_user_by_username"),
    Route("GET", rf"/users/(?P<user_id>{ID})", "h_get_user"),
    # Local mode serves it too (api4/user_local.go: localGetUploadsForUser), with no
    # RequireUserId: the id is used as sent, so "me" is a literal id there.
    Route("GET", rf"/users/(?P<user_id>{ID})/uploads", "h_get_uploads_for_user",
          min_version=(5, 28, 0)),
    Route("POST", rf"/users/(?P<user_id>{ID})/tokens", "h_create_token", local=False),
    Route("POST", r"/jobs", "h_create_job"),
    Route("GET", r"/jobs", "h_get_jobs"),
    Route("GET", r"/jobs/type/(?P<job_type>[A-Za-z0-9_-]+)", "h_get_jobs_by_type"),
    Route("GET", rf"/jobs/(?P<job_id>{ID})", "h_get_job"),
    Route("POST", rf"/jobs/(?P<job_id>{ID})/cancel", "h_cancel_job"),
    Route("GET", r"/exports", "h_list_exports", min_version=(5, 33, 0)),
    Route("GET", r"/exports/(?P<name>.+\.zip)", "h_download_export", min_version=(5, 33, 0)),
    Route("DELETE", r"/exports/(?P<name>.+\.zip)", "h_delete_export", min_version=(5, 33, 0)),
    Route("POST", r"/exports/(?P<name>.+\.zip)/presign-url", "h_presign_export", min_version=(9, 5, 0)),
    Route("POST", r"/uploads", "h_create_upload", min_version=(5, 28, 0), upload=True),
    Route("GET", rf"/uploads/(?P<upload_id>{ID})", "h_get_upload", min_version=(5, 28, 0)),
    Route("POST", rf"/uploads/(?P<upload_id>{ID})", "h_upload_data", min_version=(5, 28, 0), upload=True),
    Route("GET", r"/imports", "h_list_imports", min_version=(5, 32, 0)),
    Route("DELETE", r"/imports/(?P<name>.+\.zip)", "h_delete_import", min_version=(10, 0, 0)),
    Route("GET", r"/config", "h_get_config"),
    Route("PUT", r"/config", "h_update_config"),
    Route("PUT", r"/config/patch", "h_patch_config", min_version=(5, 20, 0)),
    Route("GET", r"/config/client", "h_client_config", auth="none"),
    Route("GET", r"/system/ping", "h_ping", auth="none"),
    Route("GET", r"/teams", "h_get_teams"),
    Route("GET", r"/teams/name/(?P<team_name>[A-Za-z0-9_-]+)", "h_get_team_by_name"),
    Route("GET", rf"/teams/(?P<team_id>{ID})", "h_get_team"),
    Route("GET", rf"/teams/(?P<team_id>{ID})/channels", "h_team_channels"),
    Route("GET", rf"/teams/(?P<team_id>{ID})/channels/private", "h_team_private_channels"),
    Route("GET", rf"/teams/(?P<team_id>{ID})/channels/deleted", "h_team_deleted_channels"),
    Route("GET", rf"/teams/(?P<team_id>{ID})/channels/name/(?P<channel_name>[A-Za-z0-9_-]+)",
          "h_channel_by_name"),
    Route("GET", r"/channels", "h_all_channels"),
    Route("GET", rf"/channels/(?P<channel_id>{ID})", "h_get_channel"),
]

# Job types the API accepts (SessionHasPermissionToCreateJob) and those with a
# worker on this fake; the others get 400 model.job.is_valid.type.app_error.
API_JOB_TYPES = {"data_retention", "message_export", "elasticsearch_post_indexing", "bleve_post_indexing",
                 "ldap_sync", "migrations", "plugins", "product_notices", "expiry_notify", "active_users",
                 "import_process", "import_delete", "export_process", "export_delete", "cloud",
                 "extract_content"}
WORKER_JOB_TYPES = {"export_process", "import_process", "extract_content", "export_delete", "import_delete"}
UNMASKED_LOGIN_ERRORS = {
    "mfa.validate_token.authenticate.app_error", "api.user.check_user_mfa.bad_code.app_error",
    "api.user.login.blank_pwd.app_error", "api.user.login.bot_login_forbidden.app_error",
    "api.user.login.client_side_cert.certificate.app_error", "api.user.login.inactive.app_error",
    "api.user.login.not_verified.app_error", "api.user.check_user_login_attempts.too_many.app_error",
}


class Resp:
    """A complete (non-streamed) response from an API handler."""

    __slots__ = ("status", "body", "ctype", "headers")

    def __init__(self, status=200, body=b"", ctype="application/json", headers=None):
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = headers or []


def jresp(obj, status=200, headers=None) -> Resp:
    return Resp(status, dumps(obj), "application/json", headers)


STATUS_OK = {"status": "OK"}
STREAMED = object()   # the handler wrote the response itself


class JobAborted(Exception):
    """An injected job failure, raised inside a worker."""


def go_base(name: str) -> str:
    """filepath.Base on Linux."""
    if not name:
        return "."
    stripped = name.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------
# App: server state and API handlers
# ---------------------------------------------------------------------------

class App:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.version_text = args.version
        self.version = parse_version(args.version)
        self.version_header = f"{args.version}.12345.abcdef.true"
        self.export_naming = args.export_naming
        if self.export_naming == "auto":
            self.export_naming = "jobid" if self.version >= (7, 2, 0) else "random"
        self.stopping = threading.Event()
        self.base_url = ""
        self._tmp_state = None
        if args.state_dir:
            self.state_dir = os.path.abspath(args.state_dir)
        else:
            self._tmp_state = tempfile.mkdtemp(prefix="mmfake-")
            self.state_dir = self._tmp_state
        self.files_root = os.path.join(self.state_dir, "data")
        self.import_dir = os.path.join(self.files_root, "import")
        self.export_dir = os.path.join(self.files_root, "export")
        for path in (self.files_root, self.import_dir, self.export_dir):
            os.makedirs(path, exist_ok=True)
        self.config = Config(default_config(args.max_file_size, args.socket, args.presign), args.cloud)
        self.ws = Workspace(self.files_root)
        self.sessions: dict[str, dict] = {}
        self.pats: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.job_seq = 0
        self.running_types: set[str] = set()
        self.uploads: dict[str, dict] = {}
        self.busy_uploads: set[str] = set()
        self.faults = Faults()
        self.log = RequestLog(args.log)
        self.rate = RateLimiter()
        self.presign_key = secrets.token_bytes(16)
        self.etag_cache: dict[tuple, str] = {}
        self.credentials = self._make_users()
        seed_workspace(self.ws, args.seed, {"admin": self.admin, "alice": self.alice, "mfauser": self.mfa_user})

    # -- startup ----------------------------------------------------------
    def _make_users(self) -> dict:
        env = os.environ

        def secret(var, make):
            return env.get(var) or make()

        password = lambda: secrets.token_urlsafe(18)  # noqa: E731
        self.admin = self.ws.add_user("admin", "admin@example.com", "system_admin system_user",
                                      first_name="Ada", last_name="Admin", create_at=_SEED_EPOCH_MS)
        self.alice = self.ws.add_user("alice", "alice@example.com", "system_user",
                                      first_name="Alice", last_name="Liddell", create_at=_SEED_EPOCH_MS)
        mfa_secret = secret("MMFAKE_MFA_SECRET", lambda: base64.b32encode(secrets.token_bytes(20)).decode().rstrip("="))
        try:
            totp(mfa_secret, time.time())
        except (ValueError, TypeError):
            raise SystemExit("mmfake: MMFAKE_MFA_SECRET is not valid base32")
        self.mfa_user = self.ws.add_user("mfauser", "mfauser@example.com", "system_user", first_name="Mia",
                                         last_name="Factor", mfa_active=True, mfa_secret=mfa_secret,
                                         create_at=_SEED_EPOCH_MS)
        self.admin["password"] = secret("MMFAKE_ADMIN_PASSWORD", password)
        self.alice["password"] = secret("MMFAKE_USER_PASSWORD", password)
        self.mfa_user["password"] = secret("MMFAKE_MFA_PASSWORD", password)
        self.mfa_code = env.get("MMFAKE_MFA_CODE") or None
        creds = {}
        for role, user, var in (("admin", self.admin, "MMFAKE_ADMIN_TOKEN"), ("user", self.alice, "MMFAKE_USER_TOKEN")):
            token = secret(var, new_id)
            self.pats[token] = {"id": new_id(), "token": token, "user_id": user["id"],
                                "description": "mmfake", "is_active": True}
            creds[role] = {"username": user["username"], "user_id": user["id"], "email": user["email"],
                           "password": user["password"], "token": token}
        creds["mfa"] = {"username": "mfauser", "user_id": self.mfa_user["id"], "password": self.mfa_user["password"],
                        "mfa_secret": mfa_secret, "mfa_code": self.mfa_code}
        self.generated = not all(env.get(v) for v in ("MMFAKE_ADMIN_PASSWORD", "MMFAKE_ADMIN_TOKEN",
                                                       "MMFAKE_USER_PASSWORD", "MMFAKE_USER_TOKEN"))
        return creds

    def cleanup(self):
        self.stopping.set()
        if self._tmp_state:
            shutil.rmtree(self._tmp_state, ignore_errors=True)

    # -- JSON views -------------------------------------------------------
    def user_json(self, user: dict, viewer: dict | None = None) -> dict:
        out = {"id": user["id"], "create_at": user["create_at"], "update_at": user["update_at"],
               "delete_at": user["delete_at"], "username": user["username"], "auth_data": "",
               "auth_service": user["auth_service"], "email": user["email"],
               "email_verified": user["email_verified"], "nickname": user["nickname"],
               "first_name": user["first_name"], "last_name": user["last_name"], "position": user["position"],
               "roles": user["roles"], "notify_props": user["notify_props"], "props": {},
               "last_password_update": user["create_at"], "locale": user["locale"],
               "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
               "disable_welcome_email": False}
        if user["mfa_active"]:
            out["mfa_active"] = True
        if user["is_bot"]:
            out["is_bot"] = True
            out["bot_description"] = ""
        if user["profile_image"]:
            out["last_picture_update"] = user["update_at"]
        privileged = viewer is None or viewer["id"] == user["id"] or "system_admin" in viewer["roles"].split()
        if not privileged:
            if not self.config.get("PrivacySettings", "ShowEmailAddress"):
                out["email"] = ""
            if not self.config.get("PrivacySettings", "ShowFullName"):
                out["first_name"] = out["last_name"] = ""
            out.pop("notify_props")
            out.pop("last_password_update")
        return out

    @staticmethod
    def team_json(team: dict) -> dict:
        return {"id": team["id"], "create_at": team["create_at"], "update_at": team["update_at"],
                "delete_at": team["delete_at"], "display_name": team["display_name"], "name": team["name"],
                "description": team["description"], "email": "", "type": team["type"], "company_name": "",
                "allowed_domains": "", "invite_id": team["invite_id"],
                "allow_open_invite": team["allow_open_invite"], "scheme_id": None, "group_constrained": None,
                "policy_id": None, "cloud_limits_archived": False}

    def channel_json(self, chan: dict) -> dict:
        posts = self.ws.channel_posts(chan["id"])
        roots = [p for p in posts if not p["root_id"]]
        return {"id": chan["id"], "create_at": chan["create_at"], "update_at": chan["update_at"],
                "delete_at": chan["delete_at"], "team_id": chan["team_id"], "type": chan["type"],
                "display_name": chan["display_name"], "name": chan["name"], "header": chan["header"],
                "purpose": chan["purpose"], "last_post_at": posts[-1]["create_at"] if posts else 0,
                "total_msg_count": len(posts), "extra_update_at": chan["create_at"],
                "creator_id": chan["creator_id"], "scheme_id": None, "props": None, "group_constrained": None,
                "shared": None, "total_msg_count_root": len(roots), "policy_id": None,
                "last_root_post_at": roots[-1]["create_at"] if roots else 0}

    def upload_json(self, us: dict) -> dict:
        out = {"id": us["id"], "type": us["type"], "create_at": us["create_at"], "user_id": us["user_id"]}
        if us["channel_id"]:
            out["channel_id"] = us["channel_id"]
        out.update(filename=us["filename"], file_size=us["file_size"], file_offset=us["file_offset"])
        if self.version >= (5, 35, 0):
            out.update(remote_id="", req_file_id="")
        return out

    @staticmethod
    def job_json(job: dict) -> dict:
        return {"id": job["id"], "type": job["type"], "priority": 0, "create_at": job["create_at"],
                "start_at": job["start_at"], "last_activity_at": job["last_activity_at"],
                "status": job["status"], "progress": job["progress"],
                "data": dict(job["data"]) if job["data"] is not None else None}

    # -- auth -------------------------------------------------------------
    @staticmethod
    def parse_token(req) -> tuple:
        """model.ParseAuthTokenFromRequest: cookie, then Bearer, then Token, then query."""
        cookies = req.headers.get_all("Cookie") or []
        for header in cookies:
            for part in header.split(";"):
                name, _, value = part.strip().partition("=")
                if name == "MMAUTHTOKEN":
                    return value.strip('"'), "cookie"
        auth = req.headers.get("Authorization") or ""
        if len(auth) > 6 and auth[:6].upper() == "BEARER":
            return auth[7:], "header"
        if len(auth) > 5 and auth[:5].lower() == "token":
            return auth[6:], "header"
        token = req.q("access_token")
        if token:
            return token, "query"
        return "", ""

    def lookup_token(self, token: str):
        with self.lock:
            sess = self.sessions.get(token)
            if sess:
                if sess["expires_at"] <= now_ms():
                    del self.sessions[token]
                    return None
                return sess
            pat = self.pats.get(token)
            if pat and pat["is_active"] and self.config.get("ServiceSettings", "EnableUserAccessTokens"):
                return {"id": pat["id"], "token": token, "user_id": pat["user_id"], "kind": "pat", "csrf": ""}
        return None

    def authenticate(self, req):
        """Returns the session (None when no token was sent) or raises 401."""
        if req.local:
            return {"id": "", "token": "", "user_id": "", "kind": "local", "csrf": ""}
        token, where = self.parse_token(req)
        if not token:
            return None
        sess = self.lookup_token(token)
        user = self.ws.users.get(sess["user_id"]) if sess else None
        if not sess or not user or user["delete_at"]:
            raise ApiError(401, "api.context.session_expired.app_error", "invalid or expired session token")
        if where == "query":
            raise ApiError(401, "api.context.token_provided.app_error")
        if where == "cookie" and req.method != "GET":
            csrf = req.headers.get("X-CSRF-Token") or ""
            xhr = (req.headers.get("X-Requested-With") or "") == "XMLHttpRequest"
            if not (csrf and sess["csrf"] and hmac.compare_digest(csrf, sess["csrf"])) and not xhr:
                raise ApiError(401, "api.context.session_expired.app_error", "token appears to be a CSRF attempt")
        return sess

    @staticmethod
    def is_admin(req) -> bool:
        if req.session and req.session["kind"] == "local":
            return True
        return bool(req.user) and "system_admin" in req.user["roles"].split()

    def require_admin(self, req, permission="manage_system"):
        if not self.is_admin(req):
            raise forbidden(permission, req.user["id"] if req.user else "")

    def create_session(self, user: dict) -> dict:
        hours = self.config.get("ServiceSettings", "SessionLengthWebInHours")
        seconds = self.args.session_seconds or hours * 3600
        sess = {"id": new_id(), "token": new_id(), "user_id": user["id"], "kind": "session",
                "csrf": new_id(), "expires_at": now_ms() + int(seconds * 1000)}
        with self.lock:
            self.sessions[sess["token"]] = sess
        return sess

    def expire_sessions(self, include_pats: bool = False) -> int:
        with self.lock:
            count = len(self.sessions)
            self.sessions.clear()
            if include_pats:
                for pat in self.pats.values():
                    pat["is_active"] = False
                count += len(self.pats)
        return count

    # -- /users ---------------------------------------------------------
    def h_login(self, req):
        props = {}
        body = req.read_body()
        echo = self.faults.take_one("login_echo")
        if echo:
            # A hostile or buggy server that repeats the request in its error.
            req.fault = "login_echo"
            err = ApiError(401, "api.user.login.invalid_credentials_email_username")
            err.message = f"login failed for request {body.decode('utf-8', 'replace')}"
            raise err
        try:
            value = decode_json_value(body)
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                props = value   # model.MapFromJSON: anything else becomes an empty map
        except ValueError:
            pass
        try:
            user = self._check_login(props.get("id", ""), props.get("login_id", ""),
                                     props.get("password", ""), props.get("token", ""))
        except ApiError as err:
            if err.id in UNMASKED_LOGIN_ERRORS:
                raise
            raise self._masked_login_error() from None
        sess = self.create_session(user)
        headers = [("Token", sess["token"])]
        if (req.headers.get("X-Requested-With") or "") == "XMLHttpRequest":
            max_age = max(1, (sess["expires_at"] - now_ms()) // 1000)
            headers += [("Set-Cookie", f"MMAUTHTOKEN={sess['token']}; Path=/; Max-Age={max_age}; HttpOnly"),
                        ("Set-Cookie", f"MMUSERID={user['id']}; Path=/; Max-Age={max_age}"),
                        ("Set-Cookie", f"MMCSRF={sess['csrf']}; Path=/; Max-Age={max_age}")]
        return jresp(self.user_json(user), headers=headers)

    def _masked_login_error(self) -> ApiError:
        cfg = self.config.raw()
        if any(cfg[s]["Enable"] for s in ("SamlSettings", "GitLabSettings", "GoogleSettings",
                                          "Office365Settings", "OpenIdSettings")):
            return ApiError(401, "api.user.login.invalid_credentials_sso")
        by_name = cfg["EmailSettings"]["EnableSignInWithUsername"]
        by_mail = cfg["EmailSettings"]["EnableSignInWithEmail"]
        if by_name and not by_mail:
            return ApiError(401, "api.user.login.invalid_credentials_username")
        if by_mail and not by_name:
            return ApiError(401, "api.user.login.invalid_credentials_email")
        return ApiError(401, "api.user.login.invalid_credentials_email_username")

    def _check_login(self, user_id: str, login_id: str, password: str, mfa_token: str) -> dict:
        if not password:
            raise ApiError(400, "api.user.login.blank_pwd.app_error")
        with self.lock:
            user = None
            if user_id:
                user = self.ws.users.get(user_id)
            elif login_id:
                lowered = login_id.lower()
                if self.config.get("EmailSettings", "EnableSignInWithUsername"):
                    user = self.ws.user_by_username(lowered)
                if not user and self.config.get("EmailSettings", "EnableSignInWithEmail"):
                    user = self.ws.user_by_email(lowered)
            if not user:
                raise ApiError(400, "store.sql_user.get_for_login.app_error")
            # CheckPasswordAndAllCriteria: preflight, password, MFA, reset attempts.
            if user["delete_at"]:
                raise ApiError(401, "api.user.login.inactive.app_error")
            if user["is_bot"]:
                raise ApiError(401, "api.user.login.bot_login_forbidden.app_error")
            if user["failed_attempts"] >= self.config.get("ServiceSettings", "MaximumLoginAttempts"):
                raise ApiError(401, "api.user.check_user_login_attempts.too_many.app_error")
            stored = user["password"]
            if not stored or not hmac.compare_digest(stored.encode(), password.encode()):
                user["failed_attempts"] += 1
                raise ApiError(401, "api.user.check_user_password.invalid.app_error")
            if user["mfa_active"] and self.config.get("ServiceSettings", "EnableMultifactorAuthentication"):
                ok = self._check_mfa(user, mfa_token)
                if ok is not True:
                    if mfa_token:
                        user["failed_attempts"] += 1
                    raise ApiError(401, "mfa.validate_token.authenticate.app_error" if ok is None
                                   else "api.user.check_user_mfa.bad_code.app_error")
            user["failed_attempts"] = 0
            return user

    def _check_mfa(self, user: dict, token: str):
        """True: valid; False: wrong or reused code; None: missing or unreadable.

        mfa.ValidateToken (server/platform/shared/mfa/mfa.go) runs dgoogauth with
        WindowSize 3 and DisallowReuse = the user's MfaUsedTimestamps: a code is
        accepted for the time steps t0-1..t0+1, and the step it matched is then
        stored, so the same code (same step) is refused from then on."""
        code = token.strip()
        if len(code) == 8 and code[0] in "123456789" and code.isdigit():
            return False    # a scratch code; none are issued
        if len(code) != 6 or not code.isdigit():
            return None
        used = user.setdefault("mfa_used_steps", [])
        if self.mfa_code and hmac.compare_digest(code, self.mfa_code):
            # The fixed demo code stands for one extra time step: usable once too.
            if "fixed" in used:
                return False
            used.append("fixed")
            return True
        t0 = int(time.time() // 30)
        for step in (t0 - 1, t0, t0 + 1):
            if hmac.compare_digest(code, totp(user["mfa_secret"], step * 30)):
                if step in used:
                    return False
                user["mfa_used_steps"] = [s for s in used if s == "fixed" or s >= t0 - 1] + [step]
                return True
        return False

    def h_logout(self, req):
        try:
            sess = self.authenticate(req)
        except ApiError:
            sess = None
        if sess and sess["kind"] == "session":
            with self.lock:
                self.sessions.pop(sess["token"], None)
        headers = [("Set-Cookie", "MMAUTHTOKEN=; Path=/; Max-Age=0; HttpOnly"),
                   ("Set-Cookie", "MMUSERID=; Path=/; Max-Age=0"),
                   ("Set-Cookie", "MMCSRF=; Path=/; Max-Age=0")]
        return jresp(STATUS_OK, headers=headers)

    def _user_id_param(self, req) -> str:
        uid = req.params["user_id"]
        if uid == "me" and req.user:
            uid = req.user["id"]
        if not is_valid_id(uid):
            raise invalid_url("user_id")
        return uid

    def _etag(self, user: dict) -> str:
        show_name = "true" if self.config.get("PrivacySettings", "ShowFullName") else "false"
        show_mail = "true" if self.config.get("PrivacySettings", "ShowEmailAddress") else "false"
        return f"{self.version_text}.{user['id']}.{user['update_at']}..0.{show_name}.{show_mail}.0"

    def h_get_user(self, req):
        uid = self._user_id_param(req)
        with self.lock:
            user = self.ws.users.get(uid)
            if not user:
                raise ApiError(404, "app.user.missing_account.const", f"user_id={uid}")
            etag = self._etag(user)
            if req.headers.get("If-None-Match") == etag:
                return Resp(304, b"", None, [("Etag", etag)])
            return jresp(self.user_json(user, req.user), headers=[("Etag", etag)])

    def h_get_users(self, req):
        page, per_page = self.paging(req)
        with self.lock:
            users = sorted(self.ws.users.values(), key=lambda u: u["username"])
            chunk = users[page * per_page:(page + 1) * per_page]
            return jresp([self.user_json(u, req.user) for u in chunk])

    def h_get_user_by_username(self, req):
        name = req.params["username"]
        if not (1 <= len(name) <= 64 and USERNAME_RE.match(name)) or name in RESTRICTED_USERNAMES:
            raise invalid_url("username")
        with self.lock:
            user = next((u for u in self.ws.users.values() if u["username"] == name), None)
            if not user:
                raise ApiError(404, "app.user.get_by_username.app_error", f"username={name}")
            return jresp(self.user_json(user, req.user), headers=[("Etag", self._etag(user))])

    def h_get_uploads_for_user(self, req):
        if req.local:
            # localGetUploadsForUser: GetUploadSessionsForUser(c.Params["user_id"]) as sent;
            # sessions created over the socket carry model.UploadNoUserID ("nouser").
            uid = req.params["user_id"]
            with self.lock:
                mine = [us for us in self.uploads.values() if us["user_id"] == uid]
                mine.sort(key=lambda us: (us["create_at"], us["seq"]))
                return jresp([self.upload_json(us) for us in mine])
        uid = self._user_id_param(req)
        if uid != req.user["id"]:
            raise ApiError(403, "api.user.get_uploads_for_user.forbidden.app_error")
        with self.lock:
            mine = [us for us in self.uploads.values() if us["user_id"] == uid]
            mine.sort(key=lambda us: (us["create_at"], us["seq"]))
            return jresp([self.upload_json(us) for us in mine])

    def h_create_token(self, req):
        uid = self._user_id_param(req)
        body = self.read_json(req, "user_access_token")
        if not isinstance(body, dict):
            raise invalid_body("user_access_token")
        description = field(body, "description")
        if description is not None and not isinstance(description, str):
            raise invalid_body("user_access_token")
        if not description:
            raise invalid_body("description")
        if not self.is_admin(req):
            raise forbidden("create_user_access_token", req.user["id"])
        if not self.config.get("ServiceSettings", "EnableUserAccessTokens"):
            raise ApiError(501, "app.user_access_token.disabled")
        with self.lock:
            if uid not in self.ws.users:
                raise ApiError(404, "app.user.missing_account.const")
            token = new_id()
            pat = {"id": new_id(), "token": token, "user_id": uid, "description": description, "is_active": True}
            self.pats[token] = pat
        return jresp({k: pat[k] for k in ("id", "token", "user_id", "description", "is_active")})

    # -- helpers ----------------------------------------------------------
    @staticmethod
    def paging(req) -> tuple:
        page = go_int(req.q("page"))
        if page is None or page < 0:
            page = 0
        per_page = go_int(req.q("per_page"))
        if per_page is None or per_page < 0:
            per_page = PER_PAGE_DEFAULT
        per_page = min(per_page, PER_PAGE_MAX)
        return page, per_page

    def body_limit(self, route) -> int:
        max_file = self.config.get("FileSettings", "MaxFileSize")
        if route.upload:
            return max_file + 512
        if self.version >= (9, 5, 0):
            return self.config.get("ServiceSettings", "MaximumPayloadSizeBytes")
        return max_file

    def read_json(self, req, name: str):
        raw = req.read_body()
        try:
            return decode_json_value(raw)
        except ValueError as exc:
            raise invalid_body(name, str(exc)) from None

    # -- /jobs ------------------------------------------------------------
    def api_job_types(self) -> set:
        types = set(API_JOB_TYPES)
        if self.version < (6, 0, 0):
            types.discard("extract_content")
        return types

    def h_create_job(self, req):
        body = self.read_json(req, "job")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise invalid_body("job", "json: cannot unmarshal into Go value of type model.Job")
        for key in ("id", "type", "status"):
            if field(body, key) is not None and not isinstance(field(body, key), str):
                raise invalid_body("job", f"json: cannot unmarshal into field {key} of type string")
        for key in ("priority", "create_at", "start_at", "last_activity_at", "progress"):
            if field(body, key) is not None and not is_int(field(body, key)):
                raise invalid_body("job", f"json: cannot unmarshal into field {key} of type int64")
        data = field(body, "data")
        if data is not None:
            if not isinstance(data, dict) or not all(v is None or isinstance(v, str) for v in data.values()):
                raise invalid_body("job", "json: cannot unmarshal into field data of type string")
            data = {k: (v or "") for k, v in data.items()}
        job_type = field(body, "type") or ""
        if job_type not in self.api_job_types():
            raise ApiError(400, "api.job.unable_to_create_job.incorrect_job_type")
        self.require_admin(req, "manage_jobs")
        if job_type not in WORKER_JOB_TYPES:
            raise ApiError(400, "model.job.is_valid.type.app_error", f"type={job_type}")
        ts = now_ms()
        with self.lock:
            self.job_seq += 1
            job = {"id": new_id(), "type": job_type, "create_at": ts, "start_at": 0, "last_activity_at": ts,
                   "status": "pending", "progress": 0, "data": data, "seq": self.job_seq}
            self.jobs[job["id"]] = job
            out = self.job_json(job)
        threading.Thread(target=self._job_main, args=(job["id"],), daemon=True,
                         name=f"job-{job['id'][:8]}").start()
        return jresp(out, status=201)

    def _job_param(self, req) -> dict:
        job_id = req.params["job_id"]
        if not is_valid_id(job_id):
            raise invalid_url("job_id")
        with self.lock:
            job = self.jobs.get(job_id)
        if not job:
            raise ApiError(404, "app.job.get.app_error", f"id={job_id}")
        return job

    def h_get_job(self, req):
        job = self._job_param(req)
        self.require_admin(req, "read_jobs")
        with self.lock:
            return jresp(self.job_json(job))

    def _list_jobs(self, req, types: set, status: str):
        page, per_page = self.paging(req)
        # Job listings read a replica (SqlJobStore.GetAllByTypePage uses GetReplicaX):
        # with --replica-lag-seconds a new job shows up in them only that much later.
        visible_from = now_ms() - int(self.args.replica_lag_seconds * 1000)
        with self.lock:
            jobs = [j for j in self.jobs.values() if j["type"] in types and (not status or j["status"] == status)
                    and j["create_at"] <= visible_from]
            jobs.sort(key=lambda j: (j["create_at"], j["seq"]), reverse=True)
            return jresp([self.job_json(j) for j in jobs[page * per_page:(page + 1) * per_page]])

    def h_get_jobs_by_type(self, req):
        job_type = req.params["job_type"]
        if len(job_type) > 32:
            raise invalid_url("job_type")
        if job_type not in self.api_job_types():
            raise ApiError(400, "api.job.retrieve.nopermissions")
        self.require_admin(req, "read_jobs")
        return self._list_jobs(req, {job_type}, "")

    def h_get_jobs(self, req):
        job_type = req.q("job_type")
        if job_type:
            if job_type not in self.api_job_types():
                raise ApiError(400, "api.job.retrieve.nopermissions")
            types = {job_type}
        else:
            types = self.api_job_types()
        self.require_admin(req, "read_jobs")
        return self._list_jobs(req, types, req.q("status"))

    def h_cancel_job(self, req):
        job = self._job_param(req)
        self.require_admin(req, "manage_jobs")
        with self.lock:
            if job["status"] == "pending":
                job.update(status="canceled", last_activity_at=now_ms())
            elif job["status"] == "in_progress":
                job.update(status="cancel_requested", last_activity_at=now_ms())
            else:
                raise ApiError(500, "jobs.request_cancellation.status.error", f"id={job['id']}")
        return jresp(STATUS_OK)

    # -- job workers ------------------------------------------------------
    def _may_claim(self, job: dict, created: float) -> bool:
        if time.monotonic() - created < self.args.job_pending_seconds:
            return False
        if not self.config.get("JobSettings", "RunJobs") or self.faults.jobs_stay_pending:
            return False
        if job["type"] in self.running_types:
            return False   # one job of a type at a time per node
        pending = [j for j in self.jobs.values() if j["type"] == job["type"] and j["status"] == "pending"]
        return min(pending, key=lambda j: j["seq"]) is job

    def _job_main(self, job_id: str) -> None:
        created = time.monotonic()
        while True:
            if self.stopping.is_set():
                return
            with self.lock:
                job = self.jobs[job_id]
                if job["status"] != "pending":
                    return
                if self._may_claim(job, created):
                    ts = now_ms()
                    job.update(status="in_progress", start_at=ts, last_activity_at=ts, progress=0)
                    self.running_types.add(job["type"])
                    break
            time.sleep(0.02)
        kind, fault = self.faults.take_job_fault(job["type"])
        runner = {"export_process": self._run_export, "import_process": self._run_import,
                  "extract_content": self._run_extract}.get(job["type"], self._run_noop)
        try:
            runner(job_id, kind, fault)
        except JobAborted as exc:
            self._job_error(job_id, str(exc.args[0]), exc.args[1] if len(exc.args) > 1 else None)
        except Exception as exc:  # a bug in the fake: report it as a job error, keep serving
            traceback.print_exc()
            self._job_error(job_id, f"mmfake internal error — {exc!r}")
        finally:
            with self.lock:
                self.running_types.discard(job["type"])

    def _job_sleep(self, job_id: str, seconds: float, honour_cancel: bool = False) -> bool:
        """Sleeps; False if cancellation was requested and the worker honours it."""
        end = time.monotonic() + seconds
        while True:
            if honour_cancel:
                with self.lock:
                    if self.jobs[job_id]["status"] == "cancel_requested":
                        return False
            left = end - time.monotonic()
            if left <= 0 or self.stopping.is_set():
                return True
            time.sleep(min(left, 0.05))

    def _stall(self) -> None:
        while not self.stopping.is_set():
            time.sleep(0.2)
        raise SystemExit

    def _check_fault(self, kind, fault) -> None:
        if kind == "job_stall":
            self._stall()
        if kind == "job_fail":
            raise JobAborted(fault.get("error", "Injected job failure (mmfake)."), fault.get("line_number"))

    def _job_update_data(self, job_id: str, values: dict, activity: bool = True) -> None:
        with self.lock:
            job = self.jobs[job_id]
            if job["data"] is None:
                job["data"] = {}
            job["data"].update(values)
            if activity:
                job["last_activity_at"] = now_ms()

    def _job_success(self, job_id: str) -> None:
        with self.lock:
            # SetJobSuccess updates the status unconditionally: it overwrites cancel_requested.
            self.jobs[job_id].update(status="success", progress=100, last_activity_at=now_ms())

    def _job_error(self, job_id: str, text: str, line_number=None) -> None:
        with self.lock:
            job = self.jobs[job_id]
            if job["status"] not in ("in_progress", "cancel_requested"):
                return
            if job["data"] is None:
                job["data"] = {}
            job["data"]["error"] = text
            if line_number is not None:
                job["data"]["line_number"] = str(line_number)
            job.update(status="error", progress=-1, last_activity_at=now_ms())

    def _job_canceled(self, job_id: str) -> None:
        with self.lock:
            self.jobs[job_id].update(status="canceled", last_activity_at=now_ms())

    def _run_noop(self, job_id, kind, fault):
        self._job_sleep(job_id, self.args.job_run_seconds)
        self._check_fault(kind, fault)
        self._job_success(job_id)

    def _run_export(self, job_id, kind, fault):
        with self.lock:
            opts = dict(self.jobs[job_id]["data"] or {})
            jsonl, files, counters = export_snapshot(self.ws, opts, self.version)
        name = f"{job_id}_export.zip" if self.export_naming == "jobid" else f"{new_id()}_export.zip"
        with_counters = self.version >= (9, 0, 0)
        counter_data = {f"{k}_exported": str(v) for k, v in counters.items()}
        half = self.args.job_run_seconds / 2

        def pause():
            if with_counters:
                self._job_update_data(job_id, counter_data)
            self._job_sleep(job_id, half)
            self._check_fault(kind, fault)

        with open(os.path.join(self.export_dir, name), "wb") as out:
            warnings = write_export_zip(out, jsonl, files, self.files_root, pause)
        self._job_sleep(job_id, half)
        if with_counters:
            self._job_update_data(job_id, dict(counter_data, num_warnings=str(warnings)))
        self._job_success(job_id)

    def _run_import(self, job_id, kind, fault):
        self._job_sleep(job_id, self.args.job_run_seconds)
        self._check_fault(kind, fault)
        with self.lock:
            data = dict(self.jobs[job_id]["data"] or {})
        if "import_file" not in data:
            raise JobAborted(ImportFailed("import_process.worker.do_job.missing_file").text())
        name = data["import_file"]
        local = data.get("local_mode") == "true"
        if local:
            path = name
            if not os.path.isfile(path):
                raise JobAborted(f"file {name} doesn't exist.")
        else:
            path = os.path.normpath(os.path.join(self.import_dir, name))
            if not path.startswith(self.import_dir + os.sep) or not os.path.isfile(path):
                raise JobAborted(ImportFailed("import_process.worker.do_job.file_exists").text())
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise JobAborted(ImportFailed("import_process.worker.do_job.open_file", str(exc)).text()) from None
        with zf:
            jsonl = next((i.filename for i in zf.infolist()
                          if "/" not in i.filename and i.filename.endswith(".jsonl")), None)
            if jsonl is None:
                raise JobAborted(ImportFailed("import_process.worker.do_job.missing_jsonl", "jsonFile was nil").text())
            if ".." in jsonl:
                raise JobAborted(ImportFailed("import_process.worker.do_job.open_file",
                                              "jsonFilePath contains path traversal").text())
            importer = BulkImporter(self.ws, zf, self.version, self.lock)
            try:
                with zf.open(jsonl) as stream:
                    failure, line_no = importer.run(stream)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as exc:
                raise JobAborted(ImportFailed("import_process.worker.do_job.open_file", str(exc)).text()) from None
        if failure:
            raise JobAborted(failure.text(), line_no)
        if importer.warnings:
            sys.stderr.write("mmfake: import %s: %d warning(s): %s\n" % (job_id, len(importer.warnings),
                                                                          "; ".join(importer.warnings[:5])))
        if not local:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        self._job_success(job_id)

    def _run_extract(self, job_id, kind, fault):
        with self.lock:
            data = dict(self.jobs[job_id]["data"] or {})
        start = go_int(data.get("from", "0"))
        end = go_int(data.get("to", str(int(time.time()))))
        if start is None:
            raise JobAborted(message_for("extract_content.worker.do_job.invalid_input.from"))
        if end is None:
            raise JobAborted(message_for("extract_content.worker.do_job.invalid_input.to"))
        if not self._job_sleep(job_id, self.args.job_run_seconds, honour_cancel=True):
            self._job_canceled(job_id)
            return
        self._check_fault(kind, fault)
        with self.lock:
            processed = sum(1 for f in self.ws.files.values() if start * 1000 <= f["create_at"] <= end * 1000)
        self._job_update_data(job_id, {"processed": str(processed), "errors": "0"})
        self._job_success(job_id)

    # -- /uploads ---------------------------------------------------------
    def h_create_upload(self, req):
        if not self.config.get("FileSettings", "EnableFileAttachments"):
            raise ApiError(501, "api.file.attachments.disabled.app_error")
        body = self.read_json(req, "upload")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise invalid_body("upload", "json: cannot unmarshal into Go value of type model.UploadSession")
        for key in ("id", "type", "user_id", "channel_id", "filename", "remote_id", "req_file_id"):
            if field(body, key) is not None and not isinstance(field(body, key), str):
                raise invalid_body("upload", f"json: cannot unmarshal into field {key} of type string")
        for key in ("create_at", "file_size", "file_offset"):
            if field(body, key) is not None and not is_int(field(body, key)):
                raise invalid_body("upload", f"json: cannot unmarshal into field {key} of type int64")
        upload_type = field(body, "type") or ""
        channel_id = field(body, "channel_id") or ""
        chan = None
        if upload_type == "import":
            self.require_admin(req)
            if self.config.cloud:
                raise ApiError(400, "api.file.cloud_upload.app_error")
        else:
            with self.lock:
                chan = self.ws.channels.get(channel_id)
                allowed = chan is not None and (self.is_admin(req) or (req.user and req.user["id"] in chan["members"]))
            if not allowed:
                raise forbidden("upload_file", req.user["id"] if req.user else "")
            upload_type = "attachment"
        user_id = req.user["id"] if req.user else (field(body, "user_id") or "")
        size = field(body, "file_size") or 0
        if size > self.config.get("FileSettings", "MaxFileSize"):
            prefix = "api" if self.version >= (6, 0, 0) else "app"
            raise ApiError(413, f"{prefix}.upload.create.upload_too_large.app_error")
        filename = field(body, "filename") or ""
        if not is_valid_id(user_id) and user_id != "nouser":
            raise ApiError(400, "model.upload_session.is_valid.user_id.app_error")
        if upload_type == "attachment" and not is_valid_id(channel_id):
            raise ApiError(400, "model.upload_session.is_valid.channel_id.app_error")
        if not filename:
            raise ApiError(400, "model.upload_session.is_valid.filename.app_error")
        if size <= 0:
            raise ApiError(400, "model.upload_session.is_valid.file_size.app_error")
        if chan is not None and chan["delete_at"]:
            raise ApiError(400, "app.upload.create.cannot_upload_to_deleted_channel.app_error")
        base = go_base(filename)
        upload_id = new_id()
        if upload_type == "import":
            path = os.path.join(self.import_dir, f"{upload_id}_{base}")
        else:
            day = time.strftime("%Y%m%d", time.gmtime())
            path = os.path.join(self.files_root, day, "teams", "noteam", "channels", channel_id,
                                "users", user_id, upload_id, base)
        with self.lock:
            self.job_seq += 1
            us = {"id": upload_id, "type": upload_type, "create_at": now_ms(), "user_id": user_id,
                  "channel_id": channel_id if upload_type == "attachment" else "", "filename": base,
                  "file_size": size, "file_offset": 0, "path": path, "seq": self.job_seq}
            self.uploads[upload_id] = us
            return jresp(self.upload_json(us), status=201)

    def _upload_param(self, req) -> dict:
        upload_id = req.params["upload_id"]
        if not is_valid_id(upload_id):
            raise invalid_url("upload_id")
        with self.lock:
            us = self.uploads.get(upload_id)
        if not us:
            raise ApiError(404, "app.upload.get.app_error", "not found")
        return us

    def h_get_upload(self, req):
        us = self._upload_param(req)
        if req.user and us["user_id"] != req.user["id"] and not self.is_admin(req):
            raise ApiError(403, "api.upload.get_upload.forbidden.app_error")
        with self.lock:
            return jresp(self.upload_json(us))

    def h_upload_data(self, req):
        if not self.config.get("FileSettings", "EnableFileAttachments"):
            raise ApiError(501, "api.file.attachments.disabled.app_error")
        us = self._upload_param(req)
        if us["type"] == "import":
            self.require_admin(req)
            if self.config.cloud:
                raise ApiError(400, "api.file.cloud_upload.app_error")
        elif not req.user or us["user_id"] != req.user["id"]:
            raise forbidden("upload_file", req.user["id"] if req.user else "")
        reader = self._upload_reader(req, us)
        with self.lock:
            if us["id"] in self.busy_uploads:
                raise ApiError(400, "app.upload.upload_data.concurrent.app_error")
            if us["id"] not in self.uploads:
                raise ApiError(404, "app.upload.get.app_error", "not found")
            self.busy_uploads.add(us["id"])
        if self.faults.take_one("upload_stuck"):
            # A broken target: reads the body, answers 204, stores nothing.
            req.fault = "upload_stuck"
            while reader(1 << 16):
                pass
            with self.lock:
                self.busy_uploads.discard(us["id"])
            return Resp(204, b"", None)
        cut = self.faults.take_one("upload_cut")
        if cut:
            req.fault = "upload_cut"
            req.body.cut_after = cut["after_bytes"]
        try:
            return self._upload_write(req, us, reader)
        finally:
            with self.lock:
                self.busy_uploads.discard(us["id"])

    def _upload_reader(self, req, us: dict):
        """doUploadData: the first part of a multipart body, or the raw body."""
        boundary = multipart_boundary(req.headers.get("Content-Type") or "")
        if boundary is not None and self.version >= (5, 30, 0):
            if not boundary:
                raise ApiError(400, "api.upload.upload_data.invalid_content_type", "http: no multipart boundary param")
            try:
                part = first_multipart_part(req.read_body(), boundary)
            except ValueError as exc:
                raise ApiError(400, "api.upload.upload_data.multipart_error", str(exc)) from None
            stream = io.BytesIO(part)
            return stream.read
        if req.body.length is not None and req.body.length > us["file_size"] - us["file_offset"]:
            raise ApiError(400, "api.upload.upload_data.invalid_content_length")
        return req.body.read

    def _upload_write(self, req, us: dict, reader) -> Resp:
        """app.UploadData: append at file_offset; keep what arrived even on failure."""
        remaining = us["file_size"] - us["file_offset"]
        first = us["file_offset"] == 0
        target = us["path"] + (INCOMPLETE_SUFFIX if us["type"] == "import" else "")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        written, failure = 0, None
        bps = self.faults.upload_bps
        started = time.monotonic()
        with open(target, "wb" if first else "ab") as out:
            while written < remaining:
                try:
                    chunk = reader(min(256 * 1024, remaining - written))
                except (ClientGone, BodyCut, ReadTimeout) as exc:
                    failure = exc
                    break
                if not chunk:
                    break
                out.write(chunk)
                written += len(chunk)
                if bps:
                    delay = written / bps - (time.monotonic() - started)
                    if delay > 0:
                        time.sleep(delay)
        if first and failure is not None and written == 0:
            raise failure
        if first and written < MIN_FIRST_PART and written != us["file_size"]:
            try:
                os.remove(target)
            except FileNotFoundError:
                pass
            if isinstance(failure, (ClientGone, BodyCut)):
                raise failure
            if failure is not None:
                req.force_close = True
            raise ApiError(400, "app.upload.upload_data.first_part_too_small.app_error",
                           str(failure or ""), {"Size": MIN_FIRST_PART})
        with self.lock:
            us["file_offset"] += written
            complete = us["file_offset"] == us["file_size"]
        if failure is not None:
            raise failure
        if not complete:
            return Resp(204, b"", None)
        if us["type"] == "import":
            os.replace(target, us["path"])
        ts = now_ms()
        ext = os.path.splitext(us["filename"])[1].lower().lstrip(".")
        info = {"id": new_id(), "user_id": us["user_id"], "post_id": "", "channel_id": us["channel_id"],
                "create_at": ts, "update_at": ts, "delete_at": 0, "name": us["filename"], "extension": ext,
                "size": us["file_size"],
                "mime_type": mimetypes.guess_type(us["filename"])[0] or "application/octet-stream",
                "mini_preview": None, "remote_id": "", "archived": False}
        with self.lock:
            self.uploads.pop(us["id"], None)   # the session row is deleted on completion
        return jresp(info)

    # -- /exports, /imports -------------------------------------------------
    def _export_path(self, name: str):
        if "/" in name or name in (".", ".."):
            return None
        path = os.path.join(self.export_dir, name)
        return path if os.path.isfile(path) else None

    def h_list_exports(self, req):
        self.require_admin(req)
        return jresp(sorted(os.listdir(self.export_dir)))

    def h_download_export(self, req):
        self.require_admin(req)
        path = self._export_path(req.params["name"])
        if not path:
            raise ApiError(404, "api.export.export_not_found.app_error")
        req.transport.serve_export(req, path)
        return STREAMED

    def h_delete_export(self, req):
        self.require_admin(req)
        path = self._export_path(req.params["name"])
        if path:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        return jresp(STATUS_OK)

    def h_presign_export(self, req):
        self.require_admin(req)
        if not self.config.get("FeatureFlags", "EnableExportDirectDownload"):
            raise ApiError(500, "app.eport.generate_presigned_url.featureflag.app_error")
        if not self.config.get("FileSettings", "DedicatedExportStore"):
            raise ApiError(500, "app.eport.generate_presigned_url.config.app_error")
        name = go_base(req.params["name"])
        if not self._export_path(name):
            raise ApiError(500, "app.eport.generate_presigned_url.notfound.app_error")
        seconds = self.config.get("FileSettings", "ExportAmazonS3PresignExpiresSeconds")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        key = f"export/{name}"
        query = urllib.parse.urlencode({
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": "MMFAKE/s3/aws4_request",
            "X-Amz-Date": stamp, "X-Amz-Expires": str(seconds), "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self.presign_signature(key, stamp, str(seconds))})
        url = f"{self.base_url}/__s3/mmfake-exports/{urllib.parse.quote(key)}?{query}"
        return jresp({"url": url, "expiration": seconds * 1_000_000_000})

    def presign_signature(self, key: str, stamp: str, expires: str) -> str:
        return hmac.new(self.presign_key, f"{key}\n{stamp}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def h_list_imports(self, req):
        self.require_admin(req)
        names = sorted(n for n in os.listdir(self.import_dir) if not n.endswith(INCOMPLETE_SUFFIX))
        return jresp(names)

    def h_delete_import(self, req):
        self.require_admin(req)
        name = req.params["name"]
        if "/" not in name:
            try:
                os.remove(os.path.join(self.import_dir, name))
            except (FileNotFoundError, IsADirectoryError):
                pass
        return jresp(STATUS_OK)

    # -- /config ------------------------------------------------------------
    def _config_out(self, req) -> Resp:
        cfg = self.config.sanitized()
        if req.q("remove_masked") == "true":
            for path, _ in SECRET_FIELDS:
                parent, key = _walk(cfg, path)
                if parent is not None and parent.get(key) == MASK:
                    del parent[key]
        return jresp(cfg, headers=[("Cache-Control", "no-cache, no-store, must-revalidate")])

    def h_get_config(self, req):
        self.require_admin(req, "sysconsole_read_*")
        return self._config_out(req)

    def h_patch_config(self, req):
        body = self.read_json(req, "config")
        self.require_admin(req, "sysconsole_write_*")
        self.config.patch(body)
        return self._config_out(req)

    def h_update_config(self, req):
        body = self.read_json(req, "config")
        self.require_admin(req, "sysconsole_write_*")
        self.config.patch(body, full_replace=True)
        return self._config_out(req)

    def h_client_config(self, req):
        fmt = req.q("format")
        if not fmt:
            raise ApiError(501, "api.config.client.old_format.app_error")
        if fmt != "old":
            raise invalid_url("format")
        cfg = self.config.raw()

        def b(value):
            return "true" if value else "false"

        out = {"Version": self.version_text, "BuildNumber": "12345", "BuildHash": "abcdef",
               "BuildEnterpriseReady": "true", "SiteURL": cfg["ServiceSettings"]["SiteURL"],
               "SiteName": cfg["TeamSettings"]["SiteName"], "DiagnosticsEnabled": "false",
               "EnableSignInWithEmail": b(cfg["EmailSettings"]["EnableSignInWithEmail"]),
               "EnableSignInWithUsername": b(cfg["EmailSettings"]["EnableSignInWithUsername"]),
               "EnableMultifactorAuthentication": b(cfg["ServiceSettings"]["EnableMultifactorAuthentication"]),
               "IsLicensed": "true"}
        if req.user:
            out.update({"MaxFileSize": str(cfg["FileSettings"]["MaxFileSize"]), "MaxPostSize": str(MAX_POST_SIZE),
                        "EnableFileAttachments": b(cfg["FileSettings"]["EnableFileAttachments"]),
                        "EnableUserAccessTokens": b(cfg["ServiceSettings"]["EnableUserAccessTokens"]),
                        "ShowEmailAddress": b(cfg["PrivacySettings"]["ShowEmailAddress"]),
                        "ShowFullName": b(cfg["PrivacySettings"]["ShowFullName"])})
        return jresp(out)

    def h_ping(self, req):
        return jresp({"ActiveSearchBackend": "database", "AndroidLatestVersion": "", "AndroidMinVersion": "",
                      "IosLatestVersion": "", "IosMinVersion": "", "status": "OK"})

    # -- /teams, /channels (reconciliation reads) -----------------------------
    def _can_see_team(self, req, team: dict) -> bool:
        return (self.is_admin(req) or (team["type"] == "O" and team["allow_open_invite"])
                or (req.user is not None and req.user["id"] in team["members"]))

    def _is_team_member(self, req, team_id: str) -> bool:
        team = self.ws.teams.get(team_id)
        return self.is_admin(req) or (team is not None and req.user is not None and req.user["id"] in team["members"])

    def _can_read_channel(self, req, chan: dict) -> bool:
        if self.is_admin(req) or (req.user and req.user["id"] in chan["members"]):
            return True
        return chan["type"] == "O" and self._is_team_member(req, chan["team_id"])

    def h_get_teams(self, req):
        page, per_page = self.paging(req)
        with self.lock:
            teams = [t for t in self.ws.teams.values() if not t["delete_at"]]
            if not self.is_admin(req):
                teams = [t for t in teams if t["type"] == "O" and t["allow_open_invite"]]
            teams.sort(key=lambda t: (t["display_name"].lower(), t["name"]))
            return jresp([self.team_json(t) for t in teams[page * per_page:(page + 1) * per_page]])

    def _team_param(self, req) -> dict:
        team_id = req.params["team_id"]
        if not is_valid_id(team_id):
            raise invalid_url("team_id")
        return team_id

    def h_get_team(self, req):
        team_id = self._team_param(req)
        with self.lock:
            team = self.ws.teams.get(team_id)
            if not team:
                raise ApiError(404, "app.team.get.find.app_error", f"id={team_id}")
            if not self._can_see_team(req, team):
                raise forbidden("view_team", req.user["id"] if req.user else "")
            return jresp(self.team_json(team))

    def h_get_team_by_name(self, req):
        name = req.params["team_name"]
        if not TEAM_NAME_RE.match(name) or len(name) > 64:
            raise invalid_url("team_name")
        with self.lock:
            team = self.ws.team_by_name(name)
            if not team:
                raise ApiError(404, "app.team.get_by_name.missing.app_error", f"name={name}")
            if not self._can_see_team(req, team):
                raise forbidden("view_team", req.user["id"] if req.user else "")
            return jresp(self.team_json(team))

    def _team_channel_list(self, req, team_id: str, pred) -> Resp:
        page, per_page = self.paging(req)
        chans = [c for c in self.ws.channels.values() if c["team_id"] == team_id and pred(c)]
        chans.sort(key=lambda c: (c["display_name"].lower(), c["name"]))
        return jresp([self.channel_json(c) for c in chans[page * per_page:(page + 1) * per_page]])

    def h_team_channels(self, req):
        team_id = self._team_param(req)
        with self.lock:
            if not self._is_team_member(req, team_id):
                raise forbidden("list_team_channels", req.user["id"] if req.user else "")
            return self._team_channel_list(req, team_id, lambda c: c["type"] == "O" and not c["delete_at"])

    def h_team_private_channels(self, req):
        team_id = self._team_param(req)
        self.require_admin(req)
        with self.lock:
            return self._team_channel_list(req, team_id, lambda c: c["type"] == "P" and not c["delete_at"])

    def h_team_deleted_channels(self, req):
        team_id = self._team_param(req)
        with self.lock:
            if not self._is_team_member(req, team_id):
                raise forbidden("list_team_channels", req.user["id"] if req.user else "")
            return self._team_channel_list(req, team_id, lambda c: c["type"] in "OP" and c["delete_at"]
                                           and (c["type"] == "O" or self._can_read_channel(req, c)))

    def h_channel_by_name(self, req):
        team_id = self._team_param(req)
        name = req.params["channel_name"]
        if len(name) > 64:
            raise invalid_url("channel_name")
        include_deleted = req.q("include_deleted") == "true"
        with self.lock:
            chan = self.ws.channel_by_name(team_id, name)
            if not chan or (chan["delete_at"] and not include_deleted) or not self._can_read_channel(req, chan):
                raise ApiError(404, "app.channel.get_by_name.missing.app_error", f"name={name}")
            return jresp(self.channel_json(chan))

    def h_all_channels(self, req):
        self.require_admin(req, "sysconsole_read_user_management_channels")
        page, per_page = self.paging(req)
        include_deleted = req.q("include_deleted") == "true"
        with self.lock:
            chans = [c for c in self.ws.channels.values()
                     if c["type"] in "OP" and (include_deleted or not c["delete_at"])]
            if req.q("exclude_default_channels") == "true":
                chans = [c for c in chans if c["name"] not in ("town-square", "off-topic")]
            chans.sort(key=lambda c: (c["display_name"].lower(), c["id"]))
            out = []
            for chan in chans[page * per_page:(page + 1) * per_page]:
                item = self.channel_json(chan)
                team = self.ws.teams.get(chan["team_id"], {})
                item.update(team_display_name=team.get("display_name", ""), team_name=team.get("name", ""),
                            team_update_at=team.get("update_at", 0))
                out.append(item)
            return jresp(out)

    def h_get_channel(self, req):
        channel_id = req.params["channel_id"]
        if not is_valid_id(channel_id):
            raise invalid_url("channel_id")
        with self.lock:
            chan = self.ws.channels.get(channel_id)
            if not chan:
                raise ApiError(404, "app.channel.get.existing.app_error", f"id={channel_id}")
            if not self._can_read_channel(req, chan):
                raise forbidden("read_channel", req.user["id"] if req.user else "")
            return jresp(self.channel_json(chan))

    # -- /__fake control endpoints (no auth, never logged) ---------------------
    def control(self, method: str, path: str, query: dict, raw: bytes) -> tuple:
        def body() -> dict:
            try:
                value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            except ValueError as exc:
                raise ValueError(f"malformed JSON: {exc}") from None
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value

        sub = path[len("/__fake"):]
        key = (method, sub)
        if key == ("GET", "/health"):
            return 200, {"ok": True, "version": self.version_text, "url": self.base_url}
        if key == ("GET", "/faults"):
            return 200, self.faults.state()
        if key == ("POST", "/faults"):
            spec = body()
            actions = {}
            self.faults.update({k: v for k, v in spec.items() if k not in ("expire_sessions", "change_export")})
            if spec.get("expire_sessions"):
                opts = spec["expire_sessions"] if isinstance(spec["expire_sessions"], dict) else {}
                actions["expired_sessions"] = self.expire_sessions(bool(opts.get("include_pats")))
            if spec.get("change_export"):
                actions["changed_export"] = self.change_export(spec["change_export"])
            return 200, dict(self.faults.state(), actions=actions)
        if key == ("GET", "/log"):
            since = go_int((query.get("since") or ["0"])[0]) or 0
            return 200, self.log.list(since)
        if key in (("POST", "/reset-log"), ("POST", "/log/reset")):
            self.log.reset()
            return 200, STATUS_OK
        if key == ("GET", "/model"):
            with self.lock:
                return 200, self.ws.summary()
        if method == "POST" and sub.startswith("/model/"):
            return 200, self.model_edit(sub[len("/model/"):], body())
        if key == ("GET", "/jobs"):
            with self.lock:
                jobs = sorted(self.jobs.values(), key=lambda j: j["seq"])
                return 200, [self.job_json(j) for j in jobs]
        if key == ("GET", "/uploads"):
            with self.lock:
                return 200, [dict(self.upload_json(us), path=os.path.basename(us["path"]))
                             for us in sorted(self.uploads.values(), key=lambda u: u["seq"])]
        if key == ("GET", "/files"):
            def listing(directory):
                return [{"name": n, "size": os.path.getsize(os.path.join(directory, n))}
                        for n in sorted(os.listdir(directory))]
            return 200, {"exports": listing(self.export_dir), "imports": listing(self.import_dir)}
        if key == ("GET", "/config"):
            return 200, self.config.raw()
        if key == ("POST", "/config"):
            try:
                self.config.patch(body(), trusted=True)
            except ApiError as err:
                raise ValueError(f"{err.id}: {err.detail}") from None
            return 200, self.config.raw()
        if key == ("POST", "/sessions/expire"):
            return 200, {"expired": self.expire_sessions(bool(body().get("include_pats")))}
        return 404, {"error": f"no control endpoint {method} {path}"}

    def model_edit(self, action: str, spec: dict) -> dict:
        with self.lock:
            ws = self.ws
            if action == "delete-user":
                user = ws.user_by_username(spec.get("username", ""))
                if not user:
                    raise ValueError("no such user")
                ws.remove_user(user["id"])
                return STATUS_OK
            team = ws.team_by_name(spec.get("team", ""))
            if not team:
                raise ValueError("no such team")
            if action == "delete-team":
                ws.remove_team(team["id"])
                return STATUS_OK
            chan = ws.channel_by_name(team["id"], spec.get("channel", ""))
            if not chan:
                raise ValueError("no such channel")
            if action == "delete-channel":
                ws.remove_channel(chan["id"])
                return STATUS_OK
            if action == "archive-channel":
                chan["delete_at"] = now_ms()
                return STATUS_OK
            if action == "delete-posts":
                count = spec.get("count", 1)
                roots = [p for p in ws.channel_posts(chan["id"]) if not p["root_id"]]
                for post in roots[-count:] if count > 0 else []:
                    ws.remove_post(post["id"])
                return {"deleted": min(count, len(roots))}
        raise ValueError(f"unknown model action {action}")

    def change_export(self, spec) -> dict:
        if not isinstance(spec, dict):
            raise ValueError("change_export: expected an object")
        names = [n for n in os.listdir(self.export_dir) if os.path.isfile(os.path.join(self.export_dir, n))]
        name = spec.get("name") or max(names, key=lambda n: os.path.getmtime(os.path.join(self.export_dir, n)),
                                       default=None)
        if not name or name not in names:
            raise ValueError("change_export: no such export file")
        path = os.path.join(self.export_dir, name)
        old = os.path.getsize(path)
        mode = spec.get("mode", "append")
        count = spec.get("bytes", 4096)
        if not is_int(count) or count < 0:
            raise ValueError("change_export: bytes must be an integer >= 0")
        if mode == "append":
            with open(path, "ab") as fh:
                fh.write(secrets.token_bytes(count))
        elif mode == "truncate":
            os.truncate(path, spec.get("size", max(0, old - count)))
        elif mode == "corrupt":
            with open(path, "r+b") as fh:
                fh.seek(old // 2)
                data = fh.read(count)
                fh.seek(old // 2)
                fh.write(bytes(b ^ 0xFF for b in data))
        elif mode == "regenerate":
            with self.lock:
                jsonl, files, _ = export_snapshot(self.ws, spec.get("data") or {"include_attachments": "true"},
                                                  self.version)
            tmp = path + ".regen"
            with open(tmp, "wb") as out:
                write_export_zip(out, jsonl, files, self.files_root)
            os.replace(tmp, path)
        else:
            raise ValueError("change_export: mode must be append|truncate|corrupt|regenerate")
        return {"name": name, "old_size": old, "new_size": os.path.getsize(path)}


# ---------------------------------------------------------------------------
# HTTP transport
# ---------------------------------------------------------------------------

class ClientGone(Exception):
    """The client closed the connection (or reset it) in the middle of the body."""
    outcome = "client_gone"


class BadRequestBody(ClientGone):
    outcome = "bad_chunked_body"


class BodyCut(Exception):
    """The upload_cut fault stopped reading the body; the connection is dropped."""
    outcome = "upload_cut"


class ReadTimeout(Exception):
    """ServiceSettings.ReadTimeout passed before the whole body arrived."""
    outcome = "read_timeout"


def multipart_boundary(ctype: str):
    """None: not multipart/form-data (a raw body); "": multipart without a boundary."""
    parts = ctype.split(";")
    if parts[0].strip().lower() != "multipart/form-data":
        return None
    for param in parts[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return ""


def first_multipart_part(body: bytes, boundary: str) -> bytes:
    """The data of the first part of a multipart body (only that one is read)."""
    delim = b"--" + boundary.encode("latin-1")
    start = body.find(delim)
    if start < 0:
        raise ValueError("multipart: NextPart: EOF")
    pos = start + len(delim)
    if body[pos:pos + 2] == b"--":
        raise ValueError("multipart: NextPart: EOF")
    eol = body.find(b"\r\n", pos)
    if eol < 0:
        raise ValueError("multipart: NextPart: EOF")
    header_end = body.find(b"\r\n\r\n", eol)
    if header_end < 0:
        raise ValueError("multipart: NextPart: malformed MIME header")
    data_start = header_end + 4
    end = body.find(b"\r\n" + delim, data_start)
    if end < 0:
        raise ValueError("multipart: NextPart: unexpected EOF")
    return body[data_start:end]


def parse_range(header: str, size: int):
    """net/http parseRange: ([(start, length)], error text or None)."""
    if not header:
        return [], None
    if not header.startswith("bytes="):
        return None, "invalid range"
    ranges, no_overlap = [], False
    for spec in header[len("bytes="):].split(","):
        spec = spec.strip(" \t")
        if not spec:
            continue
        start, sep, end = spec.partition("-")
        if not sep:
            return None, "invalid range"
        start, end = start.strip(" \t"), end.strip(" \t")
        if not start:
            if not end or end[0] == "-":
                return None, "invalid range"
            count = go_int(end)
            if count is None or count < 0:
                return None, "invalid range"
            count = min(count, size)
            ranges.append((size - count, count))
            continue
        first = go_int(start)
        if first is None or first < 0:
            return None, "invalid range"
        if first >= size:
            no_overlap = True
            continue
        if not end:
            ranges.append((first, size - first))
            continue
        last = go_int(end)
        if last is None or first > last:
            return None, "invalid range"
        last = min(last, size - 1)
        ranges.append((first, last - first + 1))
    if no_overlap and not ranges:
        return None, "invalid range: failed to overlap"
    return ranges, None


def go_clean_path(path: str) -> str:
    """gorilla/mux cleanPath: the path a non-clean request is redirected to."""
    if not path:
        return "/"
    if path[0] != "/":
        path = "/" + path
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if path.endswith("/") and clean != "/":
        clean += "/"
    return clean


NGINX_PAGE = ("<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
              "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
WEBAPP_PAGE = (b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Mattermost</title></head>"
               b"<body><noscript>To use Mattermost, please enable JavaScript.</noscript><div id=\"root\"></div>"
               b"</body></html>")


class BodyReader:
    """Reads a request body (Content-Length or chunked) incrementally, sending
    100 Continue only when the handler starts reading, as Go does."""

    def __init__(self, transport, app):
        self.t = transport
        headers = transport.headers
        self.chunked = (headers.get("Transfer-Encoding") or "").strip().lower() == "chunked"
        length = headers.get("Content-Length")
        self.length = None if self.chunked else (int(length.strip()) if length else 0)
        self.left = self.length
        self.chunk_left = 0
        self.done = not self.chunked and self.length == 0
        self.expect = (headers.get("Expect") or "").strip().lower() == "100-continue"
        self.continue_sent = False
        self.bytes_read = 0
        self.deadline = transport.request_started + app.args.read_timeout
        self.cut_after = None

    def _before_read(self) -> None:
        if self.expect and not self.continue_sent:
            self.continue_sent = True
            self.t.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ReadTimeout()
        self.t.connection.settimeout(left)

    def read(self, size: int = 256 * 1024) -> bytes:
        if self.done:
            return b""
        if self.cut_after is not None:
            if self.bytes_read >= self.cut_after:
                raise BodyCut()
            size = min(size, self.cut_after - self.bytes_read)
        self._before_read()
        try:
            data = self._read_chunked(size) if self.chunked else self._read_plain(size)
        except (TimeoutError, socket.timeout):
            raise ReadTimeout() from None
        except (ConnectionError, OSError) as exc:
            raise ClientGone(str(exc)) from None
        self.bytes_read += len(data)
        return data

    def _read_plain(self, size: int) -> bytes:
        data = self.t.rfile.read1(min(size, self.left))
        if not data:
            raise ClientGone("unexpected EOF in request body")
        self.left -= len(data)
        self.done = self.left == 0
        return data

    def _read_chunked(self, size: int) -> bytes:
        rfile = self.t.rfile
        while self.chunk_left == 0:
            line = rfile.readline(4096)
            if not line:
                raise ClientGone("unexpected EOF in chunked body")
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequestBody("malformed chunk length") from None
            if chunk == 0:
                while True:   # trailers
                    trailer = rfile.readline(4096)
                    if trailer in (b"\r\n", b"\n"):
                        break
                    if not trailer:
                        raise ClientGone("unexpected EOF in chunked trailer")
                self.done = True
                return b""
            self.chunk_left = chunk
        data = rfile.read1(min(size, self.chunk_left))
        if not data:
            raise ClientGone("unexpected EOF in chunked body")
        self.chunk_left -= len(data)
        if self.chunk_left == 0 and rfile.readline(4096) not in (b"\r\n", b"\n"):
            raise BadRequestBody("malformed chunk terminator")
        return data

    def read_all(self, limit: int | None) -> bytes:
        parts, total = [], 0
        while True:
            data = self.read()
            if not data:
                return b"".join(parts)
            total += len(data)
            if limit is not None and total > limit:
                self.t.close_connection = True
                raise ApiError(413, "api.context.request_body_too_large.app_error", "http: request body too large")
            parts.append(data)

    def must_close(self) -> bool:
        """An unread body the server will not drain: answer with Connection: close."""
        if self.done:
            return False
        if self.expect and not self.continue_sent:
            return True
        return self.left is not None and self.left > DRAIN_LIMIT

    def finish(self) -> None:
        """After the response: discard a small unread body to keep the connection."""
        if self.done or self.t.close_connection:
            return
        if self.must_close():
            self.t.close_connection = True
            return
        self.cut_after = None
        self.deadline = min(self.deadline, time.monotonic() + 2)
        drained = 0
        try:
            while not self.done and drained <= DRAIN_LIMIT:
                drained += len(self.read())
        except (ClientGone, BodyCut, ReadTimeout):
            pass
        if not self.done:
            self.t.close_connection = True


class Request:
    """One API request as the handlers see it."""

    def __init__(self, transport, app):
        split = urllib.parse.urlsplit(transport.path)
        self.transport = transport
        self.method = transport.command
        self.raw_path = split.path or "/"
        self.path = urllib.parse.unquote(self.raw_path)
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.headers = transport.headers
        self.request_id = new_id()
        self.local = transport.server.local
        self.session = None
        self.user = None
        self.params: dict = {}
        self.body: BodyReader | None = None
        self.body_limit = None
        self.start = time.monotonic()
        self.wall = time.time()
        self.status = None
        self.resp_bytes = 0
        self.responded = False
        self.outcome = "ok"
        self.fault = None
        self.error_id = None
        self.force_close = False
        self.extra_headers: list = []

    def q(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def read_body(self) -> bytes:
        return self.body.read_all(self.body_limit)

    def log_entry(self) -> dict:
        h = self.headers
        auth = h.get("Authorization") or ""
        picked = {"range": h.get("Range"), "if_range": h.get("If-Range"), "content_length": h.get("Content-Length"),
                  "content_type": h.get("Content-Type"), "transfer_encoding": h.get("Transfer-Encoding"),
                  "expect": h.get("Expect"), "accept_encoding": h.get("Accept-Encoding"),
                  "user_agent": h.get("User-Agent"), "x_requested_with": h.get("X-Requested-With"),
                  "if_none_match": h.get("If-None-Match")}
        headers = {k: v for k, v in picked.items() if v is not None}
        headers["authorization"] = bool(auth)
        if auth:
            headers["auth_scheme"] = auth.split(" ", 1)[0][:16]
        headers["cookie_token"] = "MMAUTHTOKEN=" in (h.get("Cookie") or "")
        headers["csrf_token"] = bool(h.get("X-CSRF-Token"))
        query = {k: ("[redacted]" if k.lower() in ("access_token", "x-amz-signature") else (v[0] if len(v) == 1 else v))
                 for k, v in self.query.items()}
        entry = {"time": datetime.datetime.fromtimestamp(self.wall, datetime.timezone.utc).isoformat(),
                 "method": self.method, "path": self.path, "query": query, "status": self.status,
                 "request_bytes": self.body.bytes_read if self.body else 0, "response_bytes": self.resp_bytes,
                 "duration_ms": int((time.monotonic() - self.start) * 1000), "request_id": self.request_id,
                 "outcome": self.outcome, "headers": headers}
        if self.local:
            entry["local"] = True
        if self.fault:
            entry["fault"] = self.fault
        if self.error_id:
            entry["error_id"] = self.error_id
        return entry


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        # Go's net/http sets TCP_NODELAY on every TCP connection. Without it
        # the headers and the body, written separately, meet the client's
        # delayed ACK: 40 ms added to every answer, which no real server costs.
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- request loop ---------------------------------------------------------
    def handle_one_request(self):
        app = self.server.app
        try:
            self.connection.settimeout(app.args.idle_timeout)
            self.raw_requestline = self.rfile.readline(65537)
            self.request_started = time.monotonic()
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.connection.settimeout(max(0.1, app.args.read_timeout))
            if not self.parse_request():
                return
            self.connection.settimeout(max(0.1, app.args.write_timeout))
            self.dispatch()
            self.wfile.flush()
        except (TimeoutError, socket.timeout, ConnectionError, OSError):
            self.close_connection = True

    def handle_expect_100(self):
        return True   # 100 Continue is sent when the body is first read

    def log_message(self, fmt, *args):
        pass

    def dispatch(self):
        app = self.server.app
        req = Request(self, app)
        if req.path == "/__fake" or req.path.startswith("/__fake/"):
            self.serve_control(req)
            return
        try:
            self.serve(req)
        except ReadTimeout:
            req.outcome = "read_timeout"
            if not req.responded:
                req.force_close = True
                self.send_api_error(req, ApiError(500, "api.file.write_file.app_error", "i/o timeout"))
            self.close_connection = True
        except (ClientGone, BodyCut) as exc:
            req.outcome = exc.outcome
            self.abort_connection()
        except (ConnectionError, TimeoutError, OSError):
            req.outcome = "client_gone"
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            req.outcome = "fake_internal_error"
            if not req.responded:
                try:
                    req.force_close = True
                    self.send_api_error(req, ApiError(500, "app.system.injected_fault.app_error", "mmfake bug"))
                except OSError:
                    pass
            self.close_connection = True
        finally:
            if req.body is not None and not self.close_connection:
                req.body.finish()
            app.log.add(req.log_entry())

    def serve(self, req: Request):
        app = self.server.app
        te = self.headers.get("Transfer-Encoding")
        if te is not None and te.strip().lower() != "chunked":
            self.send_plain(req, 501, b"Unsupported transfer encoding\n", close=True)
            return
        length = self.headers.get("Content-Length")
        if te is None and length is not None and not re.fullmatch(r"[0-9]+", length.strip()):
            self.send_plain(req, 400, b"400 Bad Request: invalid Content-Length\n", close=True)
            return
        req.body = BodyReader(self, app)
        fault = app.faults.take_error(req.method, req.path, "before")
        if fault:
            req.fault = "error"
            self.send_fault(req, fault)
            return
        delay = app.faults.take_delay(req.method, req.path)
        if delay:
            req.fault = "delay"
            time.sleep(delay)
        if req.path.startswith("/__s3/"):
            self.serve_s3(req)
            return
        if not self.rate_limit(req):
            return
        clean = go_clean_path(req.path)
        if clean != req.path:
            self.start_response(req, 301, [("Location", clean)], 0)
            return
        if not (req.path == API_PREFIX or req.path.startswith(API_PREFIX + "/")):
            if req.path.startswith("/api/") or req.method not in ("GET", "HEAD"):
                self.send_404(req)
            else:
                self.start_response(req, 200, [("Content-Type", "text/html"), ("Cache-Control", "no-cache, max-age=31556926, public")],
                                    len(WEBAPP_PAGE))
                self.write_body(req, WEBAPP_PAGE)
            return
        route, params = self.match(req)
        if route is None:
            self.send_404(req)
            return
        req.params = params
        try:
            self.run_route(req, route)
        except ApiError as err:
            self.send_api_error(req, err)

    def match(self, req: Request):
        app = self.server.app
        sub = req.path[len(API_PREFIX):]
        for route in ROUTES:
            if route.method != req.method:
                continue
            m = route.regex.fullmatch(sub)
            if not m:
                continue
            if app.version < route.min_version or (req.local and not route.local):
                return None, None
            return route, m.groupdict()
        return None, None

    def run_route(self, req: Request, route: Route):
        app = self.server.app
        if route.auth == "optional":
            try:
                sess = app.authenticate(req)
            except ApiError:
                sess = None
        elif route.auth == "session":
            sess = app.authenticate(req)
            if sess is None:
                raise ApiError(401, "api.context.session_expired.app_error", "token not present")
        else:
            sess = None
        req.session = sess
        req.user = app.ws.users.get(sess["user_id"]) if sess else None
        req.body_limit = app.body_limit(route)
        if req.body.length is not None and req.body.length > req.body_limit:
            raise ApiError(413, "api.context.request_body_too_large.app_error", "http: request body too large")
        resp = getattr(app, route.handler)(req)
        if resp is STREAMED:
            return
        # "after": the request took effect, the answer is late (a client killed
        # now never learns the id of what it created).
        delay = app.faults.take_delay(req.method, req.path, "after")
        if delay:
            req.fault = "delay_after"
            time.sleep(delay)
        if app.faults.take_lose_response(req.method, req.path):
            req.fault = "lose_response"
            req.outcome = "response_lost"
            self.abort_connection()
            return
        fault = app.faults.take_error(req.method, req.path, "after")
        if fault:
            req.fault = "error_after"
            self.send_fault(req, fault)
            return
        self.send_api(req, resp)

    def rate_limit(self, req: Request) -> bool:
        app = self.server.app
        cfg = app.config.get("RateLimitSettings")
        if not cfg["Enable"]:
            return True
        key = "local" if req.local else self.client_address[0]
        if cfg.get("VaryByHeader"):
            key = self.headers.get(cfg["VaryByHeader"]) or key
        allowed, headers, retry = app.rate.check(key, cfg["PerSec"], cfg["MaxBurst"])
        if allowed and req.method == "POST" and req.path == API_PREFIX + "/users/login":
            allowed, headers, retry = app.rate.check("login:" + key, 5, 10)
        req.extra_headers = headers
        if allowed:
            return True
        self.send_fault(req, {"status": 429, "body": "text", "retry_after": retry})
        return False

    # -- writing responses ----------------------------------------------------
    def api_headers(self, req: Request) -> list:
        app = self.server.app
        headers = [("X-Request-Id", req.request_id), ("X-Version-Id", app.version_header),
                   ("Vary", "Accept-Encoding"), ("X-Content-Type-Options", "nosniff"),
                   ("Referrer-Policy", "no-referrer")]
        if req.method == "GET":
            headers.append(("Expires", "0"))
        return headers + req.extra_headers

    def start_response(self, req: Request, status: int, headers: list, length=None, chunked=False):
        """Status line and headers.  length=None and not chunked: no Content-Length."""
        if req.force_close or (req.body is not None and req.body.must_close()):
            headers = headers + [("Connection", "close")]
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for name, value in headers:
            self.send_header(name, value)
        if status not in (204, 304) and status >= 200:
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            elif length is not None:
                self.send_header("Content-Length", str(length))
        self.end_headers()
        req.responded = True
        req.status = status

    def write_body(self, req: Request, body: bytes, chunked: bool = False):
        if req.method == "HEAD" or req.status in (204, 304):
            return
        if chunked:
            self.wfile.write((b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n")
        else:
            self.wfile.write(body)
        req.resp_bytes += len(body)

    def send_plain(self, req: Request, status: int, body: bytes, close: bool = False):
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")]
        if close:
            req.force_close = True
        self.start_response(req, status, headers, len(body))
        self.write_body(req, body)

    def send_api(self, req: Request, resp: Resp):
        app = self.server.app
        headers = self.api_headers(req) + resp.headers
        if resp.ctype:
            headers.append(("Content-Type", resp.ctype))
        body, chunked = resp.body, False
        accept = (self.headers.get("Accept-Encoding") or "").lower()
        if (app.config.get("ServiceSettings", "WebserverMode") == "gzip" and "gzip" in accept
                and resp.ctype and not any(t in resp.ctype for t in ("zip", "audio", "video", "jpeg"))
                and len(body) > 1024 and resp.status not in (204, 304) and req.method != "HEAD"):
            body = gzip.compress(body, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
            chunked = True   # the gzip writer streams: no Content-Length
        self.start_response(req, resp.status, headers, len(body), chunked)
        self.write_body(req, body, chunked)

    def send_api_error(self, req: Request, err: ApiError):
        app = self.server.app
        req.error_id = err.id
        body = err.body(req.request_id, app.config.get("ServiceSettings", "EnableDeveloper"),
                        app.config.get("ServiceSettings", "ExperimentalEnableHardenedMode"))
        self.send_api(req, Resp(err.status, body))

    def send_404(self, req: Request):
        """api4.Handle404 is a plain handler: no X-Request-Id, the detail is kept, and
        Go sniffs the JSON body as text/plain."""
        app = self.server.app
        err = ApiError(404, "api.context.404.app_error",
                       f"There doesn't appear to be an api call for the url='{req.path}'.  "
                       "Typo? are you missing a team_id or user_id as part of the url?")
        req.error_id = err.id
        body = err.body("", True, False)
        headers = [("X-Version-Id", app.version_header), ("Content-Type", "text/plain; charset=utf-8")]
        self.start_response(req, 404, headers, len(body))
        self.write_body(req, body)

    def send_fault(self, req: Request, fault: dict):
        app = self.server.app
        status = fault["status"]
        kind = fault.get("body", "auto")
        if kind == "auto":
            kind = "text" if status == 429 else "html" if status in (502, 504) else "json"
        retry = fault.get("retry_after")
        if status == 429 and retry is None:
            retry = 1
        reason = self.responses.get(status, ("Error",))[0]
        if kind == "json":
            default_id = "api.context.server_busy.app_error" if status == 503 else "app.system.injected_fault.app_error"
            err = ApiError(status, fault.get("id") or default_id)
            req.error_id = err.id
            body = err.body(req.request_id, False, False)
            headers = self.api_headers(req) + [("Content-Type", "application/json")]
        elif kind == "text":
            body = b"limit exceeded\n" if status == 429 else f"{status} {reason}\n".encode()
            headers = [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")]
            if status == 429:
                headers += [("X-Version-Id", app.version_header)]
                if not req.extra_headers:
                    headers += [("X-Ratelimit-Limit", "101"), ("X-Ratelimit-Remaining", "0"),
                                ("X-Ratelimit-Reset", str(retry))]
                headers += req.extra_headers
        elif kind == "html":
            body = NGINX_PAGE.format(code=status, reason=reason).encode()
            headers = [("Content-Type", "text/html"), ("Server", "nginx")]
        else:
            body, headers = b"", []
        if retry is not None:
            headers.append(("Retry-After", str(retry)))
        self.start_response(req, status, headers, len(body))
        self.write_body(req, body)

    def abort_connection(self):
        """Drop the TCP connection now (a cut download, a lost response)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- downloads --------------------------------------------------------------
    def pump(self, req: Request, chunks, start=0, length=None, closed_range=False):
        """Writes a response body, applying download_drop, download_corrupt, slow_ranges,
        download_bps and WriteTimeout. start: the file offset of the body's first byte."""
        app = self.server.app
        drop = app.faults.take_one("download_drop")
        drop_after = drop["after_bytes"] if drop else None
        if drop:
            req.fault = "download_drop"
        flip = None
        in_body = (lambda e: start <= e["offset"] < start + length) if length is not None else None
        with app.faults.lock:
            corrupt = app.faults.ones["download_corrupt"]
            if in_body and corrupt and in_body(corrupt):
                if corrupt.get("skip", 0) > 0:
                    corrupt["skip"] -= 1          # this answer passes untouched
                else:
                    flip = corrupt["offset"] - start  # used up only once the byte is sent
        bps = app.faults.download_bps
        slow = app.faults.take_one("slow_ranges") if closed_range else None
        if slow:
            bps = slow["bps"]
            req.fault = "slow_ranges"
        deadline = self.request_started + app.args.write_timeout
        started, sent = time.monotonic(), 0
        pos = 0
        for data in chunks:
            if flip is not None and pos <= flip < pos + len(data) and \
                    app.faults.take_one_if("download_corrupt", in_body):
                data = bytearray(data)
                data[flip - pos] ^= 0x20   # one bit, as a bad NIC or a proxy's memory would
                data = bytes(data)
                req.fault = "download_corrupt"
            pos += len(data)
            while data:
                piece = data[:max(1024, bps // 20)] if bps else data
                data = data[len(piece):]
                if drop_after is not None and sent + len(piece) >= drop_after:
                    piece = piece[:drop_after - sent]
                    self.wfile.write(piece)
                    req.resp_bytes = sent + len(piece)
                    req.outcome = "download_dropped"
                    self.abort_connection()
                    return
                if time.monotonic() > deadline:
                    req.outcome = "write_timeout"
                    self.abort_connection()
                    return
                self.wfile.write(piece)
                sent += len(piece)
                req.resp_bytes = sent
                if bps:
                    delay = sent / bps - (time.monotonic() - started)
                    if delay > 0:
                        time.sleep(delay)

    @staticmethod
    def file_pieces(fh, start: int, length: int, block: int = 256 * 1024):
        fh.seek(start)
        while length > 0:
            data = fh.read(min(block, length))
            if not data:
                return
            length -= len(data)
            yield data

    def serve_export(self, req: Request, path: str):
        """GET /exports/{name}: Go's http.ServeContent with a zero modtime and no ETag."""
        app = self.server.app
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            base = self.api_headers(req)
            if_match = self.headers.get("If-Match")
            if if_match and "*" not in [t.strip() for t in if_match.split(",")]:
                self.start_response(req, 412, base + [("Content-Type", "application/zip")], 0)
                return
            if_none = self.headers.get("If-None-Match")
            if if_none and "*" in [t.strip() for t in if_none.split(",")]:
                self.start_response(req, 304, base)
                return
            rng = self.headers.get("Range") or ""
            if rng and self.headers.get("If-Range"):
                rng = ""   # If-Range never matches: there is no ETag and the modtime is zero
            if rng and app.faults.take_one("ignore_range"):
                req.fault = "ignore_range"
                rng = ""
            ranges, error = parse_range(rng, size)
            if error:
                headers = base + [("Content-Type", "text/plain; charset=utf-8")]
                if error.endswith("failed to overlap"):
                    headers.append(("Content-Range", f"bytes */{size}"))
                body = (error + "\n").encode()
                self.start_response(req, 416, headers, len(body))
                self.write_body(req, body)
                return
            if sum(length for _, length in ranges) > size:
                ranges = []   # more bytes than the file: Go ignores the Range header
            closed = bool(re.fullmatch(r"bytes=\d+-\d+", rng.strip()))
            if len(ranges) == 1:
                start, length = ranges[0]
                headers = base + [("Content-Type", "application/zip"),
                                  ("Content-Range", f"bytes {start}-{start + length - 1}/{size}")]
                status, total, body = 206, length, self.file_pieces(fh, start, length)
            elif len(ranges) > 1:
                boundary = secrets.token_hex(30)
                parts = []
                for idx, (start, length) in enumerate(ranges):
                    head = (b"\r\n" if idx else b"") + (
                        f"--{boundary}\r\nContent-Range: bytes {start}-{start + length - 1}/{size}\r\n"
                        f"Content-Type: application/zip\r\n\r\n").encode()
                    parts.append((head, start, length))
                tail = f"\r\n--{boundary}--\r\n".encode()
                total = sum(len(h) + n for h, _, n in parts) + len(tail)

                def multipart():
                    for head, start, length in parts:
                        yield head
                        yield from self.file_pieces(fh, start, length)
                    yield tail

                headers = base + [("Content-Type", f"multipart/byteranges; boundary={boundary}")]
                status, body = 206, multipart()
            else:
                start, length = 0, size
                headers = base + [("Content-Type", "application/zip")]
                status, total, body = 200, size, self.file_pieces(fh, 0, size)
            headers.append(("Accept-Ranges", "bytes"))
            over = app.faults.take_one("oversize") if len(ranges) == 1 else None
            if over:
                # A hostile or broken server: the Content-Range stays, the
                # Content-Length goes, and `bytes` of junk follow the range
                # before the connection closes.
                req.fault = "oversize"
                req.force_close = True
                extra = os.urandom(over["bytes"])
                body = itertools.chain(body, [extra])
                total = None
            self.start_response(req, status, headers, total)
            if req.method != "HEAD":
                self.pump(req, body, start=start if len(ranges) <= 1 else 0,
                          length=length if len(ranges) <= 1 else None, closed_range=closed)
                if over:
                    self.close_connection = True

    def serve_s3(self, req: Request):
        """A presigned S3 GET: no Mattermost auth, ETag and Last-Modified, single ranges."""
        app = self.server.app
        rid = secrets.token_hex(8).upper()

        def fail(status, code, message, extra=()):
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
                    f'</Message><RequestId>{rid}</RequestId></Error>').encode()
            self.start_response(req, status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid),
                                              ("Server", "AmazonS3")] + list(extra), len(body))
            self.write_body(req, body)

        prefix = "/__s3/mmfake-exports/"
        if req.method not in ("GET", "HEAD"):
            return fail(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        if not req.path.startswith(prefix):
            return fail(404, "NoSuchBucket", "The specified bucket does not exist")
        key = req.path[len(prefix):]
        stamp, expires, sig = req.q("X-Amz-Date"), req.q("X-Amz-Expires"), req.q("X-Amz-Signature")
        if not sig or not hmac.compare_digest(sig, app.presign_signature(key, stamp, expires)):
            return fail(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
        try:
            signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return fail(403, "AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 format")
        if time.time() > signed_at + (go_int(expires) or 0):
            return fail(403, "AccessDenied", "Request has expired")
        path = app._export_path(key[len("export/"):]) if key.startswith("export/") else None
        if not path:
            return fail(404, "NoSuchKey", "The specified key does not exist.")
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            size = st.st_size
            etag = self.s3_etag(path, st)
            headers = [("Accept-Ranges", "bytes"), ("ETag", etag), ("Content-Type", "application/zip"),
                       ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
                       ("x-amz-request-id", rid), ("Server", "AmazonS3")]
            rng = (self.headers.get("Range") or "").strip()
            if_range = self.headers.get("If-Range")
            if rng and if_range and if_range.strip() != etag:
                rng = ""
            if rng and app.faults.take_one("ignore_range"):
                req.fault = "ignore_range"
                rng = ""
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng)
            start, end = 0, size - 1
            status = 200
            if m and (m.group(1) or m.group(2)):
                if not m.group(1):
                    count = int(m.group(2))
                    if count == 0 or size == 0:
                        return fail(416, "InvalidRange", "The requested range is not satisfiable",
                                    [("Content-Range", f"bytes */{size}")])
                    start = max(0, size - count)
                    status = 206
                else:
                    start = int(m.group(1))
                    if start >= size:
                        return fail(416, "InvalidRange", "The requested range is not satisfiable",
                                    [("Content-Range", f"bytes */{size}")])
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                    status = 206 if end >= start else 200
                    if status == 200:
                        start, end = 0, size - 1
            if status == 206:
                headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
            length = end - start + 1 if size else 0
            self.start_response(req, status, headers, length)
            if req.method != "HEAD":
                self.pump(req, self.file_pieces(fh, start, length))

    def s3_etag(self, path: str, st) -> str:
        app = self.server.app
        key = (path, st.st_size, st.st_mtime_ns)
        with app.lock:
            if key in app.etag_cache:
                return app.etag_cache[key]
        digest = hashlib.md5()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(MIB), b""):
                digest.update(block)
        etag = f'"{digest.hexdigest()}"'
        with app.lock:
            app.etag_cache[key] = etag
        return etag

    # -- control endpoints --------------------------------------------------------
    def serve_control(self, req: Request):
        app = self.server.app
        req.body = BodyReader(self, app)
        try:
            raw = req.body.read_all(64 * MIB)
            status, obj = app.control(req.method, req.path, req.query, raw)
        except (ValueError, TypeError, KeyError) as exc:
            status, obj = 400, {"error": str(exc)}
        except ApiError as err:
            status, obj = err.status, {"error": err.id}
        except (ClientGone, BodyCut, ReadTimeout, OSError):
            self.close_connection = True
            return
        body = dumps(obj)
        self.start_response(req, status, [("Content-Type", "application/json")], len(body))
        self.write_body(req, body)
        req.body.finish()


class TCPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    local = False

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)   # skip HTTPServer's slow getfqdn()
        self.server_name, self.server_port = self.server_address[:2]


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    local = True


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Fake Mattermost server for mmigrate tests (127.0.0.1 only).")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--port-file", help="write the chosen port here once listening (atomically)")
    p.add_argument("--socket", help="also serve the API on this unix socket (mmctl local mode, no auth)")
    p.add_argument("--version", default="9.11.2", help="server version to emulate (default 9.11.2)")
    p.add_argument("--seed", choices=("none", "small", "medium", "large"), default="none",
                   help="workspace data to start with (default none)")
    p.add_argument("--export-naming", choices=("auto", "jobid", "random"), default="auto",
                   help="export file names: <jobid>_export.zip (>=7.2) or <random id>_export.zip (auto: by --version)")
    p.add_argument("--cloud", action="store_true", help="behave like Mattermost Cloud (import uploads refused)")
    p.add_argument("--presign", action="store_true",
                   help="enable POST /exports/{name}/presign-url (EnableExportDirectDownload + DedicatedExportStore)")
    p.add_argument("--max-file-size", type=int, default=104857600, help="FileSettings.MaxFileSize in bytes")
    p.add_argument("--job-pending-seconds", type=float, default=1.0, help="how long new jobs stay pending")
    p.add_argument("--job-run-seconds", type=float, default=1.0, help="how long jobs stay in_progress")
    p.add_argument("--replica-lag-seconds", type=float, default=0.0,
                   help="job listings (a database replica on real servers) show a new job this much later")
    p.add_argument("--state-dir", help="file store (export/import dirs); default: a temporary directory")
    p.add_argument("--log", help="append the request log here as JSON lines")
    p.add_argument("--credentials-file", help="write the credentials here as JSON (mode 0600)")
    p.add_argument("--read-timeout", type=float, default=300.0, help="ServiceSettings.ReadTimeout, seconds")
    p.add_argument("--write-timeout", type=float, default=300.0, help="ServiceSettings.WriteTimeout, seconds")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="keep-alive idle timeout, seconds")
    p.add_argument("--session-seconds", type=float, default=0.0,
                   help="lifetime of password sessions (default: SessionLengthWebInHours, 30 days)")
    p.add_argument("--rate-limit", action="store_true", help="enable RateLimitSettings (10/s, burst 100)")
    p.add_argument("--config-patch", action="append", default=[], metavar="JSON",
                   help="apply a config patch at startup (no restrictions); repeatable")
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (needs --tls-key)")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.add_argument("--fault", action="append", default=[], metavar="JSON",
                   help="install faults at startup, same JSON as POST /__fake/faults; repeatable")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    app = App(args)
    try:
        for patch in args.config_patch:
            app.config.patch(json.loads(patch), trusted=True)
        if args.rate_limit:
            app.config.patch({"RateLimitSettings": {"Enable": True}}, trusted=True)
        for spec in args.fault:
            app.control("POST", "/__fake/faults", {}, spec.encode())
    except (ValueError, ApiError) as exc:
        app.cleanup()
        sys.stderr.write(f"mmfake: bad --config-patch or --fault: {exc}\n")
        return 2

    server = TCPServer(("127.0.0.1", args.port), Handler)
    server.app = app
    port = server.server_address[1]
    scheme = "http"
    if args.tls_cert:
        # HTTPS for the client's certificate checks; the handshake runs when a
        # handler first reads, in the handler's own thread.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    app.base_url = f"{scheme}://127.0.0.1:{port}"
    app.config.patch({"ServiceSettings": {"SiteURL": app.base_url}}, trusted=True)

    unix = None
    if args.socket:
        if os.path.exists(args.socket):
            os.unlink(args.socket)
        unix = UnixServer(args.socket, Handler)
        unix.app = app
        os.chmod(args.socket, 0o600)
        threading.Thread(target=unix.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    if args.credentials_file:
        creds = dict(app.credentials, url=app.base_url, socket=args.socket)
        atomic_write(args.credentials_file, json.dumps(creds, indent=2).encode() + b"\n", 0o600)
    elif app.generated:
        sys.stderr.write("mmfake: warning: credentials were generated but --credentials-file was not given\n")
    if args.port_file:
        atomic_write(args.port_file, f"{port}\n".encode())

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"mmfake: listening on {app.base_url} (version {args.version}, seed {args.seed})\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.cleanup()
        server.server_close()
        if unix:
            unix.shutdown()
            unix.server_close()
            try:
                os.unlink(args.socket)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
