"""The console's HTML: whole pages for the first paint, the same fragments for each refresh.

Plain functions from view data to escaped HTML strings. A page is a layout
around named fragments; ``/api/fragments/<page>`` returns the same fragments
as JSON and the page's script swaps them in, so there is one renderer for the
first paint and for every update. Forms sit outside refreshed fragments, or in
fragments the script leaves alone while one of their fields has focus.

>>> esc('<b title="x">')
'&lt;b title=&quot;x&quot;&gt;'
>>> svg_chart([(0, 1.0), (10, 3.0), (20, 2.0)], title="price", marker=10).count("<polyline")
1
"""

from __future__ import annotations

import html
import time
from typing import Any, Callable, Iterable
from urllib.parse import quote, urlencode

from tradeguard.console.access import authorize, rank
from tradeguard.console.view import ACTIONS, ConsoleView, DecisionFilter

__all__ = ["FRAGMENTS", "esc", "layout", "login_page", "message_page", "svg_chart"]


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts_ms / 1000)) + "Z"


def span(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def yen(value: float | None) -> str:
    return "–" if value is None else f"¥{value:,.0f}"


def link(kind: str, key: str) -> str:
    return f'<a href="/{kind}/{quote(key, safe="")}">{esc(key)}</a>'


def reasons(rs: Iterable[dict]) -> str:
    return " ".join(f'<span class="chip">{esc(r["code"])}={r["value"]:g}</span>' for r in rs)


def badge(action: str | None) -> str:
    return f'<span class="badge {esc(action)}">{esc(action or "none")}</span>'


def table(headers: Iterable[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def svg_chart(points: list[tuple[int, float | None]], *, title: str, marker: int | None = None,
              unit: str = "", bars: bool = False, y_max: float | None = None,
              x_range: tuple[int, int] | None = None, width: int = 640,
              height: int = 110) -> str:
    """A small line (or bar) chart of (event ms, value) points as inline SVG.

    Charts drawn side by side share ``x_range`` so their times line up.
    """
    pts = [(t, v) for t, v in points if v is not None]
    head = f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
    if not pts:
        return head + '<p class="empty">no data yet</p></figure>'
    t0, t1 = x_range or (pts[0][0], pts[-1][0])
    t1 = max(t1, t0 + 1)
    lo = 0.0 if bars or y_max is not None else min(v for _, v in pts)
    hi = y_max if y_max is not None else max(v for _, v in pts)
    hi = hi if hi > lo else lo + 1.0
    pad = 4

    def x(t: float) -> float:
        return pad + (t - t0) / (t1 - t0) * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)

    if bars:
        gaps = [b - a for (a, _), (b, _) in zip(pts, pts[1:]) if b > a]
        step = min(gaps) if gaps else (t1 - t0) / 50
        w = max(1.0, step / (t1 - t0) * (width - 2 * pad) - 1)
        shape = "".join(f'<rect x="{x(t) - w / 2:.1f}" y="{y(v):.1f}" width="{w:.1f}" '
                        f'height="{height - pad - y(v):.1f}" class="bar"/>' for t, v in pts)
    else:
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        shape = f'<polyline points="{coords}" class="line"/>'
    mark = ""
    if marker is not None and t0 <= marker <= t1:
        mark = (f'<line x1="{x(marker):.1f}" x2="{x(marker):.1f}" y1="0" y2="{height}" '
                f'class="marker"/><text x="{x(marker) + 3:.1f}" y="12" class="marker-label">'
                "halt</text>")
    fmt = (lambda v: f"{v:.0%}") if unit == "%" else (lambda v: f"{v:,.4g}{unit}")
    return (f'{head}<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{esc(title)}">{shape}{mark}</svg><div class="axis">'
            f'<span>{when(t0)}</span><span>{fmt(lo)} … {fmt(hi)}</span>'
            f'<span>{when(t1)}</span></div></figure>')


# --- page chrome ---------------------------------------------------------------------------------

def layout(title: str, body: str, *, user: dict | None = None, csrf: str = "",
           fragments_url: str = "", refresh_ms: int = 1000,
           flashes: Iterable[tuple[str, str]] = ()) -> str:
    nav = ""
    if user:
        nav = (f'<nav><a href="/">Overview</a><a href="/audit">Audit trail</a></nav>'
               f'<div class="who"><span id="whoami">{esc(user["user"])}</span> '
               f'<span class="role">{esc(user["role"])}</span>'
               f'<form method="post" action="/logout" class="inline">'
               f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
               f'<button type="submit" id="logout">Log out</button></form>'
               f'<span id="live" class="live" title="data freshness">…</span></div>')
    notes = "".join(f'<p class="flash {esc(kind)}" role="status">{esc(msg)}</p>'
                    for kind, msg in flashes)
    data = (f' data-fragments="{esc(fragments_url)}" data-refresh-ms="{refresh_ms}"'
            if fragments_url else "")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)} · TradeGuard console</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="stylesheet" href="/static/console.css">'
            '<script src="/static/console.js" defer></script></head>'
            f'<body{data}><header><a class="brand" href="/">TradeGuard console</a>{nav}</header>'
            f'<main>{notes}<h1>{esc(title)}</h1>{body}</main></body></html>')


