"""Where logins come from: devices, user agents, networks (ASN, IP, country), session ids.

Networks are data: Japanese home and mobile ISPs for customers, foreign
networks for travellers, hosting and proxy networks for attackers. Every
identifier is drawn from the caller's seeded generator, so a scenario replays
identically.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> c = Context.draw(rng, "app_ios", asn=2516, country="JP")
>>> c.channel, c.asn, c.ip.count(".")
('app', 2516, 3)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Context", "HOSTING_ASNS", "VPN_ASNS", "HOME_ASNS", "MOBILE_ASNS", "TRAVEL_ASNS", "UA_KINDS", "device_id",
           "ip_in", "session_id", "user_agent"]

#: Japanese fixed-line ISPs (KDDI, NTT OCN, SoftBank, So-net, BIGLOBE).
HOME_ASNS = (2516, 4713, 17676, 2527, 2518)
#: Japanese mobile carriers (docomo, au/KDDI, SoftBank, Rakuten Mobile).
MOBILE_ASNS = (9605, 2516, 17676, 138384)
#: A typical consumer network per country, for customers abroad.
TRAVEL_ASNS = {"US": 7922, "TH": 23969, "KR": 4766, "TW": 3462, "FR": 3215, "GB": 2856,
               "SG": 4657, "HK": 4760, "CN": 4134, "VN": 7552, "AU": 1221, "DE": 3320}

#: Hosting providers and commercial VPN exits: where attackers rent their machines, and
#: where some honest customers browse from (a VPN on a trip). The engine's policy lists
#: them as an IP-intelligence feed would (`[network] hosting_asns`).
HOSTING_ASNS = {16509: "Amazon", 14061: "DigitalOcean", 20473: "Vultr", 24940: "Hetzner",
                16276: "OVH", 45102: "Alibaba Cloud", 132203: "Tencent Cloud",
                9009: "M247 (VPN exits)", 212238: "Datacamp (VPN exits)"}
#: The VPN exits an honest customer's VPN app picks (``vpn_share`` of travellers).
VPN_ASNS = (9009, 212238)

#: User-agent kinds: (channel, template). {v}, {w} are version numbers drawn per device.
UA_KINDS = {
    "app_ios": ("app", "KabuApp/{v}.{w} (iPhone; iOS 17.{w})"),
    "app_android": ("app", "KabuApp/{v}.{w} (Linux; Android 14; SM-S9{w}1)"),
    "web_windows": ("web", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                           "(KHTML, like Gecko) Chrome/1{v}.0.0.0 Safari/537.36"),
    "web_mac": ("web", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                       "(KHTML, like Gecko) Version/17.{w} Safari/605.1.15"),
    "web_linux": ("web", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/1{v}.0.0.0 Safari/537.36"),
    "api": ("api", "kabu-bot/{v}.{w} python-requests/2.3{w}.0"),
}


@dataclass(frozen=True)
class Context:
    """One device on one network: what a login (and the orders of its session) look like."""

    device_id: str
    user_agent: str
    channel: str
    ip: str
    asn: int
    country: str

    @classmethod
    def draw(cls, rng: np.random.Generator, ua_kind: str, asn: int, country: str) -> "Context":
        channel, ua = user_agent(rng, ua_kind)
        return cls(device_id(rng), ua, channel, ip_in(asn, rng), asn, country)

    def on_network(self, rng: np.random.Generator, asn: int, country: str) -> "Context":
        """The same device somewhere else (a trip, an attacker's proxy)."""
        return replace(self, ip=ip_in(asn, rng), asn=asn, country=country)


def device_id(rng: np.random.Generator) -> str:
    return "dev-" + _hex(rng, 16)


def session_id(rng: np.random.Generator) -> str:
    return "s-" + _hex(rng, 20)


def user_agent(rng: np.random.Generator, kind: str) -> tuple[str, str]:
    """(channel, user agent string) for a device of this kind."""
    channel, template = UA_KINDS[kind]
    return channel, template.format(v=int(rng.integers(20, 36)), w=int(rng.integers(1, 9)))


def ip_in(asn: int, rng: np.random.Generator) -> str:
    """An IPv4 address inside a /16 that stands for the network ``asn`` (stable per ASN)."""
    h = zlib.crc32(str(asn).encode())
    first = (11, 27, 39, 49, 58, 61, 101, 114, 126, 133, 153, 175, 180, 202, 210, 219)[h % 16]
    c, d = rng.integers(0, 256), rng.integers(1, 255)
    return f"{first}.{(h >> 8) % 256}.{c}.{d}"


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join("0123456789abcdef"[int(i)] for i in rng.integers(0, 16, n))
