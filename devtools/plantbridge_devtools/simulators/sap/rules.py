"""Business rules an operator (or a test) switches on through the admin API.

- ``period_closed``: every posting (confirmation, material document) is refused with M7/053, as
  when the MM posting period of the posting date has been closed.
- ``locked_orders``: order number -> user; any posting or status change on that order is refused
  with MC/601 ("... currently locked by user ..."), a *transient* error (HTTP 400, as SAP answers).
- ``refuse_duplicate_keys``: a second confirmation with the same ``ExternalSystemConfirmation``
  (ZPB/001), or a material document with the same ``ReferenceDocument`` + ``MaterialDocumentHeaderText``
  (ZPB/009), is refused. Off by default: the simulator takes a duplicate posting, as a real system may.
- ``reject``: the next ``count`` calls to ``service`` (by default only changing methods) are
  refused with the given HTTP status, message code and text.

Rules are stored in the simulator's SQLite file, so they survive a restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from plantbridge_devtools.simulators.sap.messages import Detail, SapError
from plantbridge_devtools.simulators.sap.odata import numeric_key
from plantbridge_devtools.simulators.sap.state import Store

CHANGING_METHODS = ("POST", "PUT", "PATCH", "MERGE", "DELETE")
_SETTING = "rules"


@dataclass
class RejectRule:
    service: str
    count: int
    code: str
    message: str
    status: int = 400
    methods: list[str] = field(default_factory=lambda: list(CHANGING_METHODS))


@dataclass
class Rules:
    period_closed: bool = False
    locked_orders: dict[str, str] = field(default_factory=dict)
    reject: list[RejectRule] = field(default_factory=list)
    refuse_duplicate_keys: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Rules:
        data = data or {}
        return cls(
            period_closed=bool(data.get("period_closed", False)),
            locked_orders={numeric_key(str(k)): str(v) for k, v in (data.get("locked_orders") or {}).items()},
            reject=[RejectRule(**r) for r in data.get("reject") or []],
            refuse_duplicate_keys=bool(data.get("refuse_duplicate_keys", False)),
        )


class RuleBook:
    """Reads and updates the rules in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def current(self) -> Rules:
        return Rules.from_json(self.store.get_setting(_SETTING))

    def replace(self, rules: Rules) -> Rules:
        self.store.set_setting(_SETTING, rules.to_json())
        return rules

    def merge(self, patch: dict[str, Any]) -> Rules:
        data = self.current.to_json()
        data.update(patch)
        return self.replace(Rules.from_json(data))

    def clear(self) -> Rules:
        return self.replace(Rules())

    def lock_owner(self, order: str) -> str | None:
        return self.current.locked_orders.get(numeric_key(order))

    def take_rejection(self, service: str, method: str) -> SapError | None:
        """Consume one pending rejection for this call, if any."""
        with self.store.transaction():
            rules = self.current
            for rule in rules.reject:
                if rule.service == service and rule.count > 0 and method.upper() in rule.methods:
                    rule.count -= 1
                    rules.reject = [r for r in rules.reject if r.count > 0]
                    self.replace(rules)
                    return SapError(rule.status, rule.code, rule.message, [Detail(rule.code, rule.message)])
        return None