def login_page(csrf: str, *, error: str = "", next_url: str = "/", oidc: bool = False,
               name: str = "") -> str:
    err = f'<p class="flash error" role="alert">{esc(error)}</p>' if error else ""
    sso = ('<p><a class="button" href="/oidc/login">Log in with your company account</a></p>'
           '<p class="muted">or with a local console account:</p>' if oidc else "")
    body = (f'{err}{sso}<form method="post" action="/login" class="login">'
            f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
            f'<input type="hidden" name="next" value="{esc(next_url)}">'
            f'<label>User <input name="username" id="username" autocomplete="username" '
            f'value="{esc(name)}" required></label>'
            '<label>Password <input name="password" id="password" type="password" '
            'autocomplete="current-password" required></label>'
            '<button type="submit" id="login">Log in</button></form>')
    return layout("Log in", body)


def message_page(title: str, message: str, *, back: str = "/", user: dict | None = None,
                 csrf: str = "") -> str:
    body = (f'<p class="flash error" role="alert" id="message">{esc(message)}</p>'
            f'<p><a href="{esc(back)}">Back</a></p>')
    return layout(title, body, user=user, csrf=csrf)


# --- forms ------------------------------------------------------------------------------------

def action_form(csrf: str, action: str, target: str, label: str, back: str, *,
                mode: str = "now", extra: str = "", proposal_id: str = "",
                button_id: str = "", reason: bool = True) -> str:
    pid = (f'<input type="hidden" name="proposal_id" value="{esc(proposal_id)}">'
           if proposal_id else "")
    why = ('<input name="reason" placeholder="why (goes into the audit trail)" required '
           'minlength="3" maxlength="2000" class="reason">' if reason else "")
    bid = f' id="{esc(button_id)}"' if button_id else ""
    return (f'<form method="post" action="/act" class="action">'
            f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
            f'<input type="hidden" name="action" value="{esc(action)}">'
            f'<input type="hidden" name="target" value="{esc(target)}">'
            f'<input type="hidden" name="mode" value="{esc(mode)}">'
            f'<input type="hidden" name="next" value="{esc(back)}">{pid}{extra}{why}'
            f'<button type="submit"{bid}>{esc(label)}</button></form>')


def release_forms(ctx: "Ctx", action: str, target: str, state: dict | None, back: str) -> str:
    """Release now (if permitted) or propose it (two-person rule), as the operator's role allows."""
    p = authorize(ctx.user["role"], action, state, two_person=ctx.two_person)
    slug = action.replace("_", "-")
    if p.verdict == "allow":
        return action_form(ctx.csrf, action, target, "Release now", back,
                           button_id=f"{slug}-now")
    if p.verdict == "propose":
        return (f'<p class="muted">{esc(p.reason)}.</p>'
                + action_form(ctx.csrf, action, target, "Propose release", back, mode="propose",
                              button_id=f"{slug}-propose"))
    return f'<p class="muted">{esc(p.reason)}.</p>'


