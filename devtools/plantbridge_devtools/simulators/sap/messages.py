"""SAP messages the simulator answers with, and the exception that carries them.

Every business refusal is an HTTP 400 with an SAP Gateway error body (see ``odata.error_body``)
whose ``error.code`` is ``<message class>/<number>``. Where a public source confirmed the message
class, number and text, the real one is used; where none was found the simulator uses its own
class ``ZPB`` (a customer-namespace class, as a customer enhancement in S/4 would) so that no
invented number masquerades as a standard SAP message.

==================  =====  ===============================================================  ========
code                HTTP   meaning / text                                                   source
==================  =====  ===============================================================  ========
BS/013              400    "System status CRTD is active (ORD 1000001)" -- order not        [1]
                           released, or TECO/CLSD for confirmations
RU/014              400    "Operation 0010 of sequence 0 is already finally confirmed"      [2]
M7/053              400    "Posting only possible in periods 2025/07 and 2025/06 in         [3]
                           company code 1000" -- posting period closed
MC/601              400    "Object requested is currently locked by user JSMITH"            [4]
                           -- SAP enqueue lock; TRANSIENT: retry later
QA/501              400    "Usage decision already made for inspection lot ..."             [5]
/IWBEP/CM_MGW_RT/020 404   "Resource not found for segment '<type>'"                        [6]
/IWBEP/CM_MGW_RT/021 501   "Method '<X>' not implemented in data provider class"            [7]
/IWFND/MED/170      404    "No service found for namespace '', name '<X>', version '0001'"  [7]
ZPB/001             400    duplicate ExternalSystemConfirmation; names the existing         sim
                           confirmation (ConfirmationGroup/ConfirmationCount)
ZPB/002             400    yield+scrap per operation exceeds planned qty x (1 + tol %)      sim
ZPB/003             400    order does not exist                                             sim
ZPB/004             400    operation does not exist in order                                sim
ZPB/005             400    movement type not supported / inconsistent item                  sim
ZPB/006             400    reversal quantity exceeds posted quantity                        sim
ZPB/007             400    confirmation does not exist / already cancelled                  sim
ZPB/008             400    inspection lot does not exist                                    sim
ZPB/009             400    duplicate material document reference (only when refused)       sim
ZPB/010..014        400    malformed request: payload, property, literal, $filter, key      sim
ZPB/428, ZPB/412    428/   If-Match missing / ETag mismatch (HTTP status as S/4: 428, 412)  sim
                    412
ZPB/503             503    injected fault (JSON variant); the HTML variant mimics the ICM   sim
==================  =====  ===============================================================  ========

Transient (retry later, same payload): MC/601, HTTP 503 and timeouts (also ZPB/503). A 403 with
``x-csrf-token: Required`` means: fetch a new token, then retry; a 412 means: read the entity again
for its current ETag. Everything else is a business or request error that a retry will not cure.

Success messages (``sap-message`` header, severity ``success``/``info``) use ``RU/100``
("Confirmation of order ... saved"), ``M7/060`` ("Document ... posted"), ``CO/093`` ("Order ...
released"), ``CO/097`` ("Order ... technically completed"), ``QA/100`` (usage decision saved) and
``IM/405`` (notification saved): these numbers are not confirmed by a public source and are
informational only; clients should not depend on them.

Sources:
  [1] Message class BS (status management) listing, dev-workbench.com/de/sap-dictionary/message-class/bs
      ("013 Systemstatus & ist aktiv (&)").
  [2] erplingo.com/sap-error-messages/en/ru (class RU, "RU014 Operation &1 of sequence &2 is already
      finally confirmed").
  [3] Several public integration code bases quoting "M7 053 Posting only possible in periods ... in
      company code ..." (e.g. BAPI_GOODSMVT_CREATE RETURN tables in test fixtures and runbooks).
  [4] Public ABAP code ``MESSAGE s601(mc) ...  " Object requested is currently locked by user &``.
  [5] A public QM error table ("QA 501 Usage decision already made"); not confirmed by SAP docs.
  [6] Public OData client mocks/tests quoting SAP Gateway's 404 body for a missing key.
  [7] The captured SAP Gateway error bodies in ../shared/fixtures/sap/odata-errors (MIT).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Detail:
    """One entry of ``innererror.errordetails`` (or of the ``sap-message`` details)."""

    code: str
    message: str
    severity: str = "error"
    target: str = ""
    propertyref: str = ""


@dataclass(eq=False)
class SapError(Exception):
    """An error answered with an SAP Gateway error body."""

    status: int
    code: str
    message: str
    details: list[Detail] = field(default_factory=list)
    transient: bool = False

    def __post_init__(self) -> None:
        super().__init__(f"{self.code} {self.message}")


def business(code: str, message: str, *, transient: bool = False, target: str = "") -> SapError:
    """A 400 business error; SAP repeats the leading message in ``errordetails``."""
    return SapError(400, code, message, [Detail(code, message, target=target)], transient=transient)


# --- business rules ---------------------------------------------------------------------------


def status_active(status: str, order: str) -> SapError:
    return business("BS/013", f"System status {status} is active (ORD {order})")


def operation_finally_confirmed(operation: str, sequence: str) -> SapError:
    return business("RU/014", f"Operation {operation} of sequence {sequence} is already finally confirmed")


def period_closed(open_period: str, previous_period: str, company_code: str) -> SapError:
    return business(
        "M7/053",
        f"Posting only possible in periods {open_period} and {previous_period} in company code {company_code}",
    )


def locked(user: str) -> SapError:
    return business("MC/601", f"Object requested is currently locked by user {user}", transient=True)


def usage_decision_exists(lot: str) -> SapError:
    return business("QA/501", f"Usage decision already made for inspection lot {lot}")


def duplicate_material_document(reference: str, text: str, document: str) -> SapError:
    return business(
        "ZPB/009", f"Material document with reference {reference} / {text} already exists: {document}"
    )


def duplicate_external_confirmation(external: str, group: str, count: str) -> SapError:
    return business(
        "ZPB/001",
        f"Confirmation with external key {external} already exists: confirmation {group} counter {count}",
    )


def over_confirmation(operation: str, confirmed: str, planned: str, tolerance: str, unit: str) -> SapError:
    return business(
        "ZPB/002",
        f"Operation {operation}: confirmed quantity {confirmed} {unit} exceeds planned quantity "
        f"{planned} {unit} plus overdelivery tolerance {tolerance} %",
    )


def order_not_found(order: str) -> SapError:
    return business("ZPB/003", f"Order {order} does not exist")


def operation_not_found(order: str, operation: str) -> SapError:
    return business("ZPB/004", f"Operation {operation} does not exist in order {order}")


def movement_invalid(text: str) -> SapError:
    return business("ZPB/005", text)


def reversal_exceeds(text: str) -> SapError:
    return business("ZPB/006", text)


def confirmation_not_cancellable(text: str) -> SapError:
    return business("ZPB/007", text)


def inspection_lot_not_found(lot: str) -> SapError:
    return business("ZPB/008", f"Inspection lot {lot} does not exist")


# --- protocol ---------------------------------------------------------------------------------


def bad_request(text: str, code: str = "ZPB/010", target: str = "") -> SapError:
    return SapError(400, code, text, [Detail(code, text, target=target)])


def invalid_property(prop: str, type_name: str) -> SapError:
    return bad_request(f"Property '{prop}' is invalid for type '{type_name}'", "ZPB/011", prop)


def invalid_value(prop: str, text: str) -> SapError:
    return bad_request(f"Invalid value for property '{prop}': {text}", "ZPB/012", prop)


def invalid_query(text: str) -> SapError:
    return bad_request(text, "ZPB/013")


def invalid_key(text: str) -> SapError:
    return bad_request(text, "ZPB/014")


def not_found(type_name: str) -> SapError:
    code = "/IWBEP/CM_MGW_RT/020"
    text = f"Resource not found for segment '{type_name}'"
    return SapError(404, code, text, [Detail(code, text)])


def not_implemented(method: str) -> SapError:
    code = "/IWBEP/CM_MGW_RT/021"
    text = f"Method '{method}' not implemented in data provider class"
    return SapError(501, code, text, [Detail(code, text)])


def no_service(name: str) -> SapError:
    return SapError(404, "/IWFND/MED/170", f"No service found for namespace '', name '{name}', version '0001'")


def precondition_required() -> SapError:
    text = "Precondition required: send the entity's ETag in the If-Match header"
    return SapError(428, "ZPB/428", text, [Detail("ZPB/428", text)])


def precondition_failed() -> SapError:
    text = "Precondition failed: the entity was changed, the If-Match ETag is outdated"
    return SapError(412, "ZPB/412", text, [Detail("ZPB/412", text)])


def service_unavailable() -> SapError:
    text = "Service unavailable, try again later"
    return SapError(503, "ZPB/503", text, [Detail("ZPB/503", text)], transient=True)
