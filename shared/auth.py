"""JWT bearer auth and roles (org-subtree scoping is shared/scope.py).

Two kinds of token, each accepted only where the settings turn it on (`ServiceSettings._token_kinds`): the identity
provider's (RS256 or ES256, verified with its JWKS, `iss` its issuer) — the only kind production accepts — and dev
tokens (HS256 with the dev secret, `iss` hss-dev; dev and test, or `HSS_AUTH_DEV_TOKENS=true`)."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.contracts.common import StaffRole, Vocabulary
from shared.problems import Problem
from shared.settings import DEV_ISSUER, DEV_SECRET, ServiceSettings


class Role(Vocabulary):
    """Roles a token can carry (DESIGN.md §5)."""

    BUREAU_ADMIN = "bureau_admin", "市教育局管理员", "Bureau administrator"
    DISTRICT_ADMIN = "district_admin", "区县教育局管理员", "District or county administrator"
    SCHOOL_ADMIN = "school_admin", "学校管理员", "School administrator"
    TEACHER = "teacher", "教师", "Teacher"
    MENTAL_HEALTH_TEACHER = StaffRole.MENTAL_HEALTH_TEACHER  # the staff role of that name (code and labels)
    DEPARTMENT_PARTNER = "department_partner", "协作部门人员", "Department partner"
    AUDITOR = "auditor", "审计人员", "Auditor"


ADMINS = frozenset({Role.BUREAU_ADMIN, Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who, which roles, where in the org tree, which department."""

    subject: str
    roles: frozenset[Role]
    org_path: str
    department: str | None = None
    staff_id: str | None = None

    def has(self, *roles: Role) -> bool:
        """Whether the caller has any of `roles`."""
        return bool(self.roles.intersection(roles))

    def require(self, *roles: Role) -> None:
        """403 unless the caller has one of `roles`."""
        if not self.has(*roles):
            raise Problem(403, "Forbidden", f"requires one of the roles: {', '.join(sorted(roles))}")


REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
JWKS_REFRESH_SECONDS = 300.0  # keys are re-read this often, and at most this often for an unknown kid:
JWKS_MIN_REFETCH_SECONDS = 30.0  # tokens with made-up key ids must not turn into a flood of JWKS requests
VERIFIED_CACHE_SIZE = 4096  # tokens remembered as verified (each ~1 KB with its text): a busy replica's signed-in users
# Signatures accepted from the OIDC provider's keys (each key verifies only with its own algorithm: an RSA key RS256,
# a P-256 key ES256), so a token cannot pick a weaker or different algorithm than its key's.
PROVIDER_ALGORITHMS = frozenset({"RS256", "ES256"})


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Verifier:
    """Checks bearer tokens: the identity provider's against its JWKS, dev tokens against the dev secret — each
    kind only when the settings accept it (an HS256 token is a dev token; any other is the provider's).

    The JWKS is fetched in a worker thread (PyJWT's client is blocking) and cached; the event loop never waits on
    the identity provider.

    A verified token is remembered (the last `VERIFIED_CACHE_SIZE`, by the token's exact text), so a client sending
    the same token with every request has it checked once, not per request (~7 % of a recorded visit's CPU). A
    remembered token counts only while it would still verify: before its `exp`, and for a provider token while its
    key is the very key of the key set as last fetched and that set is not due for a refresh — so a key the provider
    withdraws stops being accepted exactly when it does without the cache. Refused tokens are never remembered.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_jwk_set=False) if settings.jwt_jwks_url else None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._fetch_lock = asyncio.Lock()
        # token -> (its exp, the provider key it was verified with or None for a dev token, the principal)
        self._verified: OrderedDict[str, tuple[float, jwt.PyJWK | None, Principal]] = OrderedDict()

    async def _signing_key(self, token: str) -> jwt.PyJWK:
        """The JWKS key named by the token's `kid`, from the cache or a fresh fetch when it is due."""
        assert self._jwks is not None
        kid = str(jwt.get_unverified_header(token).get("kid", ""))
        now = time.monotonic()
        stale = now - self._fetched_at > JWKS_REFRESH_SECONDS
        if kid not in self._keys or stale:
            async with self._fetch_lock:  # concurrent requests share one fetch
                due = JWKS_REFRESH_SECONDS if kid in self._keys else JWKS_MIN_REFETCH_SECONDS
                if time.monotonic() - self._fetched_at > due:
                    try:
                        keys = await asyncio.to_thread(self._jwks.get_signing_keys)
                    except jwt.PyJWKClientError:
                        if not self._keys:
                            raise
                        keys = None  # keep serving the cached keys while the provider is unreachable
                    if keys is not None:
                        self._keys = {str(k.key_id or ""): k for k in keys if k.algorithm_name in PROVIDER_ALGORITHMS}
                        self._fetched_at = time.monotonic()
        if kid not in self._keys:
            raise jwt.InvalidTokenError(f"no signing key with kid {kid!r}")
        return self._keys[kid]

    def kinds(self) -> list[str]:
        """The kinds of token accepted, for the log at start (which is which is never a silent default)."""
        kinds = [f"identity provider (issuer {self.settings.jwt_issuer}, JWKS {self.settings.jwt_jwks_url})"]
        kinds = kinds if self._jwks is not None else []
        return kinds + (["dev tokens (HS256, iss hss-dev)"] if self.settings.auth_dev_tokens else [])

    def _remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before that would verify now without fetching keys, else None."""
        hit = self._verified.get(token)
        if hit is None:
            return None
        exp, jwk, principal = hit
        if time.time() >= exp or (
            jwk is not None
            and (
                time.monotonic() - self._fetched_at > JWKS_REFRESH_SECONDS
                or self._keys.get(str(jwk.key_id or "")) is not jwk
            )
        ):
            del self._verified[token]
            return None
        self._verified.move_to_end(token)
        return principal

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; Problem(401) otherwise (missing exp, sub, roles or org_path too)."""
        if (known := self._remembered(token)) is not None:
            return known
        jwk: jwt.PyJWK | None = None
        try:
            if jwt.get_unverified_header(token).get("alg") == "HS256":
                if not self.settings.auth_dev_tokens:
                    raise jwt.InvalidTokenError("dev tokens are not accepted here: sign in with the identity provider")
                key, algorithms, issuer = self.settings.jwt_secret, ["HS256"], DEV_ISSUER
            elif self._jwks is not None:
                jwk = await self._signing_key(token)
                # The key's algorithm, never the token's say-so.
                key, algorithms, issuer = jwk.key, [jwk.algorithm_name], self.settings.jwt_issuer
            else:
                raise jwt.InvalidTokenError("identity-provider tokens are not accepted here: no JWKS is configured")
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=issuer,
                options={"require": REQUIRED_CLAIMS},
            )
            roles = frozenset(Role(r) for r in claims.get("roles", []))
            subject, org_path = claims["sub"], claims["org_path"]
            department, staff_id = claims.get("department"), claims.get("staff_id")
            if not all(isinstance(v, str) for v in (subject, org_path)) or not subject:
                raise ValueError("sub and org_path must be non-empty strings")
            if not all(v is None or isinstance(v, str) for v in (department, staff_id)):
                raise ValueError("department and staff_id must be strings")
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise _unauthorized(f"invalid bearer token: {exc}") from exc
        principal = Principal(
            subject=subject,
            roles=roles,
            org_path=org_path,
            department=department,
            staff_id=staff_id,
        )
        self._verified[token] = (float(claims["exp"]), jwk, principal)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal


