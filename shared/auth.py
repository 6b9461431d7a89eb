"""JWT bearer auth (HS256 dev, RS256/JWKS production), roles and org-subtree scoping."""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request

from shared.problems import Problem
from shared.settings import DEV_SECRET, ServiceSettings


class Role(StrEnum):
    """Roles a token can carry (DESIGN.md §5)."""

    BUREAU_ADMIN = "bureau_admin"
    DISTRICT_ADMIN = "district_admin"
    SCHOOL_ADMIN = "school_admin"
    TEACHER = "teacher"
    MENTAL_HEALTH_TEACHER = "mental_health_teacher"
    DEPARTMENT_PARTNER = "department_partner"
    AUDITOR = "auditor"


ADMINS = frozenset({Role.BUREAU_ADMIN, Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who, which roles, where in the org tree, which department."""

    subject: str
    roles: frozenset[Role]
    org_path: str
    department: str | None = None
    staff_id: str | None = None
    claims: dict[str, object] = field(default_factory=dict, compare=False)

    def has(self, *roles: Role) -> bool:
        """Whether the caller has any of `roles`."""
        return bool(self.roles.intersection(roles))

    def covers(self, org_path: str) -> bool:
        """Whether `org_path` lies in the caller's subtree (paths look like `/city/district/school`)."""
        mine = self.org_path.rstrip("/")
        return org_path == mine or org_path.startswith(mine + "/")

    def require(self, *roles: Role) -> None:
        """403 unless the caller has one of `roles`."""
        if not self.has(*roles):
            raise Problem(403, "Forbidden", f"requires one of the roles: {', '.join(sorted(roles))}")

    def require_scope(self, org_path: str) -> None:
        """403 unless `org_path` is inside the caller's subtree."""
        if not self.covers(org_path):
            raise Problem(403, "Forbidden", "the resource lies outside your organisation scope")


class Verifier:
    """Checks bearer tokens against a shared secret (dev) or a JWKS endpoint (OIDC provider)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; Problem(401) otherwise."""
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=["RS256"],
                    audience=self.settings.jwt_audience,
                    issuer=self.settings.jwt_issuer,
                )
            else:
                claims = jwt.decode(
                    token,
                    self.settings.jwt_secret,
                    algorithms=["HS256"],
                    audience=self.settings.jwt_audience,
                    issuer=self.settings.jwt_issuer,
                )
            roles = frozenset(Role(r) for r in claims.get("roles", []))
            org_path = str(claims["org_path"])
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise Problem(
                401,
                "Unauthorized",
                f"invalid bearer token: {exc}",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from exc
        return Principal(
            subject=str(claims["sub"]),
            roles=roles,
            org_path=org_path,
            department=claims.get("department"),
            staff_id=claims.get("staff_id"),
            claims=claims,
        )


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, from `Authorization: Bearer <jwt>`; 401 problem otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "Unauthorized", "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    verifier: Verifier = request.app.state.verifier
    principal = verifier.verify(token.strip())
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
    issuer: str = "hss-dev",
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
