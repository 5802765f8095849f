"""Reading DCC XML safely, and walking it with the element path at hand for every error.

Stdlib ElementTree only, behind three guards applied before the parser sees a byte: a size cap,
UTF-8 only, and no DOCTYPE or ENTITY declaration anywhere (no DCC needs one, and they are how
entity-expansion bombs and external-entity reads get in).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

DCC_NS = "https://ptb.de/dcc"
SI_NS = "https://ptb.de/si"
_PREFIXES = {"dcc": DCC_NS, "si": SI_NS}
MAX_DCC_BYTES = 10 * 1024 * 1024  # signed DCCs with an embedded PDF reach a few MB
_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


class DccError(ValueError):
    """A DCC that cannot be imported: where in the document (element path) and what to fix."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def parse(data: bytes, max_bytes: int = MAX_DCC_BYTES) -> Node:
    if len(data) > max_bytes:
        raise DccError("", f"the file has {len(data)} bytes; DCC imports stop at {max_bytes}")
    m = _ENCODING.match(data.removeprefix(b"\xef\xbb\xbf"))
    if m and m.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii"):
        raise DccError(
            "", f"encoding {m.group(1).decode()} is not supported; save the DCC as UTF-8"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DccError("", f"not UTF-8 (byte {exc.start}); save the DCC as UTF-8") from None
    upper = text.upper()
    for decl in ("<!DOCTYPE", "<!ENTITY"):
        if decl in upper:
            raise DccError(
                "",
                f"{decl} declarations are refused (entity expansion, external entities); "
                "a DCC needs none: remove it",
            )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DccError("", f"malformed XML: {exc}") from None
    return Node(root, qname(root.tag))


def qname(tag: str) -> str:
    """'{https://ptb.de/dcc}item' -> 'dcc:item' (other namespaces keep their braces)."""
    for prefix, ns in _PREFIXES.items():
        if tag.startswith("{" + ns + "}"):
            return f"{prefix}:{tag[len(ns) + 2 :]}"
    return tag


def _clark(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{_PREFIXES[prefix]}}}{local}"


@dataclass(frozen=True, slots=True)
class Node:
    el: ET.Element
    path: str

    def all(self, name: str) -> list[Node]:
        found = self.el.findall(_clark(name))
        if len(found) == 1:
            return [Node(found[0], f"{self.path}/{name}")]
        return [Node(e, f"{self.path}/{name}[{i}]") for i, e in enumerate(found, 1)]

    def opt(self, name: str) -> Node | None:
        found = self.all(name)
        if len(found) > 1:
            raise DccError(self.path, f"{name} appears {len(found)} times; expected at most once")
        return found[0] if found else None

    def one(self, name: str) -> Node:
        found = self.opt(name)
        if found is None:
            raise DccError(self.path, f"required element {name} is missing")
        return found

    def text(self) -> str:
        t = (self.el.text or "").strip()
        if not t:
            raise DccError(self.path, "is empty; it needs a value")
        return t

    def tokens(self, attr: str) -> set[str]:
        """An attribute holding a list (refType, refId)."""
        return set((self.el.get(attr) or "").split())

    def content(self) -> str:
        """A dcc:textType's text: the English dcc:content if there is one, else the first."""
        items = self.all("dcc:content")
        if not items:
            raise DccError(self.path, "has no dcc:content")
        english = [c for c in items if c.el.get("lang") == "en"]
        return (english or items)[0].text()
