"""Edge rules: bad characters with pointers, tracing header formats, JWT claims and secrets, the JWKS cache."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared import edges
from shared.auth import JWKS_MIN_REFETCH_SECONDS, JWKS_REFRESH_SECONDS, Verifier, issue_token
from shared.problems import Problem
from shared.settings import DEV_SECRET, ServiceSettings

ROOT = Path(__file__).resolve().parents[3]


class EdgeSettings(ServiceSettings):
    service_name = "edge"


def test_nul_control_characters_and_lone_surrogates_are_refused_with_pointers():
    body = json.dumps(
        {"name": "ok\tline\n", "family": {"no": "F\x00"}, "rows": [{"a~/b": "\ud800"}, "\x07", "汉字\U0001f600"]}
    ).encode()
    assert edges.json_body_errors(body) == [
        {"pointer": "/family/no", "detail": "must not contain NUL"},
        {"pointer": "/rows/0/a~0~1b", "detail": "must not contain unpaired surrogates"},
        {"pointer": "/rows/1", "detail": "must not contain NUL or other control characters"},
    ]
    assert edges.json_body_errors(json.dumps({"k\x01": 1}).encode())[0]["pointer"] == "/k\\u0001"  # storable
    assert edges.json_body_errors('{"x": "\u0085"}'.encode()) != []  # a raw C1 control, no escape needed
    assert edges.json_body_errors(b'{"clean": "\\u6c49\\ud83d\\ude00"}') == []  # escapes of good text pass
    assert edges.json_body_errors(b"{broken \\u0000") == []  # left to the route's own 422
    assert edges.text_body_errors(b"a,b\r\nc,\x00d\n") == [{"pointer": "/", "detail": "line 2 must not contain NUL"}]


def test_a_text_body_checked_as_it_streams_gets_the_answer_of_the_whole_body_at_any_split():
    """`TextStream` (a route that stores its upload as it arrives) says what `text_body_errors` says of the whole
    body, whichever bytes the chunks end on: inside a multi-byte character, before or after the bad line's newline."""
    bodies = [
        "学号,姓名\r\nG1,张三\nG2,李\x00四\n".encode(),
        b"a,b\n" * 5 + b"c,\x1b\nd,\x00\n",
        "学号,姓名\n张三\t,\r\n".encode(),
        b"",
    ]
    for body in bodies:
        whole = edges.text_body_errors(body)
        for size in (1, 2, 3, 5, len(body) or 1):
            text = edges.TextStream()
            for at in range(0, len(body), size):
                text.feed(body[at : at + size])
            text.feed(b"", final=True)
            assert text.errors == whole, (body, size)
    assert edges.text_body_errors(bodies[0]) == [{"pointer": "/", "detail": "line 3 must not contain NUL"}]
    assert edges.text_body_errors(bodies[1])[0]["detail"] == "line 6 must not contain NUL or other control characters"
    text = edges.TextStream()
    text.feed("姓".encode()[:2])
    with pytest.raises(UnicodeDecodeError):
        text.feed(b"", final=True)  # a character cut at the end of the body
    with pytest.raises(Problem) as refused:
        text = edges.TextStream()
        text.feed(b"a\n\x00")
        text.refuse()
    assert refused.value.status == 422


def test_bad_char_refuses_exactly_the_control_and_surrogate_code_points_and_the_first_one_decides():
    allowed = edges._ALLOWED_CONTROLS
    for allow in (allowed, frozenset()):
        for code in range(0x110000):
            ch = chr(code)
            category = unicodedata.category(ch)
            refused = (category == "Cc" and ch not in allow) or category == "Cs"
            assert (edges.bad_char(f"a{ch}b", allow=allow) is not None) == refused, (hex(code), sorted(allow))
    assert edges.bad_char("ok\x07\x00") == "must not contain NUL or other control characters"
    assert edges.bad_char("ok\x00\ud800") == "must not contain NUL"
    assert edges.bad_char("\udfff\x00") == "must not contain unpaired surrogates"
    assert edges.bad_char("tab\tand\r\n") is None
    assert edges.bad_char("tab\t", allow=frozenset()) == "must not contain NUL or other control characters"