# --- fragments ------------------------------------------------------------------------------------

class Ctx:
    """What a fragment needs besides the view: the operator, the query, settings."""

    def __init__(self, view: ConsoleView, now_ms: int, user: dict, csrf: str,
                 query: dict[str, str], two_person: bool, proposal_ttl_ms: int,
                 key: str = "") -> None:
        self.view, self.now_ms, self.user, self.csrf = view, now_ms, user, csrf
        self.query, self.two_person, self.proposal_ttl_ms, self.key = (
            query, two_person, proposal_ttl_ms, key)

    @property
    def can_act(self) -> bool:
        return rank(self.user["role"]) >= rank("analyst")


def frag_summary(ctx: Ctx) -> str:
    s = ctx.view.summary(ctx.now_ms)
    age = s["last_decision_age_s"]
    tiles = "".join(
        f'<div class="tile {a}"><b>{s["rates"][a]:,.0f}/s</b><span>{a} · {s["actions"][a]:,} '
        f"in all</span></div>" for a in ACTIONS)
    tiles += (f'<div class="tile"><b id="halt-count">{s["halts"]}</b><span>halts in force</span>'
              f'</div><div class="tile"><b>{s["controlled_accounts"]}</b><span>accounts under '
              f'step-up or freeze</span></div><div class="tile"><b>'
              f'{"–" if age is None else span(age)}</b><span>since the last decision</span></div>')
    top = " ".join(f'<a class="chip" href="/?{urlencode({"reason": code})}">{esc(code)} '
                   f"<b>{n:,}</b></a>" for code, n in s["top_reasons"])
    bad = "".join(f'<p class="flash error">{n} undecodable {esc(t)} records skipped (see the '
                  "console log)</p>" for t, n in s["rejected"].items())
    return (f'<div class="tiles">{tiles}</div><p class="reasons">Why orders are stopped: '
            f'{top or "<span class=muted>nothing stopped yet</span>"}</p>{bad}')


def _halt_row(c: dict, now_ms: int) -> str:
    ev = c["evidence"] or {}
    accounts = " ".join(link("accounts", a) for a in ev.get("accounts", [])[:8])
    more = len(ev.get("accounts", [])) - 8
    accounts += f" +{more}" if more > 0 else ""
    expires = ("never" if c["expires_at"] is None
               else f"in {span((c['expires_at'] - now_ms) / 1000)}")
    return (f'<tr class="halt" data-ticker="{esc(c["ticker"])}"><td>{link("tickers", c["ticker"])}'
            f'</td><td>{esc(c["reason"])}</td><td>{accounts or "–"}</td>'
            f'<td>{yen(ev.get("risky_notional"))}</td><td>{esc(ev.get("window_s", "–"))} s</td>'
            f'<td>{expires}</td><td>{esc(c.get("source"))}</td></tr>')


def frag_halts(ctx: Ctx) -> str:
    rows = [_halt_row(c, ctx.now_ms) for c in ctx.view.halts(ctx.now_ms)]
    return table(("ticker", "why", "accounts", "risky notional", "window", "expires", "by"),
                 rows, "No buy halts in force.")


def frag_accounts(ctx: Ctx) -> str:
    rows = [f'<tr><td>{link("accounts", c["account_id"])}</td><td>{badge(c["action"])}</td>'
            f'<td>{esc(c["reason"])}</td><td>{esc(c.get("source"))}</td><td>{when(c["ts"])}</td>'
            "</tr>" for c in ctx.view.controlled_accounts()[:50]]
    return table(("account", "control", "why", "by", "since"), rows,
                 "No account is under step-up or freeze.")


