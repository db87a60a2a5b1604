#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every fuzz target into
fuzz/corpus/<target>/seed-*. Realistic inputs, taken from the unit and
e2e tests; `$NAME` placeholders are live values of the fuzz world
(src/fuzz_entry/world.rs, World::expand). Run once; `cargo fuzz cmin`
then keeps what adds coverage."""
import base64, json, os, pathlib

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"
ISS = "https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/client-1"
NOW = 1_773_576_000

def write(target, items):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(items):
        data = item.encode() if isinstance(item, str) else item
        (d / f"seed-{i:03}").write_bytes(data)

def b(x): return bytes([x])

write("authorization_header", [
    b(0) + b"Bearer fuzz-byok-plausible-key", b(0) + b"bearer   spaced-key  ", b(0) + b"Basic abc",
    b(0) + b"Bearer pmcp_at_0123", b(0) + b"Bearer", b(0) + b"Bearer a b c",
    b(1) + b"Bearer $AT", b(1) + b"Bearer pmcp_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    b(1) + b"BEARER pmcp_rt_x", b(1) + b"Token x",
    b(2) + b"Basic $BASIC", b(2) + b"Basic " + base64.b64encode(b"$CONF:wrong"),
    b(2) + b"Basic " + base64.b64encode(b"a%3Ab:c%25d+e"), b(2) + b"Basic ====",
    b(2) + b"Basic " + base64.b64encode(b"no-colon"), b(3) + b"Basic $BASIC",
    b(3) + b"Bearer $AT", b(3) + b"Basic " + base64.b64encode(b":"),
    # A routed-length access token (70 characters after the prefix): the
    # tag check rather than the legacy lookup.
    b(1) + b"Bearer pmcp_at_" + b"A" * 70, b(1) + b"Bearer pmcp_at_" + b"A" * 69 + b"!",
])

def q(**kw):
    from urllib.parse import urlencode
    return urlencode(kw)
good = dict(response_type="code", client_id="$CLIENT", redirect_uri="$REDIRECT",
            code_challenge="$CHALLENGE", code_challenge_method="S256", state="xyz",
            scope="mcp", resource="https://mcp.example.com/internal")
def without(k): d = dict(good); d.pop(k); return d
def changed(**kw): d = dict(good); d.update(kw); return d
write("authorize_query", [
    q(**good).replace("%24", "$"), q(**without("state")).replace("%24", "$"),
    q(**without("resource")).replace("%24", "$"), q(**without("code_challenge")).replace("%24", "$"),
    q(**changed(code_challenge_method="plain")).replace("%24", "$"),
    q(**changed(redirect_uri="https://evil.example/cb")).replace("%24", "$"),
    q(**changed(redirect_uri="http://127.0.0.1:53123/callback")).replace("%24", "$"),
    q(**changed(response_type="token")).replace("%24", "$"),
    q(**changed(scope="mcp admin")).replace("%24", "$"),
    q(**changed(client_id="$CIMD")).replace("%24", "$"),
    q(**changed(client_id="https://client.example.com/other.json")).replace("%24", "$"),
    q(**changed(resource="https://evil.example/internal")).replace("%24", "$"),
    q(**changed(code_challenge="short")).replace("%24", "$"),
    q(**good).replace("%24", "$") + "&state=again", "", "client_id=unknown",
    q(**changed(prompt="none")).replace("%24", "$"),
])

write("token_form", [
    b(0) + b"\ngrant_type=authorization_code&code=pmcp_ac_x&client_id=$CLIENT&code_verifier=$VERIFIER&redirect_uri=$REDIRECT",
    b(0) + b"\ngrant_type=refresh_token&refresh_token=pmcp_rt_x&client_id=$CLIENT",
    b(0) + b"Basic $BASIC\ngrant_type=refresh_token&refresh_token=pmcp_rt_x",
    b(0) + b"Basic $BASIC\ngrant_type=authorization_code&code=pmcp_ac_x&code_verifier=$VERIFIER&redirect_uri=$REDIRECT",
    b(0) + b"\ngrant_type=client_credentials&client_id=$CONF&client_secret=$SECRET",
    b(0) + b"\ngrant_type=password&username=a&password=b",
    b(0) + b"\ngrant_type=refresh_token&grant_type=refresh_token",
    b(0) + b"\nclient_id=$CONF&client_secret=$SECRET&grant_type=refresh_token&refresh_token=x",
    b(0) + b"Basic $BASIC\nclient_id=$CONF&client_secret=$SECRET&grant_type=refresh_token&refresh_token=x",
    b(0) + b"\ngrant_type=refresh_token&refresh_token=pmcp_rt_x&client_id=$CLIENT&scope=mcp&resource=https%3A%2F%2Fmcp.example.com%2Finternal",
    b(1) + b"\ntoken=pmcp_at_x&client_id=$CLIENT", b(1) + b"\ntoken=pmcp_rt_x&token_type_hint=refresh_token&client_id=$CLIENT",
    b(1) + b"Basic $BASIC\ntoken=pmcp_rt_x&token_type_hint=access_token",
    b(1) + b"\ntoken_type_hint=refresh_token", b(1) + b"\ntoken=x&token=y",
    # Routed-length code and refresh token (tag check, not the legacy path).
    b(0) + b"\ngrant_type=authorization_code&code=pmcp_ac_" + b"A" * 70 + b"&client_id=$CLIENT&code_verifier=$VERIFIER&redirect_uri=$REDIRECT",
    b(0) + b"\ngrant_type=refresh_token&refresh_token=pmcp_rt_" + b"A" * 70 + b"&client_id=$CLIENT",
    b(1) + b"\ntoken=pmcp_rt_" + b"A" * 70 + b"&client_id=$CLIENT",
])

write("redirect_uri", [
    "https://client.example.com/cb\nhttps://client.example.com/cb",
    "https://client.example.com/cb?x=1\nhttps://client.example.com/cb?x=1",
    "http://127.0.0.1:53123/callback\nhttp://127.0.0.1/callback",
    "http://localhost:8080/cb\nhttp://localhost/cb",
    "http://[::1]:9/cb\nhttp://[::1]/cb",
    "https://client.example.com/cb#frag", "https://user:pw@client.example.com/cb",
    "http://client.example.com/cb", "javascript:alert(1)", "custom.scheme:/cb",
    "https://client.example.com/CB\nhttps://client.example.com/cb",
    "https://client.example.com/cb/../cb\nhttps://client.example.com/cb",
    "https://client.example.com:443/cb\nhttps://client.example.com/cb",
    "http://127.0.0.1:1/cb?a=b\nhttp://127.0.0.1/cb?a=c",
    "https://xn--bcher-kva.example/cb\nhttps://b\u00fccher.example/cb",
    "https://client.example.com/%2e%2e/cb\nhttps://client.example.com/cb",
])

def reg(**kw): return json.dumps(kw)
write("registration", [
    reg(client_name="Claude", redirect_uris=["https://claude.ai/api/mcp/auth_callback"], token_endpoint_auth_method="none"),
    reg(redirect_uris=["http://127.0.0.1/callback"], token_endpoint_auth_method="none", grant_types=["authorization_code", "refresh_token"], response_types=["code"]),
    reg(client_name="Confidential", redirect_uris=["https://client.example.com/cb"], token_endpoint_auth_method="client_secret_basic"),
    reg(client_name="Post", redirect_uris=["https://client.example.com/cb"], token_endpoint_auth_method="client_secret_post", client_uri="https://client.example.com", scope="mcp"),
    reg(redirect_uris=[]), reg(redirect_uris=["https://a.example/cb#x"]), reg(redirect_uris="https://a.example/cb"),
    reg(redirect_uris=["https://a.example/cb"], grant_types=["implicit"]), reg(redirect_uris=["https://a.example/cb"], token_endpoint_auth_method="private_key_jwt"),
    reg(redirect_uris=["https://a.example/cb"], client_name="x" * 300), reg(redirect_uris=["https://a.example/cb"], client_uri="javascript:alert(1)"),
    reg(redirect_uris=["https://a.example/cb"], jwks={"keys": []}), "[]", "null", "{", '{"redirect_uris":["https://a.example/cb"],"redirect_uris":[]}',
])

def doc(**kw):
    d = {"client_id": "https://client.example.com/client.json"}; d.update(kw); return json.dumps(d)
write("metadata_document", [
    doc(client_name="Fuzz", redirect_uris=["https://client.example.com/cb"], token_endpoint_auth_method="none"),
    doc(redirect_uris=["https://client.example.com/cb", "http://127.0.0.1/cb"], grant_types=["authorization_code", "refresh_token", "client_credentials"], response_types=["code"], client_uri="https://client.example.com", logo_uri="https://client.example.com/logo.png"),
    doc(redirect_uris=["https://client.example.com/cb"], client_secret="s"),
    doc(redirect_uris=["https://client.example.com/cb"], token_endpoint_auth_method="client_secret_basic"),
    doc(redirect_uris=["https://client.example.com/cb"], jwks={"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
    doc(redirect_uris=["https://client.example.com/cb"], jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
    doc(redirect_uris=["https://client.example.com/cb"], jwks={"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB"}]}),
    json.dumps({"client_id": "https://client.example.com/other.json", "redirect_uris": ["https://client.example.com/cb"]}),
    json.dumps({"redirect_uris": ["https://client.example.com/cb"]}), "[]", doc(), doc(redirect_uris=["http://evil.example/cb"]),
])

def jwt(header, claims, sig=b"sig"):
    e = lambda v: base64.urlsafe_b64encode(v).rstrip(b"=")
    return e(json.dumps(header).encode()) + b"." + e(json.dumps(claims).encode()) + b"." + e(sig)
good_claims = {"iss": ISS, "aud": "client-1", "sub": "user-1", "email": "alice@example.com", "nonce": "n-1", "exp": NOW + 300, "iat": NOW - 10}
def cl(**kw): d = dict(good_claims); d.update(kw); return json.dumps(d).encode()
write("jws", [
    b(0) + jwt({"alg": "RS256", "kid": "test-key-1"}, good_claims), b(0) + jwt({"alg": "none"}, good_claims, b""),
    b(0) + jwt({"alg": "HS256"}, good_claims), b(0) + b"a.b.c", b(0) + b"not a token", b(0) + jwt({"alg": "RS256", "crit": ["x"]}, good_claims),
    b(1) + b'{"kid":"test-key-1"}\n' + cl(), b(1) + b"{}\n" + cl(aud=["client-1", "other"], azp="client-1"),
    b(1) + b"{}\n" + cl(aud=["client-1", "other"]), b(1) + b"{}\n" + cl(exp=NOW - 100), b(1) + b"{}\n" + cl(nbf=NOW + 100),
    b(1) + b"{}\n" + cl(iat=NOW + 1000), b(1) + b"{}\n" + cl(nonce="other"), b(1) + b"{}\n" + cl(iss=ISS + "/"),
    b(1) + b'{"kid":"other"}\n' + cl(), b(1) + b"{}\n" + json.dumps({k: v for k, v in good_claims.items() if k != "sub"}).encode(),
    b(2) + json.dumps({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS256", "use": "sig", "kid": "k"}]}).encode(),
    b(2) + json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, {"kty": "oct", "k": "AA"}]}).encode(), b(2) + b'{"keys":[]}',
])
# The signing fixture's public key as a JWKS, so mode 2 can verify.
keys = json.loads((pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/rsa-test-keys.json").read_text())
(ROOT / "jws" / "seed-fixture-jwks").write_bytes(b(2) + json.dumps({"keys": [keys["signing"]["public"]]}).encode())

meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}, "io.modelcontextprotocol/clientCapabilities": {}}
def rpc(method, params=None, id=1):
    m = {"jsonrpc": "2.0", "method": method}
    if id is not None: m["id"] = id
    if params is not None: m["params"] = params
    return m
init = rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})
call = rpc("tools/call", {"name": "get_timeseries", "arguments": {"site_id": "example.com", "date_range": "7d"}})
jr = []
for era in range(3):
    e = b(era)
    jr += [e + json.dumps(init).encode(), e + json.dumps(rpc("tools/list")).encode(), e + json.dumps(call).encode(),
           e + json.dumps(rpc("notifications/initialized", id=None)).encode(), e + json.dumps(rpc("ping")).encode()]
jr += [b(0) + json.dumps([rpc("ping"), rpc("tools/list", id=2), rpc("notifications/initialized", id=None)]).encode(),
       b(2) + json.dumps([rpc("ping")]).encode(), b(1) + json.dumps(rpc("resources/list")).encode(),
       b(1) + json.dumps(rpc("prompts/list")).encode(), b(1) + json.dumps(rpc("prompts/get", {"name": "weekly_report", "arguments": {"site_id": "example.com"}})).encode(),
       b(1) + json.dumps(rpc("completion/complete", {"ref": {"type": "ref/prompt", "name": "weekly_report"}, "argument": {"name": "site_id", "value": "ex"}})).encode(),
       b(1) + json.dumps(rpc("resources/read", {"uri": "plausible://sites"})).encode(), b(2) + b"{", b(2) + b"[]", b(2) + b'{"jsonrpc":"1.0","id":1,"method":"ping"}',
       b(2) + json.dumps(rpc("tools/call", {"name": "nope", "arguments": {}})).encode(), b(2) + json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}).encode()]
for m, p in [("tools/list", {}), ("tools/call", {"name": "list_sites", "arguments": {}}), ("server/discover", {}), ("ping", {})]:
    p = dict(p); p["_meta"] = meta
    jr.append(b(3) + json.dumps(rpc(m, p, id=7)).encode())
write("jsonrpc", jr)

TOOLS = ["get_timeseries", "get_breakdown", "get_conversions", "compare_periods", "list_sites", "get_realtime_visitors", "list_goals", "query_stats", "find_anomalies", "measure_change"]
def t(name, args): return b(TOOLS.index(name)) + json.dumps(args).encode()
write("tool_arguments", [
    t("get_timeseries", {"site_id": "example.com", "date_range": "7d"}),
    t("get_timeseries", {"site_id": "example.com", "date_range": "2026-01-01,2026-01-31", "metrics": ["visitors", "pageviews"], "page": "/blog*", "goal": "Signup"}),
    t("get_breakdown", {"site_id": "a.com", "date_range": "7d", "dimension": "visit:source"}),
    t("get_breakdown", {"site_id": "a.com", "date_range": "7d", "dimension": "visit:chanel"}),
    t("get_conversions", {"site_id": "a.com", "date_range": "30d"}),
    t("compare_periods", {"site_id": "a.com", "period_a": "2026-01-01,2026-01-31", "period_b": "2026-02-01,2026-02-28"}),
    t("list_sites", {}), t("get_realtime_visitors", {"site_id": "a.com", "minutes": 5}),
    t("list_goals", {"site_id": "a.com"}),
    t("query_stats", {"site_id": "a.com", "metrics": ["visitors"], "date_range": "7d", "dimensions": ["visit:country"], "filters": [["is", "visit:country", ["US"]]], "order_by": [["visitors", "desc"]], "include": {"imports": True}, "pagination": {"limit": 10, "offset": 0}}),
    t("query_stats", {"site_id": "a.com", "metrics": ["visitors"], "date_range": "all", "filters": [["and", [["is_not", "event:page", ["/a"]], ["contains", "event:props:plan", ["pro"]]]]]}),
    t("find_anomalies", {"site_id": "a.com", "window": "30d", "metric": "visitors"}),
    t("measure_change", {"site_id": "a.com", "date": "2026-03-01", "days": 14}),
    t("measure_change", {"site": "a.com", "moment": "2026-02-30"}),
    t("get_timeseries", {"site_id": "a.com", "date_range": "7d", "metrics": "visitors"}),
    t("query_stats", {"site_id": "a.com", "metrics": [], "date_range": "99999999999d"}),
])

write("cookies", [
    b(0) + b"$LOGIN", b(0) + b"other=1; $LOGIN", b(0) + b"$LOGIN; $LOGIN", b(0) + b"pmcp_login_x=garbage",
    b(0) + b"", b(0) + b"a=b;;; =c; $LOGIN=", b(1) + b"$LOGIN", b(1) + b"pmcp_consent=x; $LOGIN",
    b(0) + b'$LOGIN"', b(1) + b"",
    # Since the per-user storage layout: login cookies are `__Host-`
    # cookies named from the login id, a sealed request can take two
    # parts (`$PART0`, `$PART1`: byte 0 = 2), and `/consent` (byte 0 = 1)
    # gets the live ticket of a login at its consent page (`$CONSENT`).
    b(0) + b"__Host-pmcp_login_0123456789abcdef=garbage", b(1) + b"$CONSENT", b(1) + b"$CONSENT; $LOGIN",
    b(1) + b"__Host-$CONSENT", b(2) + b"$PART0; $PART1", b(2) + b"$PART1; $PART0", b(2) + b"$PART0",
    b(2) + b"$PART0; $PART1; $PART1", b(2) + b"$PART0; $PART0", b(2) + b'$PART0; $PART1"',
])

# Routed tokens (prefix + base64url(routing 16 ‖ issued-at 4 ‖ random 24 ‖
# tag 8), 70 characters): the fuzz world's live values are deterministic
# (seeded entropy), so these are its access token, refresh token and code
# with one character changed, or another kind's body under a prefix: they
# reach the tag check and the routing, which the fuzzer could not reach
# by guessing. `seeds_reach_the_paths_behind_them` checks they stay one
# edit away from the live values.
AT = "pmcp_at_KBfkck-w3meIlkYSNeg5L2m2n0D5U1rUP2n0Wtp5HPafGUsfi1xctzIGR9orlxqekmXj8Q"
RT = "pmcp_rt_KBfkck-w3meIlkYSNeg5L2m2n0BGZL4Ouc3Ci4lsQ_KF7gQUyjY0if3JAIGfr5XaSGntzA"
AC = "pmcp_ac_KBfkck-w3meIlkYSNeg5L2m2n0AzFL2SJfKYv8PyGiKuG2LsyaL8NxWhnk8tn1XHTxAJNw"
def flip(tok, i):
    i %= len(tok); c = tok[i]; return tok[:i] + ("B" if c != "B" else "C") + tok[i + 1:]
ROUTED = [
    (0, flip(AT, -1)), (0, flip(AT, 20)), (0, flip(AT, 40)), (0, "pmcp_at_" + RT[8:]), (0, "pmcp_at_" + "A" * 70),
    (0, "pmcp_at_" + "!" * 70), (1, flip(AT, -1)), (2, flip(RT, -1)), (2, "pmcp_rt_" + AT[8:]), (2, flip(RT, 30)),
    (3, flip(AC, -1)), (3, "pmcp_ac_" + RT[8:]), (4, flip(AT, -1)), (4, flip(RT, -1)), (4, "pmcp_rt_" + "A" * 70),
]
write("own_tokens", [
    b(0) + b"$AT", b(0) + b"pmcp_at_AAAA", b(0) + b"$RT", b(0) + b"$AT ", b(1) + b"$AT", b(1) + b"pmcp_rt_x",
    b(2) + b"$RT", b(2) + b"$AT", b(2) + b"pmcp_rt_", b(3) + b"$CODE", b(3) + b"pmcp_ac_x", b(3) + b"$RT",
    b(4) + b"$AT", b(4) + b"$RT", b(4) + b"pmcp_client_x", b(0) + b"pmcp_", b(0) + b"$CONF",
] + [b(w) + t.encode() for w, t in ROUTED])
