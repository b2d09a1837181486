"""Console settings, read from ``TRADEGUARD_CONSOLE_*`` environment variables.

The Kafka side (broker, topic prefix, credentials) is the engine's own
:class:`~tradeguard.runtime.settings.Settings`; these are the console's.
OpenID Connect is on when ``TRADEGUARD_CONSOLE_OIDC_ISSUER`` is set, and then
every OIDC setting it needs is checked at start, with an error naming the
variable.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from tradeguard.console.users import ROLES
from tradeguard.runtime.settings import SettingsError

__all__ = ["ConsoleSettings", "OidcSettings"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OidcSettings:
    """OpenID Connect authorization-code flow (with PKCE) against the company's identity provider.

    Field ``foo`` is read from ``TRADEGUARD_CONSOLE_OIDC_FOO``.
    """

    #: Issuer URL; its ``/.well-known/openid-configuration`` is read at start. Empty: OIDC off.
    issuer: str = ""
    client_id: str = ""
    #: File holding the client secret (a mounted Kubernetes secret); or ``client_secret``.
    client_secret_file: str = ""
    client_secret: str = field(default="", repr=False)
    #: This console's callback, as registered at the provider: https://HOST/oidc/callback.
    redirect_url: str = ""
    scopes: str = "openid profile email"
    #: Claim naming the operator in the audit trail (falls back to ``sub``).
    user_claim: str = "preferred_username"
    #: Claim listing the operator's groups or roles (a list or one string).
    roles_claim: str = "groups"
    #: ``group=role`` pairs, comma-separated: which groups make a viewer, analyst, supervisor.
    role_map: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    def secret(self) -> str:
        if self.client_secret_file:
            return Path(self.client_secret_file).read_text().strip()
        return self.client_secret

    def roles(self) -> dict[str, str]:
        """Group -> role, parsed from ``role_map``."""
        out = {}
        for pair in filter(None, (p.strip() for p in self.role_map.split(","))):
            group, sep, role = pair.rpartition("=")
            if not sep or not group or role not in ROLES:
                raise SettingsError(
                    f"TRADEGUARD_CONSOLE_OIDC_ROLE_MAP: {pair!r} is not group=ROLE with ROLE one "
                    f"of {list(ROLES)}")
            out[group] = role
        return out

    def check(self) -> None:
        if not self.enabled:
            return
        need = {"client_id": self.client_id, "redirect_url": self.redirect_url,
                "role_map": self.role_map}
        for name, value in need.items():
            if not value:
                raise SettingsError(f"TRADEGUARD_CONSOLE_OIDC_{name.upper()} must be set when "
                                    "TRADEGUARD_CONSOLE_OIDC_ISSUER is")
        if not (self.client_secret or self.client_secret_file):
            raise SettingsError("TRADEGUARD_CONSOLE_OIDC_CLIENT_SECRET_FILE (or _CLIENT_SECRET) "
                                "must be set when TRADEGUARD_CONSOLE_OIDC_ISSUER is")
        if self.client_secret_file and not Path(self.client_secret_file).is_file():
            raise SettingsError("TRADEGUARD_CONSOLE_OIDC_CLIENT_SECRET_FILE: no such file "
                                f"{self.client_secret_file!r}")
        for name in ("issuer", "redirect_url"):
            url = urlparse(getattr(self, name))
            if url.scheme != "https" and not (url.scheme == "http"
                                              and _loopback(url.hostname or "")):
                raise SettingsError(f"TRADEGUARD_CONSOLE_OIDC_{name.upper()} must be an https:// "
                                    f"URL (http:// only on loopback), got {getattr(self, name)!r}")
        if not self.redirect_url.endswith("/oidc/callback"):
            raise SettingsError("TRADEGUARD_CONSOLE_OIDC_REDIRECT_URL must end in /oidc/callback, "
                                f"got {self.redirect_url!r}")
        if "openid" not in self.scopes.split():
            raise SettingsError(f"TRADEGUARD_CONSOLE_OIDC_SCOPES must include openid, got "
                                f"{self.scopes!r}")
        self.roles()


@dataclass(frozen=True)
class ConsoleSettings:
    """The web console. Field ``foo`` is read from ``TRADEGUARD_CONSOLE_FOO``."""

    #: Bind address. Anything but loopback needs TLS (``tls_cert``) or a TLS proxy in front.
    host: str = "127.0.0.1"
    port: int = 8080
    #: The local user store (``tradeguard console add-user``).
    users_file: Path = field(default_factory=lambda: Path("./var/tradeguard/console-users"))
    #: PEM certificate and key to serve HTTPS directly.
    tls_cert: str = ""
    tls_key: str = ""
    #: Set to 1 when a TLS-terminating proxy or ingress is in front (then plain HTTP behind it).
    behind_tls_proxy: bool = False
    #: Two-person rule for releases: an analyst proposes, another operator approves.
    two_person: bool = True
    #: A proposal lapses after this many seconds.
    proposal_ttl_s: float = 3600.0
    #: Session ends after this long unused, or this long in all.
    session_idle_s: float = 1800.0
    session_max_s: float = 12 * 3600.0
    #: How far back the live topics are read at start (decisions, orders, logins, trades).
    lookback_s: float = 900.0
    #: How far back the audit trail is read at start (pending proposals come from it).
    audit_lookback_s: float = 7 * 86400.0
    #: Width of a chart bucket on the ticker page, seconds of event time.
    chart_bucket_s: float = 10.0
    #: How often the page asks for fresh data, milliseconds.
    refresh_ms: int = 1000
    oidc: OidcSettings = field(default_factory=OidcSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "ConsoleSettings":
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f"TRADEGUARD_CONSOLE_{f.name.upper()}"
            if f.name != "oidc" and env.get(var, "") != "":
                values[f.name] = _coerce(var, env[var], f.type)
        oidc = {f.name: env[v] for f in fields(OidcSettings)
                if env.get(v := f"TRADEGUARD_CONSOLE_OIDC_{f.name.upper()}", "") != ""}
        values["oidc"] = OidcSettings(**oidc)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"TRADEGUARD_CONSOLE_PORT must be 0..65535, got {self.port}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("TRADEGUARD_CONSOLE_TLS_CERT and TRADEGUARD_CONSOLE_TLS_KEY go "
                                "together: set both or neither")
        if not (_loopback(self.host) or self.tls_cert or self.behind_tls_proxy):
            raise SettingsError(
                f"TRADEGUARD_CONSOLE_HOST={self.host!r} is not loopback: session cookies are "
                "Secure, so serve HTTPS (TRADEGUARD_CONSOLE_TLS_CERT/_KEY) or put a TLS proxy in "
                "front and set TRADEGUARD_CONSOLE_BEHIND_TLS_PROXY=1")
        for name in ("proposal_ttl_s", "session_idle_s", "session_max_s", "chart_bucket_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"TRADEGUARD_CONSOLE_{name.upper()} must be > 0")
        if self.refresh_ms < 200:
            raise SettingsError(f"TRADEGUARD_CONSOLE_REFRESH_MS must be >= 200, got "
                                f"{self.refresh_ms}")
        self.oidc.check()

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def _coerce(var: str, raw: str, type_: Any) -> Any:
    name = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    try:
        if name == "bool":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return raw.lower() in ("1", "true", "yes")
        if name == "int":
            return int(raw)
        if name == "float":
            return float(raw)
        if name == "Path":
            return Path(raw)
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is not a valid {name}") from None
    return raw