def frag_proposals(ctx: Ctx) -> str:
    rows = []
    for p in ctx.view.proposals(ctx.now_ms, ctx.proposal_ttl_ms):
        if ctx.key and p["target"] != ctx.key:
            continue
        kind = "tickers" if p["target_kind"] == "ticker" else "accounts"
        back = f"/{kind}/{quote(p['target'], safe='')}"
        forms = ""
        if ctx.can_act and not p["stale"]:
            if p["proposed_by"] != ctx.user["user"]:
                forms += action_form(ctx.csrf, p["action"], p["target"], "Approve", back,
                                     mode="approve", proposal_id=p["proposal_id"],
                                     button_id=f"approve-{p['proposal_id']}")
            if p["proposed_by"] == ctx.user["user"] or ctx.user["role"] == "supervisor":
                forms += action_form(ctx.csrf, p["action"], p["target"], "Withdraw", back,
                                     mode="withdraw", proposal_id=p["proposal_id"],
                                     button_id=f"withdraw-{p['proposal_id']}")
        status = esc(p["stale"]) if p["stale"] else "waiting for a second operator"
        rows.append(f'<tr class="proposal"><td>{esc(p["action"])} {link(kind, p["target"])}</td>'
                    f'<td>{esc(p["proposed_by"])} ({esc(p["actor_role"])})</td>'
                    f'<td>{esc(p["reason"])}</td><td>{when(p["ts"])}</td><td>{status}</td>'
                    f"<td>{forms}</td></tr>")
    return table(("proposal", "by", "why", "when", "status", ""), rows,
                 "No releases waiting for approval.")


def _decision_rows(decisions: list[dict], with_order: bool = False) -> list[str]:
    rows = []
    for d in decisions:
        label = ""
        if with_order:
            lab = d.get("label")
            label = f"<td>{esc(lab['label']) if lab else '–'}</td>"
        rows.append(f'<tr class="decision {esc(d["action"])}"><td>{when(d["order_ts"])}</td>'
                    f'<td>{link("orders", d["order_id"])}</td>'
                    f'<td>{link("accounts", d["account_id"])}</td>'
                    f'<td>{link("tickers", d["ticker"])}</td><td>{esc(d["side"])}</td>'
                    f'<td>{badge(d["action"])}</td><td>{d["score"]:.2f}</td>'
                    f'<td>{reasons(d["reasons"])}</td>{label}</tr>')
    return rows


def frag_alerts(ctx: Ctx) -> str:
    rows = _decision_rows(ctx.view.alerts(40), with_order=True)
    return table(("order time", "order", "account", "ticker", "side", "action", "score",
                  "reasons (feature values)", "label"), rows, "No held or blocked orders.")


def frag_stream(ctx: Ctx) -> str:
    flt = DecisionFilter.from_query(ctx.query)
    rows = _decision_rows(ctx.view.decisions(flt, 40))
    return table(("order time", "order", "account", "ticker", "side", "action", "score",
                  "reasons"), rows, "No decisions match." if flt.active else "No decisions yet.")


def _audit_rows(records: list[dict]) -> list[str]:
    return [f'<tr class="audit {esc(a["outcome"])}" data-audit-id="{esc(a["audit_id"])}">'
            f'<td>{when(a["ts"])}</td><td>{esc(a["actor"])} <span class="muted">'
            f'{esc(a["actor_role"] or "")}</span></td><td>{esc(a["action"])}</td>'
            f'<td>{esc(a["target_kind"])} {esc(a["target"])}</td><td>{badge(a["outcome"])}</td>'
            f'<td>{esc(a["reason"])}</td><td>{esc(a["detail"] or "")}</td></tr>' for a in records]


_AUDIT_HEAD = ("when", "who", "action", "target", "outcome", "why", "detail")


def frag_audit(ctx: Ctx) -> str:
    limit = 500 if ctx.query.get("all") else 15
    return table(_AUDIT_HEAD, _audit_rows(ctx.view.audit(limit, ctx.key or None)),
                 "No operator actions yet.")