def test_path_and_query_with_control_characters_are_refused():
    scope = {"path": "/api/v1/students/s\x00", "query_string": b"q=a%00b&ok=1"}
    assert [e["pointer"] for e in edges.target_errors(scope)] == ["/path", "/query/q"]
    assert edges.target_errors({"path": "/api/v1/students", "query_string": b"q=%E6%B1%89"}) == []


def test_tracing_headers_must_be_short_ids():
    good = {"x-correlation-id": "6f1c-2b:demo/run.1", "x-request-id": "a" * 128}
    assert edges.trace_header_errors(good) == []
    for bad in ["", "a b", "a" * 129, "x\nInjected: 1", "名字", "-leading"]:
        assert edges.trace_header_errors({"x-correlation-id": bad}) != [], bad


async def test_tokens_need_exp_and_sub_and_bad_claims_are_401_not_500():
    verifier = Verifier(EdgeSettings())
    now = int(time.time())
    base = {"roles": ["teacher"], "org_path": "/620400", "iss": "hss-dev", "aud": "hss-platform", "iat": now}
    cases = {
        "no exp": {**base, "sub": "u1"},
        "no sub": {**base, "exp": now + 60},
        "sub not a string": {**base, "exp": now + 60, "sub": 7},
        "org_path not a string": {**base, "exp": now + 60, "sub": "u1", "org_path": ["/620400"]},
        "roles not strings": {**base, "exp": now + 60, "sub": "u1", "roles": [["teacher"]]},
    }
    for name, claims in cases.items():
        with pytest.raises(Problem) as err:
            await verifier.verify(jwt.encode(claims, DEV_SECRET, algorithm="HS256"))
        assert err.value.status == 401, name
    ok = await verifier.verify(jwt.encode({**base, "exp": now + 60, "sub": "u1"}, DEV_SECRET, algorithm="HS256"))
    assert ok.subject == "u1"


def test_which_tokens_are_accepted_is_decided_at_start_and_production_takes_the_provider_s_only():
    """Production verifies the identity provider's tokens only: without a JWKS it refuses to start, and turning dev
    tokens on there is refused too; dev and test take dev tokens unless told not to; a provider needs its issuer;
    a service that could verify no token at all refuses to start."""
    idp: dict[str, Any] = {"jwt_jwks_url": "https://idp.example/jwks", "jwt_issuer": "https://idp.example"}
    refused: list[tuple[dict[str, Any], str]] = [
        ({"env": "production"}, "jwt_jwks_url"),
        ({"env": "production", "jwt_secret": "k" * 64}, "jwt_jwks_url"),  # a strong shared secret is no provider
        ({"env": "production", "auth_dev_tokens": True, **idp}, "never accepted in production"),
        ({"jwt_jwks_url": "https://idp.example/jwks"}, "jwt_issuer"),
        ({"auth_dev_tokens": False}, "no bearer token could be verified"),
    ]
    for settings, why in refused:
        with pytest.raises(ValueError, match=why):
            EdgeSettings(**settings)
    assert EdgeSettings(env="production", **idp).auth_dev_tokens is False
    assert EdgeSettings(env="dev").auth_dev_tokens is True
    assert EdgeSettings(env="test", **idp).auth_dev_tokens is True  # both, because dev/test turns dev tokens on
    assert EdgeSettings(env="test", auth_dev_tokens=False, **idp).auth_dev_tokens is False


