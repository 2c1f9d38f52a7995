"""A real LTI 1.3 platform (the LMS side) for the tests, built on the
`lti1p3platform` package: it signs launches and deep-linking requests with its own
RSA key, checks the tool's signed client assertions and deep-linking answers
against the tool's JWKS, and serves its JWKS, OAuth2 token, Assignment and Grade
Services and Names and Role Provisioning endpoints over real HTTP on 127.0.0.1
(a threaded server beside the test). Gradebook and roster live in memory.

The browser's part (following the tool's redirect to the platform's authorization
endpoint, posting the id_token back) is driven by the test through Django's client.
"""

from __future__ import annotations

import html
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
RESULT_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class _DictRequest(Request):
    def build_metadata(self, request: dict[str, Any]):
        return {
            "method": request.get("method", "GET"),
            "form_data": request.get("form_data", {}),
            "get_data": request.get("get_data", {}),
            "headers": {},
            "content_type": None,
            "path": "/",
            "json": None,
        }


class _PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self._registration


class _Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class _Launch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return launch_data


class TestPlatform:
    """One LMS with one course (context `ctx-1`)."""

    __test__ = False  # not a pytest test class

    client_id = "shipwright-tool"
    deployment_id = "deployment-1"
    context_id = "ctx-1"

    def __init__(self, *, tool_login_url: str, tool_launch_url: str, tool_deep_link_url: str) -> None:
        self.private_pem, self.public_pem = _rsa_pair()
        self.line_items: dict[str, dict[str, Any]] = {}
        self.scores: dict[str, list[dict[str, Any]]] = {}
        self.members: list[dict[str, Any]] = []
        self.deep_link_items: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.refuse_scores = False
        # The claims /auth signs for the next browser launch (the LMS's idea of who clicked).
        self.next_launch: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.base
        self.registration = (
            Registration()
            .set_iss(self.issuer)
            .set_client_id(self.client_id)
            .set_deployment_id(self.deployment_id)
            .set_oidc_login_url(tool_login_url)
            .set_launch_url(tool_launch_url)
            .set_deeplink_launch_url(tool_deep_link_url)
            .set_platform_public_key(self.public_pem)
            .set_platform_private_key(self.private_pem)
        )
        self.conf = _PlatformConf(registration=self.registration)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    # URLs an administrator would copy into Shipwright's registration form.
    @property
    def auth_login_url(self) -> str:
        return self.base + "/auth"

    @property
    def token_url(self) -> str:
        return self.base + "/token"

    @property
    def jwks_url(self) -> str:
        return self.base + "/jwks"

    @property
    def lineitems_url(self) -> str:
        return f"{self.base}/contexts/{self.context_id}/lineitems"

    @property
    def memberships_url(self) -> str:
        return f"{self.base}/contexts/{self.context_id}/memberships"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def trust_tool_keys(self, jwks: dict[str, Any]) -> None:
        self.registration.set_tool_key_set(jwks)

    # --- the launch (OIDC third-party initiated login, then the id_token) -----------

    def login_initiation_url(self, *, user_id: str, hint: str = "resource-link-1", deep_link: bool = False) -> str:
        login = _Login(None, self.conf)
        login.set_lti_message_hint(hint=hint)
        if deep_link:
            login.set_deeplinking_launch_url()
        return login.prepare_preflight_url(user_id)

    def authorize(
        self,
        auth_params: dict[str, str],
        *,
        user_id: str,
        roles: list[str],
        name: str | None = None,
        email: str | None = None,
        custom: dict[str, str] | None = None,
        deep_link: bool = False,
        expires_in: int = 300,
        with_services: bool = True,
    ) -> dict[str, str]:
        """The platform's authorization endpoint: check the tool's auth request and
        answer with the signed id_token the browser posts to the tool."""
        launch = _Launch(_DictRequest({"get_data": auth_params}), self.conf)
        launch.set_user_data(user_id, roles, full_name=name, email_address=email)
        launch.set_launch_context_claim(self.context_id, context_title="Intro to MLOps (Fall)", context_label="MLOPS")
        launch.set_resource_link_claim("resource-link-1", title="Shipwright")
        if custom:
            launch.set_custom_parameters_claim(custom)
        if with_services:
            launch.set_ags(self.lineitems_url, allow_creating_lineitems=True)
            launch.set_nrps(self.memberships_url)
        if deep_link:
            launch.set_dl(self.base + "/deep-link-return", title="Add content", accept_types={"ltiResourceLink"})
        launch.set_id_token_expiration(expires_in)
        form = launch.lti_launch()
        return {"id_token": form["id_token"], "state": form["state"], "launch_url": form["launch_url"]}

    # --- the services over HTTP ---------------------------------------------------------

    def _handler(self):
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _html(self, text: str) -> None:
                data = f"<!DOCTYPE html><html><body>{text}</body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self, scope: str) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Bearer "):
                    return False
                try:
                    return platform.conf.validate_token(header[7:], allowed_scopes=[scope])
                except Exception:
                    return False

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                platform.requests.append(("GET", path))
                if path == "/jwks":
                    return self._send(200, {"keys": platform.registration.get_jwks()})
                if path == "/auth":
                    # The authorization endpoint as a browser meets it: an auto-posting form.
                    params = dict(parse_qsl(urlsplit(self.path).query))
                    form = platform.authorize(params, **platform.next_launch)
                    return self._html(
                        f'<form id="f" method="post" action="{html.escape(form["launch_url"])}">'
                        f'<input type="hidden" name="id_token" value="{form["id_token"]}">'
                        f'<input type="hidden" name="state" value="{html.escape(form["state"])}"></form>'
                        '<script>document.getElementById("f").submit()</script>'
                    )
                if path.endswith("/memberships"):
                    if not self._authorized(NRPS_SCOPE):
                        return self._send(401, {"error": "unauthorized"})
                    return self._send(
                        200,
                        {"id": self.path, "context": {"id": platform.context_id}, "members": platform.members},
                        "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
                    )
                if path.endswith("/lineitems"):
                    if not self._authorized(LINEITEM_SCOPE):
                        return self._send(401, {"error": "unauthorized"})
                    return self._send(200, list(platform.line_items.values()))
                if path.endswith("/results"):
                    if not self._authorized(RESULT_SCOPE):
                        return self._send(401, {"error": "unauthorized"})
                    item_url = platform.base + path[: -len("/results")]
                    return self._send(200, platform.results(item_url))
                return self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                platform.requests.append(("POST", path))
                body = self._body()
                if path == "/token":
                    form = dict(parse_qsl(body.decode()))
                    try:
                        return self._send(200, platform.conf.get_access_token(form))
                    except Exception as exc:
                        return self._send(400, {"error": "invalid_client", "detail": str(exc)})
                if path == "/deep-link-return":
                    form = dict(parse_qsl(body.decode()))
                    items = platform.conf.validate_deeplinking_resp(form)
                    platform.deep_link_items.extend(items)
                    titles = ", ".join(html.escape(str(item.get("title"))) for item in items)
                    return self._html(f"<h1>Added to the LMS course: {titles}</h1>")
                if path.endswith("/lineitems"):
                    if not self._authorized(LINEITEM_SCOPE):
                        return self._send(401, {"error": "unauthorized"})
                    item = json.loads(body)
                    with platform._lock:
                        item["id"] = f"{platform.lineitems_url}/{next(platform._ids)}"
                        platform.line_items[item["id"]] = item
                    return self._send(201, item, "application/vnd.ims.lis.v2.lineitem+json")
                if path.endswith("/scores"):
                    if not self._authorized(SCORE_SCOPE):
                        return self._send(401, {"error": "unauthorized"})
                    if platform.refuse_scores:
                        return self._send(503, {"error": "gradebook down"})
                    item_url = platform.base + path[: -len("/scores")]
                    if item_url not in platform.line_items:
                        return self._send(404, {"error": "no such line item"})
                    platform.scores.setdefault(item_url, []).append(json.loads(body))
                    return self._send(200, {})
                return self._send(404, {"error": "not found"})

        return Handler

    def results(self, item_url: str) -> list[dict[str, Any]]:
        """The gradebook's view (AGS result service): the latest score per user."""
        latest: dict[str, dict[str, Any]] = {}
        for score in self.scores.get(item_url, []):
            latest[score["userId"]] = score
        return [
            {
                "id": f"{item_url}/results/{user_id}",
                "scoreOf": item_url,
                "userId": user_id,
                "resultScore": score["scoreGiven"],
                "resultMaximum": score["scoreMaximum"],
                "comment": score.get("comment", ""),
                "timestamp": score["timestamp"],
            }
            for user_id, score in latest.items()
        ]


def wait_until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)