def frag_ticker(ctx: Ctx) -> str:
    t = ctx.view.ticker(ctx.key)
    c = t["control"]
    halt = ctx.view.halt_in_force(ctx.key, ctx.now_ms)
    if c is None:
        state = "<p>No control record for this ticker.</p>"
    else:
        ev = c["evidence"] or {}
        facts = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in (
            ("state", badge("halt_buys" if halt else "release" if c["action"] == "release"
                            else "expired")),
            ("why", esc(c["reason"])), ("by", esc(c.get("source"))), ("at", when(c["ts"])),
            ("expires", "–" if c["expires_at"] is None else
             f"{when(c['expires_at'])} (in {span((c['expires_at'] - ctx.now_ms) / 1000)})"
             if c["expires_at"] > ctx.now_ms else f"{when(c['expires_at'])} (passed)"),
            ("accounts", " ".join(link("accounts", a) for a in ev.get("accounts", [])) or "–"),
            ("risky notional", yen(ev.get("risky_notional"))),
            ("risky buyers", esc(ev.get("risky_buyers", "–"))),
            ("risky buy share", f"{ev['risky_buy_share']:.0%}" if "risky_buy_share" in ev
             else "–"),
            ("distinct buyers", esc(ev.get("distinct_buyers", "–"))),
            ("volume × ADV", esc(ev.get("volume_x_adv", "–"))),
            ("window", f"{esc(ev.get('window_s', '–'))} s"),
            ("trigger order", link("orders", ev["trigger_order_id"])
             if ev.get("trigger_order_id") else "–"),
            ("operator", esc(ev["operator"]["user"]) if "operator" in ev else "–")))
        state = f'<dl class="facts" id="ticker-state">{facts}</dl>'
    series, common = t["series"], {"marker": t["halt_event_ts"], "x_range": t["range"]}
    charts = "".join((
        svg_chart([(b["ts"], b["price"]) for b in series], title="price (last trade per bucket)",
                  unit=" ¥", **common),
        svg_chart([(b["ts"], b["volume"]) for b in series], title="traded volume (shares)",
                  bars=True, **common),
        svg_chart([(b["ts"], b["risky_share"]) for b in series],
                  title="risky buy share (held or blocked buy value ÷ buy value)", unit="%",
                  bars=True, y_max=1.0, **common)))
    history = [f'<tr><td>{when(h["ts"])}</td><td>{badge(h["action"])}</td>'
               f'<td>{esc(h["reason"])}</td><td>{esc(h.get("source"))}</td>'
               f'<td>{when(h["expires_at"]) if h["expires_at"] else "–"}</td></tr>'
               for h in t["history"]]
    return (f'{state}<div class="charts">{charts}</div><h3>Control history</h3>'
            + table(("at", "action", "why", "by", "expires"), history, "None."))


def frag_ticker_stream(ctx: Ctx) -> str:
    rows = _decision_rows(ctx.view.decisions(DecisionFilter(ticker=ctx.key), 20))
    return table(("order time", "order", "account", "ticker", "side", "action", "score",
                  "reasons"), rows, "No recent decisions on this ticker.")


def frag_account(ctx: Ctx) -> str:
    a = ctx.view.account(ctx.key)
    c = a["control"]
    state = ("<p>No control record for this account.</p>" if c is None else
             f'<dl class="facts" id="account-state"><dt>state</dt><dd>{badge(c["action"])}</dd>'
             f'<dt>why</dt><dd>{esc(c["reason"])}</dd><dt>by</dt><dd>{esc(c.get("source"))}'
             f'</dd><dt>at</dt><dd>{when(c["ts"])}</dd></dl>')
    logins = []
    for e in a["logins"]:
        new = e["new"]
        cells = "".join(
            f'<td class="{"new" if new[k] else ""}">{esc(e[f])}'
            f'{" <b>new</b>" if new[k] else ""}</td>'
            for k, f in (("device", "device_id"), ("ip", "ip"), ("network", "asn"),
                         ("country", "country"), ("agent", "user_agent")))
        logins.append(f'<tr><td>{when(e["ts"])}</td><td>{esc(e["event"])}</td>{cells}</tr>')
    orders = []
    for o in a["orders"]:
        order, d, lab = o["order"] or {}, o["decision"], o["label"]
        score = f"{d['score']:.2f}" if d else "–"
        orders.append(
            f'<tr><td>{when(order.get("ts"))}</td><td>{link("orders", o["order_id"])}</td>'
            f'<td>{esc(order.get("side"))}</td><td>{esc(order.get("ticker"))}</td>'
            f'<td>{esc(order.get("qty"))}</td><td>{yen(order.get("price"))}</td>'
            f'<td>{badge(d["action"]) if d else "–"}</td>'
            f'<td>{score}</td>'
            f'<td>{reasons(d["reasons"]) if d else ""}</td>'
            f'<td>{esc(lab["label"]) if lab else "–"}</td></tr>')
    return (state + "<h3>Recent logins</h3>"
            + table(("at", "event", "device", "IP", "network (ASN)", "country", "user agent"),
                    logins, "No logins seen.")
            + "<h3>Recent orders</h3>"
            + table(("at", "order", "side", "ticker", "qty", "price", "action", "score",
                     "reasons", "label"), orders, "No orders seen."))


