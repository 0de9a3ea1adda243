"""The start-to-close check: an activity must outlive its connector's worst case.

When Temporal times an attempt out while the connector's call is still in flight, the next attempt
runs beside it (activities/base.py waits on the ledger lease, but only so long). So every plant's
`policy.activity_timeout` must exceed the longest call sequence its connectors can make with their
configured timeouts; the worker refuses to start otherwise, naming the plant and the numbers.

Worst cases, in requests of `timeout_s` each (the sequence one posting can take when every request
runs to its timeout):
- SAP OData: look-up by external key (a retry) + CSRF fetch + POST + CSRF refetch (403 "Required")
  + POST = 5. (An order function re-read on a 412 ETag conflict can take more: it is bounded by
  its own attempts and counts as transient when it runs out of time.)
- Odoo: look-up + read of the order + read of the work order + write + button + read back + the
  session login + a retry of it = 8 RPCs.
- REST plant systems (MES, QMS, WMS): look-up + POST = 2.
- SAP RFC and the reference systems: no configured timeout here, not checked.
"""

from __future__ import annotations

from plantbridge.canonical.plant_config import PlantConfig, SystemConfig
from plantbridge.workers.registry import ConfigurationError
from plantbridge.workflows.local_steps import LOCAL_SYSTEMS, local_step_timeout

ERP_REQUESTS = {"sap_odata": 5, "odoo": 8}
REST_REQUESTS = 2


def worst_cases(cfg: PlantConfig) -> dict[str, tuple[float, str]]:
    """System -> (worst-case seconds, how it is made up) for the plant's configured connectors."""
    out: dict[str, tuple[float, str]] = {}
    if (n := ERP_REQUESTS.get(cfg.erp.kind)) is not None:
        out["erp"] = (n * cfg.erp.timeout_s, f"{cfg.erp.kind}: {n} requests x {cfg.erp.timeout_s:g} s")
    systems: dict[str, SystemConfig] = {"mes": cfg.mes, "qms": cfg.qms, "wms": cfg.wms}
    for name, system in systems.items():
        if system.kind == "rest":
            out[name] = (REST_REQUESTS * system.timeout_s, f"rest: {REST_REQUESTS} requests x {system.timeout_s:g} s")
    return out


def check_activity_timeouts(plants: dict[str, PlantConfig]) -> None:
    """Raise `ConfigurationError` naming every plant whose activity timeout is not above a worst case.

    The plant systems' steps run as local activities, whose attempts end after `LOCAL_STEP_TIMEOUT`
    when the plant's `activity_timeout` is longer (workflows/local_steps.py): their worst case must be
    below that too."""
    problems = []
    for code, cfg in sorted(plants.items()):
        limit = cfg.policy.activity_timeout.total_seconds()
        local = local_step_timeout(cfg.policy).total_seconds()
        for system, (seconds, how) in worst_cases(cfg).items():
            if limit <= seconds:
                problems.append(
                    f"plant {code}: policy.activity_timeout is {limit:g} s but its {system} connector may take "
                    f"{seconds:g} s ({how}); raise activity_timeout above {seconds:g} s or lower "
                    f"{system}.timeout_s"
                )
            elif system in LOCAL_SYSTEMS and local <= seconds:
                problems.append(
                    f"plant {code}: its {system} steps run as local activities of at most {local:g} s but its "
                    f"{system} connector may take {seconds:g} s ({how}); lower {system}.timeout_s below "
                    f"{local / REST_REQUESTS:g} s"
                )
    if problems:
        raise ConfigurationError(
            "an attempt could time out while its call is still in flight (a second posting could follow):\n  "
            + "\n  ".join(problems)
        )