# The OpenAPI security scheme `bearer` of every operation that needs a token (401 stays ours: problem+json).
BEARER = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A JWT from the identity provider (dev: `python -m shared.auth --role ... --org-path ...`)",
    auto_error=False,
)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Principal:
    """FastAPI dependency: the caller, from `Authorization: Bearer <jwt>`; 401 problem otherwise."""
    if credentials is None or not credentials.credentials.strip():
        raise Problem(401, "Unauthorized", "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    verifier: Verifier = request.app.state.verifier
    principal = await verifier.verify(credentials.credentials.strip())
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def issue_token(
    *,
    role: str | list[str],
    org_path: str,
    subject: str | None = None,
    department: str | None = None,
    staff_id: str | None = None,
    secret: str = DEV_SECRET,
    issuer: str = DEV_ISSUER,
    audience: str = "hss-platform",
    ttl_seconds: int = 12 * 3600,
) -> str:
    """A signed HS256 dev token (production tokens come from the OIDC provider)."""
    roles = [role] if isinstance(role, str) else role
    for r in roles:
        Role(r)  # refuse unknown roles early
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": subject or f"dev-{uuid.uuid4()}",
        "roles": roles,
        "org_path": org_path,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if department:
        claims["department"] = department
    if staff_id:
        claims["staff_id"] = staff_id
    return jwt.encode(claims, secret, algorithm="HS256")


def main() -> None:
    """CLI: `python -m shared.auth --role school_admin --org-path /baiyin/baiyin-district/s001`."""
    p = argparse.ArgumentParser(description="Issue a dev JWT for any role and org unit.")
    p.add_argument("--role", required=True, action="append", choices=[r.value for r in Role])
    p.add_argument("--org-path", required=True, help="org unit path, e.g. /baiyin or /baiyin/jingyuan/s0001")
    p.add_argument("--sub", default=None)
    p.add_argument("--department", default=None, help="for department_partner, e.g. civil_affairs")
    p.add_argument("--staff-id", default=None, help="for teachers: their staff id")
    p.add_argument("--secret", default=DEV_SECRET)
    p.add_argument("--ttl", type=int, default=12 * 3600)
    a = p.parse_args()
    print(
        issue_token(
            role=a.role,
            org_path=a.org_path,
            subject=a.sub,
            department=a.department,
            staff_id=a.staff_id,
            secret=a.secret,
            ttl_seconds=a.ttl,
        )
    )


if __name__ == "__main__":
    main()