def frag_order(ctx: Ctx) -> str:
    o = ctx.view.order(ctx.key)
    if o is None:
        return ('<p>This order is not among the recent orders the console holds.</p>')
    order, d, lab = o["order"], o["decision"], o["label"]
    facts = ""
    if order:
        facts += "".join(f"<dt>{esc(k)}</dt><dd>{esc(order.get(k))}</dd>" for k in (
            "account_id", "ticker", "side", "qty", "price", "margin", "market", "channel",
            "ip", "device_id", "holdings_value", "session_id"))
        facts += f"<dt>order time</dt><dd>{when(order['ts'])}</dd>"
    if d:
        facts += (f'<dt>decision</dt><dd id="order-action">{badge(d["action"])} score '
                  f'{d["score"]:.3f}</dd><dt>reasons</dt><dd>{reasons(d["reasons"])}</dd>'
                  f'<dt>model</dt><dd>{esc(d["model_version"])}</dd>')
    labelled = f'{esc(lab["label"])} by {esc(lab["source"])}' if lab else "none"
    facts += f'<dt>label</dt><dd id="order-label">{labelled}</dd>'
    return f'<dl class="facts">{facts}</dl>'


FRAGMENTS: dict[str, dict[str, Callable[[Ctx], str]]] = {
    "dashboard": {"summary": frag_summary, "halts": frag_halts, "proposals": frag_proposals,
                  "accounts": frag_accounts, "alerts": frag_alerts, "stream": frag_stream,
                  "audit": frag_audit},
    "ticker": {"ticker": frag_ticker, "proposals": frag_proposals,
               "ticker-stream": frag_ticker_stream, "audit": frag_audit},
    "account": {"account": frag_account, "proposals": frag_proposals, "audit": frag_audit},
    "order": {"order": frag_order, "audit": frag_audit},
    "audit": {"audit": frag_audit},
}


def section(name: str, title: str, ctx: Ctx, page: str, extra: str = "") -> str:
    return (f'<section id="{name}"><h2>{esc(title)}</h2>{extra}'
            f'<div data-fragment="{name}">{FRAGMENTS[page][name](ctx)}</div></section>')