class _Jwks:
    """A JWKS endpoint on a real local port that counts its fetches and can be slow."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key()))
        keys = [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}, {**ec_jwk, "kid": "e1", "use": "sig"}]
        self.doc = json.dumps({"keys": keys}).encode()
        self.fetches = 0
        self.delay = 0.0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                time.sleep(owner.delay)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(owner.doc)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"

    def token(self, kid: str = "k1", alg: str = "RS256", **claims: object) -> str:
        now = int(time.time())
        base = {"sub": "u1", "roles": ["auditor"], "org_path": "/620400", "iss": "idp", "aud": "hss-platform"}
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | str = self.ec_key if alg.startswith("ES") else self.key
        key = "" if alg == "none" else key
        return jwt.encode({**base, "iat": now, "exp": now + 60, **claims}, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    server = _Jwks()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()


async def test_jwks_is_fetched_off_the_event_loop_and_cached(jwks: _Jwks):
    verifier = Verifier(EdgeSettings(jwt_jwks_url=jwks.url, jwt_issuer="idp"))
    jwks.delay = 0.5
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        principals = await asyncio.gather(*(verifier.verify(jwks.token()) for _ in range(10)))
    finally:
        task.cancel()
    assert {p.subject for p in principals} == {"u1"}
    assert jwks.fetches == 1  # ten concurrent requests, one fetch
    assert ticks > 5  # the loop kept running while the key set was fetched
    for _ in range(20):
        await verifier.verify(jwks.token())
    assert jwks.fetches == 1
    for _ in range(5):  # made-up key ids: refused, and no refetch within the minimum interval
        with pytest.raises(Problem) as err:
            await verifier.verify(jwks.token(kid="nope"))
        assert err.value.status == 401
    assert jwks.fetches == 1


async def test_provider_tokens_are_es256_or_rs256_each_with_its_own_key_s_algorithm(jwks: _Jwks):
    """An OIDC provider may sign with a P-256 key (ES256) or an RSA key (RS256); the key named by `kid` decides the
    algorithm, so a token claiming another one (or naming the other key) is refused with 401, never a 500."""
    verifier = Verifier(EdgeSettings(jwt_jwks_url=jwks.url, jwt_issuer="idp"))
    assert (await verifier.verify(jwks.token(kid="e1", alg="ES256", sub="ec-user"))).subject == "ec-user"
    assert (await verifier.verify(jwks.token(kid="k1", alg="RS256", sub="rsa-user"))).subject == "rsa-user"
    for kid, alg in [("k1", "ES256"), ("e1", "RS256"), ("e1", "none"), ("k1", "none")]:
        with pytest.raises(Problem) as err:
            await verifier.verify(jwks.token(kid=kid, alg=alg))
        assert err.value.status == 401, (kid, alg)


async def test_a_dev_token_is_refused_where_dev_tokens_are_off_and_a_provider_token_where_no_jwks_is_set(jwks: _Jwks):
    """Each kind of token only where it is accepted: a dev token (HS256, even signed with the right secret and
    carrying the provider's issuer) is refused by a production service; a provider token is refused by a dev
    service without a JWKS, and by any service when signed with a key its JWKS does not hold (even under a known
    kid); a service given both in dev accepts both, each with its own issuer."""
    production = Verifier(EdgeSettings(env="production", jwt_jwks_url=jwks.url, jwt_issuer="idp"))
    assert (await production.verify(jwks.token(sub="from-idp"))).subject == "from-idp"
    for dev in [issue_token(role="teacher", org_path="/1"), issue_token(role="teacher", org_path="/1", issuer="idp")]:
        with pytest.raises(Problem, match="dev tokens are not accepted") as err:
            await production.verify(dev)
        assert err.value.status == 401
    dev_only = Verifier(EdgeSettings(env="dev"))
    with pytest.raises(Problem, match="no JWKS is configured") as err:
        await dev_only.verify(jwks.token())
    assert err.value.status == 401
    stranger = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"sub": "u1", "roles": [], "org_path": "/620400", "iss": "idp", "aud": "hss-platform"}
    forged = jwt.encode({**claims, "iat": now, "exp": now + 60}, stranger, algorithm="ES256", headers={"kid": "e1"})
    with pytest.raises(Problem, match="Signature verification failed") as err:
        await production.verify(forged)
    assert err.value.status == 401
    both = Verifier(EdgeSettings(env="dev", jwt_jwks_url=jwks.url, jwt_issuer="idp"))
    assert (await both.verify(jwks.token(sub="from-idp"))).subject == "from-idp"
    assert (await both.verify(issue_token(role="teacher", org_path="/1", subject="dev"))).subject == "dev"
    with pytest.raises(Problem):  # a dev token must carry the dev issuer, a provider token the provider's
        await both.verify(issue_token(role="teacher", org_path="/1", issuer="idp"))
    with pytest.raises(Problem):
        await both.verify(jwks.token(iss="hss-dev"))
    assert both.kinds()[0].startswith("identity provider") and both.kinds()[1].startswith("dev tokens")


async def test_a_verified_token_is_remembered_only_while_it_would_still_verify(jwks: _Jwks, monkeypatch):
    """A token sent with every request is checked once; a remembered one is refused again from its `exp` on, and a
    provider token as soon as its key leaves the key set (at the refresh it is due for, or at any earlier refetch):
    exactly when it would be refused without the memory."""
    decoded = 0
    decode = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal decoded
        decoded += 1
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    verifier = Verifier(EdgeSettings(env="dev", jwt_jwks_url=jwks.url, jwt_issuer="idp"))
    dev = issue_token(role="teacher", org_path="/1", subject="dev", ttl_seconds=1)
    provider = jwks.token(sub="from-idp")
    for _ in range(5):
        assert (await verifier.verify(dev)).subject == "dev"
        assert (await verifier.verify(provider)).subject == "from-idp"
    assert decoded == 2
    await asyncio.sleep(max(0.0, jwt.decode(dev, options={"verify_signature": False})["exp"] - time.time()) + 0.05)
    with pytest.raises(Problem, match="expired") as err:
        await verifier.verify(dev)
    assert err.value.status == 401

    keys = json.loads(jwks.doc)["keys"]
    jwks.doc = json.dumps({"keys": [k for k in keys if k["kid"] != "k1"]}).encode()  # the provider withdraws k1
    verifier._fetched_at -= JWKS_REFRESH_SECONDS + 1  # the key set is due for its refresh
    with pytest.raises(Problem, match="no signing key") as err:
        await verifier.verify(provider)
    assert err.value.status == 401

    again = Verifier(EdgeSettings(env="dev", jwt_jwks_url=jwks.url, jwt_issuer="idp"))
    jwks.doc = json.dumps({"keys": keys}).encode()
    assert (await again.verify(provider)).subject == "from-idp"
    jwks.doc = json.dumps({"keys": [k for k in keys if k["kid"] != "k1"]}).encode()
    again._fetched_at -= JWKS_MIN_REFETCH_SECONDS + 1  # an unknown key id may refetch the set before its refresh
    with pytest.raises(Problem):
        await again.verify(jwks.token(kid="rotated"))
    with pytest.raises(Problem, match="no signing key"):
        await again.verify(provider)


async def test_a_remembered_token_vouches_for_its_exact_text_only():
    """After a valid token is remembered, the same claims under a tampered signature, tampered claims under its
    signature, a token signed with another secret and the same token expired are still refused (401)."""
    verifier = Verifier(EdgeSettings(env="dev"))
    good = issue_token(role="teacher", org_path="/1", subject="t", ttl_seconds=1)
    assert (await verifier.verify(good)).subject == "t"
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "roles": ["bureau_admin"]}).encode()).decode()
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (
        f"{header}.{payload}.{flipped}",
        f"{header}.{forged}.{signature}",
        issue_token(role="bureau_admin", org_path="/1", subject="t", secret="not-the-dev-secret"),
    ):
        with pytest.raises(Problem) as err:
            await verifier.verify(bad)
        assert err.value.status == 401
    assert (await verifier.verify(good)).roles == {"teacher"}  # still remembered, still only what it said
    await asyncio.sleep(max(0.0, claims["exp"] - time.time()) + 0.05)
    with pytest.raises(Problem, match="expired"):
        await verifier.verify(good)


def test_a_pointer_token_writes_refused_characters_as_escapes_and_escapes_the_pointer_syntax():
    assert edges.pointer_token("a\x00b/c~d") == "a\\u0000b~1c~0d"
    assert edges.pointer_token("名字\tok") == "名字\tok"  # allowed controls and other text stay
    assert edges.pointer_token(3) == "3"
    assert [e["pointer"] for e in edges.bad_strings({"k\x00": "v\x00"})] == ["/k\\u0000", "/k\\u0000"]
