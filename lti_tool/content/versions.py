"""SemVer versions and references between items (``id@1``, ``id@1.2.0``, ``id@>=1.2,<2``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_DIGITS = re.compile(r"[0-9]+")
_REF = re.compile(r"^(?P<id>[a-z0-9]+(?:-[a-z0-9]+)*)@(?P<spec>.+)$")


@dataclass(frozen=True, order=True)
class SemVer:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_version(raw: str) -> SemVer | None:
    match = _SEMVER.match(raw.strip()) if isinstance(raw, str) else None
    if not match:
        return None
    return SemVer(int(match[1]), int(match[2]), int(match[3]))


@dataclass(frozen=True)
class Reference:
    """A reference to an item: newest of a MAJOR, an exact version, or a PEP 440 range."""

    id: str
    spec: str

    @property
    def major(self) -> int | None:
        return int(self.spec) if _DIGITS.fullmatch(self.spec) else None

    @property
    def exact(self) -> SemVer | None:
        return parse_version(self.spec)

    def matches(self, version: SemVer) -> bool:
        if self.major is not None:
            return version.major == self.major
        if self.exact is not None:
            return version == self.exact
        return Version(str(version)) in SpecifierSet(self.spec)

    def __str__(self) -> str:
        return f"{self.id}@{self.spec}"


def parse_reference(raw: str) -> Reference | None:
    """A :class:`Reference`, or None when ``raw`` is not one of the three forms."""
    match = _REF.match(raw.strip()) if isinstance(raw, str) else None
    if not match:
        return None
    spec = match["spec"].strip()
    if _DIGITS.fullmatch(spec) or parse_version(spec) is not None:
        return Reference(match["id"], spec)
    if spec[:1] not in "<>=!~":
        return None
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return None
    return Reference(match["id"], spec)