def dashboard_body(ctx: Ctx) -> str:
    flt = DecisionFilter.from_query(ctx.query)
    options = lambda chosen: "".join(  # noqa: E731
        f'<option value="{a}"{" selected" if a == chosen else ""}>{a or "any"}</option>'
        for a in ("", *ACTIONS))
    filters = (f'<form method="get" action="/" class="filters" id="filters">'
               f'<label>action <select name="action">{options(flt.action)}</select></label>'
               f'<label>reason <input name="reason" value="{esc(flt.reason)}" size="14"></label>'
               f'<label>ticker <input name="ticker" value="{esc(flt.ticker)}" size="8"></label>'
               f'<label>account <input name="account" value="{esc(flt.account)}" size="12">'
               '</label><button type="submit">Filter</button> <a href="/">clear</a> '
               '<label class="pause"><input type="checkbox" id="pause"> pause</label></form>')
    return ("".join((
        f'<div data-fragment="summary">{frag_summary(ctx)}</div>',
        '<div class="columns"><div>',
        section("halts", "Halted tickers", ctx, "dashboard"),
        section("proposals", "Releases waiting for a second operator", ctx, "dashboard"),
        section("accounts", "Accounts under step-up or freeze", ctx, "dashboard"),
        "</div><div>",
        section("audit", "Operator actions (audit trail)", ctx, "dashboard",
                '<p class="muted"><a href="/audit">the whole trail</a></p>'),
        "</div></div>",
        section("alerts", "Alert queue: held and blocked orders", ctx, "dashboard"),
        section("stream", "Live decisions (newest 40 matching, sampled from the stream)", ctx,
                "dashboard", filters))))


def ticker_body(ctx: Ctx) -> str:
    back = f"/tickers/{quote(ctx.key, safe='')}"
    state = ctx.view.ticker_control(ctx.key)
    actions = ""
    if ctx.can_act and ctx.view.halt_in_force(ctx.key, ctx.now_ms):
        minutes = ('<label>by <input name="minutes" type="number" min="1" max="1440" value="30" '
                   'class="minutes"> min</label>')
        actions = ('<section id="actions"><h2>Act on this halt</h2><div class="actions">'
                   + release_forms(ctx, "release_halt", ctx.key, state, back)
                   + action_form(ctx.csrf, "extend_halt", ctx.key, "Extend halt", back,
                                 extra=minutes, button_id="extend-halt")
                   + "</div></section>")
    return (section("ticker", "Halt and evidence", ctx, "ticker") + actions
            + section("proposals", "Proposals for this ticker", ctx, "ticker")
            + section("ticker-stream", "Recent decisions on this ticker", ctx, "ticker")
            + section("audit", "Operator actions on this ticker", ctx, "ticker"))


def account_body(ctx: Ctx) -> str:
    back = f"/accounts/{quote(ctx.key, safe='')}"
    state = ctx.view.account_control(ctx.key)
    actions = ""
    if ctx.can_act:
        forms = ""
        if state is None or state["action"] != "freeze":
            forms += action_form(ctx.csrf, "freeze_account", ctx.key, "Freeze account", back,
                                 button_id="freeze-account")
        if state is not None and state["action"] != "release":
            forms += release_forms(ctx, "release_account", ctx.key, state, back)
        actions = (f'<section id="actions"><h2>Act on this account</h2>'
                   f'<div class="actions">{forms}</div></section>')
    return (section("account", "Control, logins and orders", ctx, "account") + actions
            + section("proposals", "Proposals for this account", ctx, "account")
            + section("audit", "Operator actions on this account", ctx, "account"))


def order_body(ctx: Ctx) -> str:
    back = f"/orders/{quote(ctx.key, safe='')}"
    o = ctx.view.order(ctx.key)
    actions = ""
    if ctx.can_act and o is not None:
        forms = "".join(
            action_form(ctx.csrf, "label_order", ctx.key, f"Label {lab}", back,
                        extra=f'<input type="hidden" name="label" value="{lab}">',
                        button_id=f"label-{lab}")
            for lab in ("fraud", "legit"))
        actions = ('<section id="actions"><h2>Label (the models learn from it)</h2>'
                   f'<div class="actions">{forms}</div></section>')
    account = ((o.get("order") or o.get("decision") or {}).get("account_id") if o else None)
    links = (f'<p>Account {link("accounts", account)}</p>' if account else "")
    return (links + section("order", "Order and decision", ctx, "order") + actions
            + section("audit", "Operator actions on this order", ctx, "order"))


def audit_body(ctx: Ctx) -> str:
    return section("audit", "Every operator action, newest first (last 500)", ctx, "audit")


BODIES = {"dashboard": dashboard_body, "ticker": ticker_body, "account": account_body,
          "order": order_body, "audit": audit_body}
