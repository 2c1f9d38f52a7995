"""pylti1p3 wired to our models and key store. The protocol (OIDC login, id_token
signature/expiry/audience checks, deep linking JWTs, service tokens) is pylti1p3's;
this module only tells it where registrations, deployments and keys live."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.contrib.django.launch_data_storage.cache import DjangoCacheDataStorage
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract

from . import keys
from .models import Platform, UsedNonce

LAUNCH_REPLAYED = "This launch link was already used. Open the activity again from your LMS."


def registration_for(platform: Platform) -> Registration:
    key = keys.current_key()
    registration = (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
        .set_key_set_url(platform.key_set_url)
        .set_tool_private_key(key.private_pem)
        .set_tool_public_key(key.public_pem)
    )
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    return registration


def find_platform(iss: str, client_id: str | None) -> Platform | None:
    platforms = Platform.objects.filter(issuer=iss, active=True)
    if client_id:
        return platforms.filter(client_id=client_id).first()
    # An LMS that omits client_id at login can be matched only if it registered one.
    found = list(platforms[:2])
    return found[0] if len(found) == 1 else None


class ToolConf(ToolConfAbstract):
    """Every issuer may have several client ids (pylti1p3's newer mode)."""

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        platform = find_platform(iss, None)
        return registration_for(platform) if platform else None

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        platform = find_platform(iss, client_id)
        return registration_for(platform) if platform else None

    def find_deployment(self, iss, deployment_id):
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        platform = find_platform(iss, client_id)
        if platform is None or deployment_id not in platform.deployment_ids:
            return None
        return Deployment().set_deployment_id(deployment_id)


def launch_storage() -> DjangoCacheDataStorage:
    # Nonces, states and launches in the shared cache, keyed (over HTTPS) by pylti1p3's
    # own session cookie: the site's session cookie is SameSite=Lax and does not come
    # with the LMS's cross-site POST, this one is SameSite=None; Secure.
    return DjangoCacheDataStorage(cache_name="default")


def oidc_login(request) -> DjangoOIDCLogin:
    return DjangoOIDCLogin(request, ToolConf(), launch_data_storage=launch_storage())


class MessageLaunch(DjangoMessageLaunch):
    """pylti1p3's launch validation, plus a nonce that can be used only once:
    pylti1p3 checks that the nonce was issued but never retires it."""

    def save_launch_data(self):
        # Called by validate() last, after the signature, expiry and deployment
        # checks: a forged token cannot retire someone else's nonce.
        platform = find_platform(self.get_iss(), self.get_client_id())
        if platform is None:
            raise LtiException("Registration not found.")
        try:
            with transaction.atomic():
                UsedNonce.objects.create(platform=platform, nonce=self._get_jwt_body()["nonce"])
        except IntegrityError as exc:
            raise LtiException(LAUNCH_REPLAYED) from exc
        return super().save_launch_data()


def message_launch(request) -> MessageLaunch:
    return MessageLaunch(request, ToolConf(), launch_data_storage=launch_storage())


def message_launch_from_cache(launch_id: str, request) -> MessageLaunch:
    launch = MessageLaunch.from_cache(launch_id, request, ToolConf(), launch_data_storage=launch_storage())
    return launch  # type: ignore[return-value]
