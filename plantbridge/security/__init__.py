"""Security controls that cross components: the payload codec (encryption at rest in Temporal) and
its codec server (decoded payloads in the Temporal UI, for authorised people only)."""
