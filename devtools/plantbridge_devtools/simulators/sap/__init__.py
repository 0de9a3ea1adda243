"""S/4HANA stand-in: five OData v2 services as SAP Gateway serves them, with business rules,
fault injection and business events. A foreign system: it imports nothing else of plantbridge.

Entry points: :func:`plantbridge_devtools.simulators.sap.app.create_app` and
``python -m plantbridge_devtools.simulators.sap``.
"""
